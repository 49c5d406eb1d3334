"""Training-side TensorRT export for models ONNX cannot express: Torch-TensorRT or torch2trt.

Both are optional (``pip install .[trt-export]`` for Torch-TensorRT matching the pinned torch;
torch2trt is installed from its source on Jetsons, it is not on PyPI) and imported only here, on
use. The engine gets the same metadata file as ``aiat-engine build`` writes, so the vehicle's
``tensorrt`` backend checks and runs it the same way.

Never run on hardware here (no GPU, and neither package installs without one).
"""
from __future__ import annotations

import hashlib
import importlib
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Union

from aiat_perception.engine.metadata import EngineMetadata, PRECISIONS, now_iso, write_metadata
from aiat_perception.engine.profile import check_batch
from aiat_perception.inference.bundle import Bundle, load_bundle

METHODS = ('torch_tensorrt', 'torch2trt')
INSTALL = {
    'torch_tensorrt': "Torch-TensorRT is not installed: `pip install .[trt-export]` (torch-tensorrt "
                      "matching torch 2.14, needs an NVIDIA GPU and driver)",
    'torch2trt': "torch2trt is not installed: it is not on PyPI; on a Jetson build it from its source "
                 "(NVIDIA-AI-IOT torch2trt, `python setup.py install`) against JetPack's TensorRT",
}


class ExportUnavailable(RuntimeError):
    pass


def _import(method: str) -> Any:
    if method not in METHODS:
        raise ValueError(f'export method {method!r} is not one of {list(METHODS)}')
    try:
        return importlib.import_module(method)
    except Exception as exc:
        raise ExportUnavailable(f'{INSTALL[method]} ({type(exc).__name__}: {exc})') from None


def _gpu(torch: Any, device_index: int) -> Dict[str, str]:
    major, minor = torch.cuda.get_device_capability(device_index)
    return {'gpu_name': torch.cuda.get_device_name(device_index), 'compute_capability': f'{major}.{minor}'}


def export_engine(module: Any, bundle: Union[Bundle, str, Path], engine_path: Union[str, Path],
                  precision: str = 'fp16', batch: Sequence[int] = (1, 1, 1),
                  method: str = 'torch_tensorrt', workspace_mb: Optional[int] = None,
                  device_index: int = 0) -> EngineMetadata:
    """Compile ``module`` (NCHW float32 -> (scores, box_dist), like the bundle's graph) into a
    serialized engine at ``engine_path`` with its metadata next to it."""
    if precision not in ('fp32', 'fp16'):
        raise ValueError(f'precision {precision!r}: training-side export supports fp32 and fp16 '
                         f'(int8 calibration is done by `aiat-engine build`); one of {list(PRECISIONS)[:2]}')
    batch = check_batch(tuple(batch))
    lib = _import(method)
    trt = _import_tensorrt()
    import torch
    if not torch.cuda.is_available():
        raise ExportUnavailable(f'{method} needs a CUDA GPU; torch sees none')
    bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    spec = bundle.input
    chw = (spec.channels, spec.height, spec.width)
    device = torch.device('cuda', device_index)
    module = module.to(device).eval()
    extra: Dict[str, Any] = {'bundle_path': str(bundle.path)}
    flags = ['FP16'] if precision == 'fp16' else []
    if method == 'torch_tensorrt':
        precisions = {torch.float32} | ({torch.float16} if precision == 'fp16' else set())
        spec_input = lib.Input(min_shape=(batch[0],) + chw, opt_shape=(batch[1],) + chw,
                               max_shape=(batch[2],) + chw, dtype=torch.float32)
        options: Dict[str, Any] = {'inputs': [spec_input], 'enabled_precisions': precisions}
        if workspace_mb:
            options['workspace_size'] = int(workspace_mb) << 20
        serialized = lib.convert_method_to_trt_engine(module, 'forward', **options)
        built_with = f'torch_tensorrt {getattr(lib, "__version__", "?")}'
        # Torch-TensorRT names the engine's tensors itself; the backend maps them to the bundle's.
        extra['tensor_names'] = _torch_tensorrt_names(trt, serialized, bundle)
    else:
        if batch[0] != batch[2]:
            raise ValueError('torch2trt export: use a fixed batch (N:N:N); dynamic profiles need '
                             'aiat-engine build or Torch-TensorRT')
        example = torch.zeros((batch[0],) + chw, device=device)
        options = {'fp16_mode': precision == 'fp16', 'input_names': [spec.name],
                   'output_names': [bundle.outputs['scores'].name, bundle.outputs['boxes'].name]}
        if workspace_mb:
            options['max_workspace_size'] = int(workspace_mb) << 20
        trt_module = lib.torch2trt(module, [example], **options)
        serialized = trt_module.engine.serialize()
        built_with = 'torch2trt'
    engine_path = Path(engine_path)
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    data = bytes(memoryview(serialized))
    engine_path.write_bytes(data)
    meta = EngineMetadata(
        tensorrt_version=str(trt.__version__), precision=precision, batch=batch,
        bundle_sha256=bundle.model.sha256, bundle_name=bundle.name, input_name=spec.name,
        input_shape=chw, builder_flags=tuple(flags), workspace_mb=workspace_mb, calibration=None,
        built_with=built_with, created=now_iso(), engine_file=engine_path.name,
        engine_sha256=hashlib.sha256(data).hexdigest(), extra=extra, **_gpu(torch, device_index))
    write_metadata(engine_path, meta)
    return meta


def _import_tensorrt() -> Any:
    from aiat_perception.engine.trt_api import TensorRTUnavailable, import_tensorrt
    try:
        return import_tensorrt()
    except TensorRTUnavailable as exc:
        raise ExportUnavailable(str(exc)) from None


def _torch_tensorrt_names(trt: Any, serialized: Any, bundle: Bundle) -> Dict[str, str]:
    """{bundle tensor name: engine tensor name}, matched by role: the one input, then the outputs in
    order (scores, box_dist) as the module returns them."""
    from aiat_perception.engine.trt_api import CollectingLogger
    runtime = trt.Runtime(CollectingLogger(trt))
    engine = runtime.deserialize_cuda_engine(bytes(memoryview(serialized)))
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
    outputs = [n for n in names if n not in inputs]
    wanted_outputs = [bundle.outputs['scores'].name, bundle.outputs['boxes'].name]
    if len(inputs) != 1 or len(outputs) != 2:
        raise RuntimeError(f'Torch-TensorRT engine has inputs {inputs} and outputs {outputs}; '
                           f'expected one input and two outputs (scores, box_dist)')
    return {bundle.input.name: inputs[0], **dict(zip(wanted_outputs, outputs))}
