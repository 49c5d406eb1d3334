"""Inference backends: one interface, named inputs/outputs, a registry.

``onnxruntime`` is the vehicle default (CPU; TensorRT/CUDA execution providers when the installed
build has them). ``torch`` is registered lazily for training-time evaluation, ``tensorrt`` (a
serialized TensorRT engine, ``tensorrt_backend.py``) lazily too; :func:`backend_problem` says why a
registered backend cannot run on this machine.
"""
from __future__ import annotations

import importlib
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .bundle import Bundle, BundleError, load_bundle

Dim = Union[int, str, None]


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: Tuple[Dim, ...]
    dtype: str = 'float32'


class BackendUnavailable(RuntimeError):
    """The backend is registered but cannot run here (a library or device is missing)."""


class Backend(ABC):
    """Runs the network of a bundle on an NCHW float32 batch."""

    name: str = ''
    device: str = 'cpu'        # e.g. 'cpu', 'cuda:0', 'tensorrt:0'
    max_batch: Optional[int] = None   # None = any batch size
    # (height, width) box the backend accepts (engine/profile.py SizeRange), None = any size the
    # bundle allows; the Detector's keep_aspect size picker stays inside it
    input_sizes: Optional[Any] = None

    def __init__(self, bundle: Bundle):
        self.bundle = bundle
        self._inputs: Dict[str, TensorInfo] = {}     # filled by each backend from its model
        self._outputs: Dict[str, TensorInfo] = {}

    @property
    def inputs(self) -> Dict[str, TensorInfo]:
        return self._inputs

    @property
    def outputs(self) -> Dict[str, TensorInfo]:
        return self._outputs

    @abstractmethod
    def _run(self, batch: np.ndarray) -> Dict[str, np.ndarray]:
        """One call with ``len(batch) <= max_batch``."""

    def run(self, batch: np.ndarray) -> Dict[str, np.ndarray]:
        """``batch`` [B, C, H, W] float32 -> {output name: array [B, ...]}; splits big batches."""
        if batch.ndim != 4:
            raise ValueError(f'{self.name} backend: expected an NCHW batch, got shape {batch.shape}')
        if self.max_batch is None or len(batch) <= self.max_batch:
            return self._run(batch)
        parts = [self._run(batch[i:i + self.max_batch]) for i in range(0, len(batch), self.max_batch)]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f'{type(self).__name__}(bundle={self.bundle.name!r}, device={self.device!r})'


# ---------------------------------------------------------------------------------------------

PROVIDER_PREFERENCE = ('TensorrtExecutionProvider', 'CUDAExecutionProvider', 'CPUExecutionProvider')
_DEVICE_OF_PROVIDER = {'TensorrtExecutionProvider': 'tensorrt', 'CUDAExecutionProvider': 'cuda',
                       'CPUExecutionProvider': 'cpu'}


class OnnxRuntimeBackend(Backend):
    """ONNX Runtime session on the bundle's ONNX graph.

    Options: ``device`` ('auto' = best available provider, 'cpu', 'cuda', 'tensorrt'),
    ``providers`` (explicit ORT provider list, overrides ``device``), ``intra_op_threads``,
    ``inter_op_threads`` (0 = ORT default), ``allow_spinning`` and ``spin_between_runs`` (see
    :func:`ort_spinning_config`), ``device_id``, and
    for the TensorRT execution provider (onnxruntime-gpu): ``trt_fp16``, ``trt_cache_dir`` (engine
    cache: ORT builds the engine on the first run and reuses it), ``trt_workspace_mb``, and
    ``trt_timing_cache`` (default True: keep TensorRT's timing cache in ``trt_cache_dir`` too). See docs/jetson.md, "ONNX Runtime on the GPU".
    """

    name = 'onnxruntime'

    def __init__(self, bundle: Bundle, device: str = 'auto',
                 providers: Optional[Sequence[Any]] = None, intra_op_threads: int = 0,
                 inter_op_threads: int = 0, allow_spinning: bool = False,
                 spin_between_runs: bool = False, device_id: int = 0, trt_fp16: bool = False,
                 trt_cache_dir: Optional[str] = None,
                 trt_workspace_mb: Optional[int] = None, trt_timing_cache: bool = True):
        super().__init__(bundle)
        import onnxruntime as ort

        available = ort.get_available_providers()
        if providers is None:
            providers = self._providers_for(device, available, device_id, trt_fp16, trt_cache_dir,
                                            trt_workspace_mb, trt_timing_cache)
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(intra_op_threads)
        options.inter_op_num_threads = int(inter_op_threads)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        for key, value in ort_spinning_config(allow_spinning, spin_between_runs).items():
            options.add_session_config_entry(key, value)
        try:
            self.session = ort.InferenceSession(str(bundle.onnx_path), sess_options=options,
                                                providers=list(providers))
        except Exception as exc:
            raise BundleError(f'{bundle.onnx_path}: ONNX Runtime cannot create a session '
                              f'({type(exc).__name__}: {exc})')
        used = self.session.get_providers()[0]
        kind = _DEVICE_OF_PROVIDER.get(used, used)
        self.device = kind if kind == 'cpu' else f'{kind}:{device_id}'
        self._inputs = {a.name: TensorInfo(a.name, tuple(a.shape), _ort_dtype(a.type))
                        for a in self.session.get_inputs()}
        self._outputs = {a.name: TensorInfo(a.name, tuple(a.shape), _ort_dtype(a.type))
                         for a in self.session.get_outputs()}
        in_name = bundle.input.name
        if in_name not in self._inputs:
            raise BundleError(f'{bundle.onnx_path}: session has no input {in_name!r}')
        batch_dim = self._inputs[in_name].shape[0]
        self.max_batch = batch_dim if isinstance(batch_dim, int) and batch_dim > 0 else None
        self._input_name = in_name
        self._output_names = [bundle.outputs['scores'].name, bundle.outputs['boxes'].name]

    @staticmethod
    def _providers_for(device: str, available: Sequence[str], device_id: int, trt_fp16: bool,
                       trt_cache_dir: Optional[str], trt_workspace_mb: Optional[int] = None,
                       trt_timing_cache: bool = True) -> List[Any]:
        device = device.lower().split(':')[0]
        wanted = {'auto': PROVIDER_PREFERENCE, 'cpu': PROVIDER_PREFERENCE[2:],
                  'cuda': PROVIDER_PREFERENCE[1:], 'gpu': PROVIDER_PREFERENCE[1:],
                  'tensorrt': PROVIDER_PREFERENCE}.get(device)
        if wanted is None:
            raise ValueError(f"onnxruntime backend: unknown device {device!r} "
                             f"(use auto, cpu, cuda or tensorrt)")
        if device in ('cuda', 'gpu', 'tensorrt') and wanted[0] not in available:
            raise RuntimeError(f'onnxruntime backend: device {device!r} needs {wanted[0]}, this '
                               f'ONNX Runtime build has {list(available)}')
        providers: List[Any] = []
        for p in wanted:
            if p not in available:
                continue
            if p == 'TensorrtExecutionProvider':
                trt_opts: Dict[str, Any] = {'device_id': device_id, 'trt_fp16_enable': bool(trt_fp16)}
                if trt_cache_dir:
                    os.makedirs(trt_cache_dir, exist_ok=True)
                    trt_opts.update(trt_engine_cache_enable=True, trt_engine_cache_path=trt_cache_dir)
                    if trt_timing_cache:
                        trt_opts.update(trt_timing_cache_enable=True, trt_timing_cache_path=trt_cache_dir)
                if trt_workspace_mb is not None:
                    if isinstance(trt_workspace_mb, bool) or not isinstance(trt_workspace_mb, int) \
                            or trt_workspace_mb <= 0:
                        raise ValueError(f'onnxruntime backend: trt_workspace_mb {trt_workspace_mb!r} '
                                         f'must be a positive whole number')
                    trt_opts['trt_max_workspace_size'] = trt_workspace_mb << 20
                providers.append((p, trt_opts))
            elif p == 'CUDAExecutionProvider':
                providers.append((p, {'device_id': device_id}))
            else:
                providers.append(p)
        return providers

    def _run(self, batch: np.ndarray) -> Dict[str, np.ndarray]:
        results = self.session.run(self._output_names, {self._input_name: batch})
        return dict(zip(self._output_names, results))


def ort_spinning_config(allow_spinning: bool, spin_between_runs: bool = False) -> Dict[str, str]:
    """Session config entries for how ONNX Runtime's thread-pool threads wait for work.

    ``allow_spinning``: while a run is in progress the threads busy-wait between operators instead
    of sleeping (each operator then starts without a thread wake-up; without it every operator pays
    one, milliseconds per run on a virtual machine). ``spin_between_runs``: they also keep spinning
    after the run returns (ONNX Runtime's default: about 2^20 pause iterations, 30-40 ms of a core
    per run here), which only pays off when the next run follows within that time. A camera at
    5-30 Hz leaves 30-200 ms between frames, so by default the threads go to sleep as soon as a run
    returns (``session.force_spinning_stop``) and leave the CPU to the DDS threads, the executor,
    the subscribers and other nodes.
    """
    if not allow_spinning:
        return {'session.intra_op.allow_spinning': '0', 'session.inter_op.allow_spinning': '0'}
    return {} if spin_between_runs else {'session.force_spinning_stop': '1'}


def _ort_dtype(type_string: str) -> str:
    # 'tensor(float)' -> 'float32'
    inner = type_string[type_string.find('(') + 1:type_string.rfind(')')]
    return {'float': 'float32', 'float16': 'float16', 'double': 'float64'}.get(inner, inner)


# ---------------------------------------------------------------------------------------------
# registry

BackendFactory = Callable[..., Backend]
_REGISTRY: Dict[str, Union[BackendFactory, str]] = {
    'onnxruntime': OnnxRuntimeBackend,
    # imported on first use: keeps torch out of every process that does not ask for it
    'torch': 'aiat_perception.inference.torch_backend:TorchBackend',
    'tensorrt': 'aiat_perception.inference.tensorrt_backend:TensorRTBackend',
}


def register_backend(name: str, factory: Union[BackendFactory, str]) -> None:
    """Add a backend: a callable ``(bundle, **options) -> Backend`` or a lazy 'module:attribute'."""
    _REGISTRY[name] = factory


def available_backends() -> List[str]:
    return sorted(_REGISTRY)


def backend_problem(name: str) -> Optional[str]:
    """None when backend ``name`` can be created here, else why not; a lazily registered backend's
    module may say so with an ``availability()`` function (imported without its heavy libraries)."""
    if name not in _REGISTRY:
        return f'unknown backend {name!r}; registered: {available_backends()}'
    factory = _REGISTRY[name]
    module_name = factory.partition(':')[0] if isinstance(factory, str) else getattr(factory, '__module__', '')
    module = importlib.import_module(module_name) if module_name else None
    check = getattr(module, 'availability', None)
    return check() if callable(check) else None


def create_backend(name: str, bundle: Union[Bundle, str, os.PathLike], **options: Any) -> Backend:
    if name not in _REGISTRY:
        raise ValueError(f'unknown backend {name!r}; registered: {available_backends()}')
    if not isinstance(bundle, Bundle):
        bundle = load_bundle(bundle)
    factory = _REGISTRY[name]
    if isinstance(factory, str):
        module_name, _, attribute = factory.partition(':')
        factory = getattr(importlib.import_module(module_name), attribute)
        _REGISTRY[name] = factory
    return factory(bundle, **options)
