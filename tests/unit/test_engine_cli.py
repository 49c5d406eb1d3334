"""``aiat-engine``: argument checks and the one-line stop where TensorRT is missing (no traceback)."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aiat_perception.engine.metadata import EngineMetadata, write_metadata
from aiat_perception.inference.bundle import load_bundle
from aiat_perception.inference.synthetic import make_synthetic_bundle

REPO = Path(__file__).resolve().parents[2]
HAS_TRT = importlib.util.find_spec('tensorrt') is not None


@pytest.fixture(scope='module')
def bundle_dir(tmp_path_factory):
    return make_synthetic_bundle(tmp_path_factory.mktemp('b') / 'synthetic')


def _cli(*args, env=None):
    full_env = dict(os.environ, PYTHONPATH=str(REPO), **(env or {}))
    return subprocess.run([sys.executable, '-m', 'aiat_perception.engine.cli', *map(str, args)],
                          capture_output=True, text=True, cwd=REPO, env=full_env, timeout=120)


@pytest.mark.skipif(HAS_TRT, reason='checks the message given where TensorRT is not installed')
def test_build_without_tensorrt_says_what_to_install(bundle_dir, tmp_path):
    result = _cli('build', bundle_dir, '--precision', 'fp16', '--batch', '1:2:4',
                  '--workspace', '256', '--timing-cache', tmp_path / 't.cache',
                  env={'AIAT_ENGINE_CACHE': str(tmp_path)})
    assert result.returncode == 1
    assert 'Traceback' not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith('aiat-engine build: TensorRT is not installed')
    assert "pip install 'tensorrt>=8.6,<11'" in lines[0] and 'JetPack' in lines[0]
    assert result.stdout == '' and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize('args, message', [
    (['--batch', '4:2:1'], 'batch profile 4:2:1: needs 1 <= min <= opt <= max'),
    (['--precision', 'int8'], '--precision int8 needs --calibration DATA'),
    (['--precision', 'int8', '--calibration', '/no/such/dir'], '/no/such/dir: calibration data not found'),
    (['--calibration', '/x'], '--calibration is only used with --precision int8'),
    (['--workspace', '0'], 'workspace 0 MB'),
])
def test_bad_arguments_stop_before_tensorrt(bundle_dir, args, message):
    result = _cli('build', bundle_dir, *args)
    assert result.returncode == 1 and 'Traceback' not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('aiat-engine build: ') and message in lines[0]


def test_bad_bundle_is_named(tmp_path):
    result = _cli('build', tmp_path / 'missing')
    assert result.returncode == 1 and 'Traceback' not in result.stderr
    assert 'bundle directory does not exist' in result.stderr


def test_inspect_reports_metadata_and_differences(bundle_dir, tmp_path):
    bundle = load_bundle(bundle_dir)
    spec = bundle.input
    engine = tmp_path / 'model.engine'
    engine.write_bytes(b'x')
    write_metadata(engine, EngineMetadata(
        tensorrt_version='10.3.0', gpu_name='Orin', compute_capability='8.7', precision='fp32',
        batch=(1, 1, 1), bundle_sha256='0' * 64, bundle_name=bundle.name, input_name=spec.name,
        input_shape=(spec.channels, spec.height, spec.width)))
    result = _cli('inspect', engine, '--bundle', bundle_dir)
    report = json.loads(result.stdout)
    assert report['metadata']['precision'] == 'fp32'
    assert report['machine_checked'] is HAS_TRT
    assert any(d.startswith('bundle: engine built from model sha256') for d in report['differences'])
    assert result.returncode == 3
    result = _cli('inspect', tmp_path / 'other.engine')
    assert result.returncode == 1 and 'engine metadata missing' in result.stderr


def test_console_script_is_declared():
    assert "'aiat-engine = aiat_perception.engine.cli:main'" in (REPO / 'setup.py').read_text()


def test_engine_package_never_imports_torch_or_tensorrt_on_import():
    code = ('import sys; import aiat_perception.engine.cli, aiat_perception.engine.builder, '
            'aiat_perception.engine.cache, aiat_perception.engine.calibration, '
            'aiat_perception.inference.tensorrt_backend, aiat_perception.gpu_load; '
            'bad = {"torch", "tensorrt", "aiat_training", "pycuda"} & set(sys.modules); '
            'assert not bad, bad')
    subprocess.run([sys.executable, '-c', code], cwd=REPO, check=True,
                   env=dict(os.environ, PYTHONPATH=str(REPO)))
