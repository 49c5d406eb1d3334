"""Training-side TensorRT export: clean "not installed" messages; nothing here has a GPU."""
from __future__ import annotations

import importlib.util

import pytest

import torch  # noqa: E402,F401  (training-marked: collected only where torch is installed)

from aiat_training.export_trt import ExportUnavailable, export_engine  # noqa: E402
from aiat_perception.inference.synthetic import make_synthetic_bundle  # noqa: E402

HAS = {m: importlib.util.find_spec(m) is not None for m in ('torch_tensorrt', 'torch2trt', 'tensorrt')}


@pytest.fixture(scope='module')
def bundle_dir(tmp_path_factory):
    return make_synthetic_bundle(tmp_path_factory.mktemp('b') / 'synthetic')


@pytest.mark.skipif(HAS['torch_tensorrt'], reason='checks the message where Torch-TensorRT is missing')
def test_torch_tensorrt_missing_says_what_to_install(bundle_dir, tmp_path):
    with pytest.raises(ExportUnavailable, match=r'Torch-TensorRT is not installed: `pip install \.\[trt-export\]`'):
        export_engine(torch.nn.Identity(), bundle_dir, tmp_path / 'm.engine', method='torch_tensorrt')
    assert not (tmp_path / 'm.engine').exists()


@pytest.mark.skipif(HAS['torch2trt'], reason='checks the message where torch2trt is missing')
def test_torch2trt_missing_says_how_to_get_it(bundle_dir, tmp_path):
    with pytest.raises(ExportUnavailable, match='torch2trt is not installed: it is not on PyPI; on a Jetson build it'):
        export_engine(torch.nn.Identity(), bundle_dir, tmp_path / 'm.engine', method='torch2trt')


def test_arguments_are_checked_first(bundle_dir, tmp_path):
    with pytest.raises(ValueError, match="export method 'onnx'"):
        export_engine(torch.nn.Identity(), bundle_dir, tmp_path / 'm.engine', method='onnx')
    with pytest.raises(ValueError, match="precision 'int8': training-side export supports fp32 and fp16"):
        export_engine(torch.nn.Identity(), bundle_dir, tmp_path / 'm.engine', precision='int8')
    from aiat_perception.engine.profile import ProfileError
    with pytest.raises(ProfileError):
        export_engine(torch.nn.Identity(), bundle_dir, tmp_path / 'm.engine', batch=(2, 1, 1))


def test_training_package_is_the_only_importer():
    import subprocess
    import sys
    code = 'import sys, aiat_training.export_trt; assert "torch_tensorrt" not in sys.modules; assert "tensorrt" not in sys.modules'
    subprocess.run([sys.executable, '-c', code], check=True)
