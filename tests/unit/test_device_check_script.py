"""scripts/device_check.py end to end on this CPU-only machine: it must produce its JSON with torch on
the CPU, TensorRT and NVML reported absent (the GPU run happens on a lent machine)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import torch  # noqa: E402,F401  (training-marked: collected only where torch is installed)

from aiat_perception.inference.bundle import load_bundle  # noqa: E402
from aiat_perception.inference.synthetic import make_synthetic_bundle  # noqa: E402
from tests.unit.test_inference_backends import _torch_twin  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.filterwarnings('ignore:`torch.jit')
def test_device_check_runs_and_reports_every_section(tmp_path):
    bundle = load_bundle(make_synthetic_bundle(tmp_path / 'synthetic'))
    traced = torch.jit.trace(_torch_twin(bundle).eval(), torch.zeros(1, 3, 64, 64))
    traced.save(str(bundle.path / 'model.torchscript.pt'))
    out = tmp_path / 'result.json'
    result = subprocess.run([sys.executable, str(REPO / 'scripts' / 'device_check.py'), '--bundle',
                             str(bundle.path), '--iterations', '2', '--warmup', '1', '--out', str(out)],
                            capture_output=True, text=True, timeout=300, cwd=REPO,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report == json.loads(out.read_text())
    for key in ('machine', 'onnxruntime_cpu', 'torch', 'gpu_load', 'tensorrt'):
        assert 'error' not in report[key], report[key]
    assert report['onnxruntime_cpu']['timing']['batch4']['runs'] == 2
    compared = report['torch']['vs_onnxruntime_cpu']
    assert compared['batch4']['scores']['allclose_1e-3'] and compared['batch1']['box_dist']['allclose_1e-3']
    if not torch.cuda.is_available():
        assert report['torch']['device'] == 'cpu'
        assert report['gpu_load']['idle'] == {} and report['gpu_load']['source'] is None
    if not report['tensorrt']['available']:
        assert 'TensorRT' in report['tensorrt']['reason']


def test_shell_wrapper_is_prepared():
    text = (REPO / 'scripts' / 'device_check.sh').read_text()
    assert 'prepare)' in text and 'run)' in text and '--system-site-packages' in text
    assert os.access(REPO / 'scripts' / 'device_check.sh', os.X_OK)
    result = subprocess.run(['bash', '-n', str(REPO / 'scripts' / 'device_check.sh')], capture_output=True)
    assert result.returncode == 0, result.stderr
