"""ONNX Runtime GPU options: the TensorRT / CUDA execution-provider settings the backend passes.

The provider list is computed from what the installed ONNX Runtime build offers; here the lists of a
GPU build are given explicitly (the CPU build on this machine has neither GPU provider)."""
from __future__ import annotations

import pytest

from aiat_perception.inference.backends import OnnxRuntimeBackend

GPU_BUILD = ['TensorrtExecutionProvider', 'CUDAExecutionProvider', 'CPUExecutionProvider']
CUDA_BUILD = ['CUDAExecutionProvider', 'CPUExecutionProvider']
providers_for = OnnxRuntimeBackend._providers_for


def test_tensorrt_provider_options(tmp_path):
    cache = tmp_path / 'ort-trt'
    got = providers_for('tensorrt', GPU_BUILD, 1, True, str(cache), 2048)
    assert got[0] == ('TensorrtExecutionProvider', {
        'device_id': 1, 'trt_fp16_enable': True, 'trt_engine_cache_enable': True,
        'trt_engine_cache_path': str(cache), 'trt_timing_cache_enable': True,
        'trt_timing_cache_path': str(cache), 'trt_max_workspace_size': 2048 << 20})
    assert got[1] == ('CUDAExecutionProvider', {'device_id': 1})
    assert got[2] == 'CPUExecutionProvider'
    assert cache.is_dir()


def test_defaults_and_device_choices():
    assert providers_for('auto', GPU_BUILD, 0, False, None)[0] == (
        'TensorrtExecutionProvider', {'device_id': 0, 'trt_fp16_enable': False})
    assert providers_for('cuda', GPU_BUILD, 0, True, None) == [
        ('CUDAExecutionProvider', {'device_id': 0}), 'CPUExecutionProvider']
    assert providers_for('auto', CUDA_BUILD, 0, True, None) == [
        ('CUDAExecutionProvider', {'device_id': 0}), 'CPUExecutionProvider']
    assert providers_for('cpu', GPU_BUILD, 0, True, None) == ['CPUExecutionProvider']
    with pytest.raises(RuntimeError, match="device 'tensorrt' needs TensorrtExecutionProvider"):
        providers_for('tensorrt', CUDA_BUILD, 0, False, None)


@pytest.mark.parametrize('bad', [0, -1, 1.5, True, '512'])
def test_bad_workspace_is_refused(bad):
    with pytest.raises(ValueError, match='trt_workspace_mb'):
        providers_for('tensorrt', GPU_BUILD, 0, False, None, bad)
