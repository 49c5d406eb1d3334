"""Backends: ONNX Runtime on a real (small) graph, the lazily registered torch backend, registry."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aiat_perception.inference.backends import (
    Backend, OnnxRuntimeBackend, TensorInfo, available_backends, create_backend, ort_spinning_config,
    register_backend)
from aiat_perception.inference.bundle import BundleError, load_bundle
from aiat_perception.inference.synthetic import make_synthetic_bundle

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module')
def bundle(tmp_path_factory):
    return load_bundle(make_synthetic_bundle(tmp_path_factory.mktemp('b') / 'synthetic'))


def _batch(n, seed=0):
    return np.random.default_rng(seed).normal(0, 1, (n, 3, 64, 64)).astype(np.float32)


def test_onnxruntime_backend(bundle):
    backend = create_backend('onnxruntime', bundle, intra_op_threads=1)
    assert isinstance(backend, OnnxRuntimeBackend) and backend.device == 'cpu'
    assert backend.inputs == {'images': TensorInfo('images', ('batch', 3, 64, 64))}
    assert set(backend.outputs) == {'scores', 'box_dist'}
    assert backend.outputs['scores'].shape == ('batch', 84, 3)
    assert backend.max_batch is None
    out = backend.run(_batch(4))
    assert out['scores'].shape == (4, 84, 3) and out['box_dist'].shape == (4, 84, 32)
    single = backend.run(_batch(4)[2:3])
    np.testing.assert_allclose(out['scores'][2:3], single['scores'], atol=1e-6)
    with pytest.raises(ValueError, match='expected an NCHW batch'):
        backend.run(np.zeros((3, 64, 64), np.float32))


def test_onnxruntime_backend_devices(bundle):
    import onnxruntime as ort
    assert create_backend('onnxruntime', bundle, device='cpu').device == 'cpu'
    if 'CUDAExecutionProvider' not in ort.get_available_providers():
        with pytest.raises(RuntimeError, match="device 'cuda' needs CUDAExecutionProvider"):
            create_backend('onnxruntime', bundle, device='cuda')
    with pytest.raises(ValueError, match="unknown device 'npu'"):
        create_backend('onnxruntime', bundle, device='npu')


def test_spinning_options_become_session_config_entries(bundle):
    assert ort_spinning_config(allow_spinning=True) == {'session.force_spinning_stop': '1'}
    assert ort_spinning_config(allow_spinning=True, spin_between_runs=True) == {}
    assert ort_spinning_config(allow_spinning=False) == {'session.intra_op.allow_spinning': '0',
                                                         'session.inter_op.allow_spinning': '0'}

    def entry(backend, key):
        try:
            return backend.session.get_session_options().get_session_config_entry(key)
        except RuntimeError:  # onnxruntime: no such entry
            return None
    default = create_backend('onnxruntime', bundle, allow_spinning=True)
    assert entry(default, 'session.force_spinning_stop') == '1'
    assert entry(default, 'session.intra_op.allow_spinning') is None   # onnxruntime's default: spin
    spinning = create_backend('onnxruntime', bundle, allow_spinning=True, spin_between_runs=True)
    assert entry(spinning, 'session.force_spinning_stop') is None
    never = create_backend('onnxruntime', bundle, allow_spinning=False)
    assert entry(never, 'session.intra_op.allow_spinning') == '0'
    assert entry(never, 'session.inter_op.allow_spinning') == '0'


def _matmul_chain(size=384, count=4) -> bytes:
    """A graph whose MatMuls are big enough for onnxruntime to use its intra-op threads."""
    from onnx import TensorProto, helper, numpy_helper
    weight = numpy_helper.from_array(
        np.random.default_rng(0).normal(0, 0.05, (size, size)).astype(np.float32), 'w')
    nodes = [helper.make_node('MatMul', ['x' if i == 0 else f'y{i - 1}', 'w'], [f'y{i}'])
             for i in range(count)]
    graph = helper.make_graph(
        nodes, 'chain', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [size, size])],
        [helper.make_tensor_value_info(f'y{count - 1}', TensorProto.FLOAT, [size, size])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
    model.ir_version = 8
    return model.SerializeToString()


def test_threads_sleep_as_soon_as_a_run_returns_unless_asked_to_spin():
    """By default the intra-op threads use no CPU between runs (a camera's frames are 30-200 ms
    apart); with spin_between_runs they keep a core busy after every run, as onnxruntime does."""
    import time

    import onnxruntime as ort
    graph, x = _matmul_chain(), np.ones((384, 384), np.float32)

    def cpu_ms_after_a_run(spin_between_runs):
        options = ort.SessionOptions()
        options.intra_op_num_threads = 2
        for key, value in ort_spinning_config(True, spin_between_runs).items():
            options.add_session_config_entry(key, value)
        session = ort.InferenceSession(graph, options, providers=['CPUExecutionProvider'])
        session.run(None, {'x': x})
        time.sleep(0.3)
        session.run(None, {'x': x})
        start = time.process_time()
        time.sleep(1.0)
        return (time.process_time() - start) * 1e3
    # Other load only adds CPU time (a loaded CI run measured 4.5 ms once), and spinning threads would
    # show about 35 ms in every trial: the quietest of three trials tells them apart.
    quietest = min(cpu_ms_after_a_run(spin_between_runs=False) for _ in range(3))
    assert quietest < 3.0
    assert cpu_ms_after_a_run(spin_between_runs=True) > 10.0   # measured 32-39 ms (onnxruntime 1.19-1.32)


def test_big_batches_are_split_for_fixed_batch_engines(bundle):
    class FixedBatch(OnnxRuntimeBackend):
        name = 'fixed'
    backend = FixedBatch(bundle)
    backend.max_batch = 2          # as a TensorRT engine built for batch 2 would report
    full = backend.run(_batch(5))
    reference = create_backend('onnxruntime', bundle).run(_batch(5))
    for key in full:
        np.testing.assert_allclose(full[key], reference[key], atol=1e-6)


def test_registry(bundle):
    assert {'onnxruntime', 'torch', 'tensorrt'} <= set(available_backends())
    with pytest.raises(ValueError, match="unknown backend 'no-such-backend'"):
        create_backend('no-such-backend', bundle)
    calls = []

    def factory(b, **options):
        calls.append(options)
        return create_backend('onnxruntime', b)
    register_backend('test-alias', factory)
    assert isinstance(create_backend('test-alias', bundle.path, flag=1), Backend)
    assert calls == [{'flag': 1}]


def test_core_never_imports_torch():
    code = ('import sys; import aiat_perception.inference as inf; '
            'from aiat_perception.inference import detector, backends, decode, preprocess, bundle; '
            'import aiat_perception.cli.detect, aiat_perception.draw; '
            'assert "torch" not in sys.modules, "torch imported"; '
            'assert "aiat_training" not in sys.modules, "aiat_training imported"')
    subprocess.run([sys.executable, '-c', code], cwd=REPO, check=True)


# --- torch backend ---------------------------------------------------------------------------

def _torch_twin(bundle):
    """An nn.Module computing exactly what the synthetic ONNX graph computes."""
    import torch
    import onnx
    from onnx import numpy_helper
    weights = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy())
               for i in onnx.load(str(bundle.onnx_path)).graph.initializer}

    class Twin(torch.nn.Module):
        def __init__(self):
            super().__init__()
            for name, value in weights.items():
                self.register_buffer(name, value)

        def forward(self, x):
            scores, boxes = [], []
            for s in (8, 16, 32):
                p = torch.nn.functional.avg_pool2d(x, s, s, ceil_mode=True)
                c = torch.sigmoid(torch.nn.functional.conv2d(p, getattr(self, f'cls{s}_w'),
                                                             getattr(self, f'cls{s}_b')))
                r = torch.nn.functional.conv2d(p, getattr(self, f'reg{s}_w'), getattr(self, f'reg{s}_b'))
                scores.append(c.flatten(2).transpose(1, 2))
                boxes.append(r.flatten(2).transpose(1, 2))
            return torch.cat(scores, 1), torch.cat(boxes, 1)
    return Twin()


@pytest.mark.training  # compares with torch; the full environment runs it
def test_torch_backend_with_module_matches_onnxruntime(bundle):
    twin = _torch_twin(bundle)
    backend = create_backend('torch', bundle, module=twin, device='cpu')
    assert backend.name == 'torch' and backend.device == 'cpu'
    assert backend.inputs['images'].shape == ('batch', 3, 64, 64)
    ours = backend.run(_batch(3))
    ref = create_backend('onnxruntime', bundle).run(_batch(3))
    for key in ('scores', 'box_dist'):
        np.testing.assert_allclose(ours[key], ref[key], atol=1e-5)


@pytest.mark.training  # compares with torch; the full environment runs it
@pytest.mark.filterwarnings('ignore:`torch.jit')
def test_torch_backend_loads_torchscript_and_export_files(tmp_path, bundle):
    import torch
    twin = _torch_twin(bundle).eval()
    example = torch.from_numpy(_batch(2))   # batch 1 would specialise the exported batch axis
    ref = create_backend('onnxruntime', bundle).run(_batch(2))

    scripted = tmp_path / 'twin.torchscript.pt'
    torch.jit.trace(twin, example).save(str(scripted))
    out = create_backend('torch', bundle, model_file=scripted, device='cpu').run(_batch(2))
    np.testing.assert_allclose(out['scores'], ref['scores'], atol=1e-5)

    # a torch.export program saved next to bundle.yaml is picked up without options
    directory = make_synthetic_bundle(tmp_path / 'with_pt2')
    b2 = load_bundle(directory)
    batch = torch.export.Dim('batch', min=1, max=16)
    program = torch.export.export(_torch_twin(b2).eval(), (example,), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(directory / 'model.pt2'))
    backend = create_backend('torch', b2, device='cpu')
    assert backend.source.endswith('model.pt2')
    np.testing.assert_allclose(backend.run(_batch(2))['box_dist'], ref['box_dist'], atol=1e-5)


@pytest.mark.training  # compares with torch; the full environment runs it
def test_torch_backend_without_model_says_how(bundle):
    with pytest.raises(BundleError, match=r"torch backend needs module=\.\.\., model_file=\.\.\."):
        create_backend('torch', bundle, device='cpu')
    with pytest.raises(BundleError, match=r'missing\.pt: torch model file does not exist'):
        create_backend('torch', bundle, model_file=bundle.path / 'missing.pt')
