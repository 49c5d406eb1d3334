"""Device memory, pinned host memory and streams for TensorRT, from whichever binding is installed.

Order: cuda-python's runtime API (``cuda.bindings.runtime`` since cuda-python 12.6/13,
``cuda.cudart`` before), then pycuda. TensorRT uses the CUDA runtime's primary context; with pycuda
that context is retained and made current so both share it.

Never run on hardware here (no GPU where this was written).
"""
from __future__ import annotations

import ctypes
import importlib
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from .trt_api import TensorRTUnavailable

CUDA_HINT = ("install CUDA Python bindings matching the driver: `pip install 'cuda-python>=12,<14'` "
             "(or pycuda, built from source against the CUDA toolkit)")


class CudaError(RuntimeError):
    pass


class CudaRuntime:
    """The few calls the engine builder and the TensorRT backend need."""

    name = ''

    def malloc(self, nbytes: int) -> int: ...
    def free(self, ptr: int) -> None: ...
    def pinned_empty(self, shape: Sequence[int], dtype: Any) -> np.ndarray: ...
    def free_pinned(self, array: np.ndarray) -> None: ...
    def stream(self) -> Any: ...
    def stream_handle(self, stream: Any) -> int: ...
    def destroy_stream(self, stream: Any) -> None: ...
    def htod_async(self, dst: int, src: np.ndarray, stream: Any) -> None: ...
    def dtoh_async(self, dst: np.ndarray, src: int, stream: Any) -> None: ...
    def synchronize(self, stream: Any) -> None: ...
    def device(self, index: int) -> Tuple[str, Tuple[int, int]]:
        """(GPU name, (major, minor) compute capability) of device ``index``."""


class _CudaPythonRuntime(CudaRuntime):
    def __init__(self, rt: Any, name: str, device_index: int = 0):
        self.rt, self.name = rt, name
        self._pinned: dict = {}
        self._call(rt.cudaSetDevice(device_index))

    def _call(self, result: Any) -> Any:
        if not isinstance(result, tuple):
            result = (result,)
        err, rest = result[0], result[1:]
        if err != self.rt.cudaError_t.cudaSuccess:
            text = self.rt.cudaGetErrorString(err)
            text = text[-1] if isinstance(text, tuple) else text
            text = text.decode() if isinstance(text, bytes) else str(text)
            raise CudaError(f'CUDA runtime error {int(err)}: {text}')
        if not rest:
            return None
        return rest[0] if len(rest) == 1 else rest

    def malloc(self, nbytes: int) -> int:
        return int(self._call(self.rt.cudaMalloc(max(1, int(nbytes)))))

    def free(self, ptr: int) -> None:
        self._call(self.rt.cudaFree(ptr))

    def pinned_empty(self, shape: Sequence[int], dtype: Any) -> np.ndarray:
        dtype = np.dtype(dtype)
        count = int(np.prod(shape)) if len(shape) else 1
        ptr = int(self._call(self.rt.cudaMallocHost(max(1, count * dtype.itemsize))))
        raw = (ctypes.c_byte * (count * dtype.itemsize)).from_address(ptr)
        array = np.frombuffer(raw, dtype=dtype, count=count).reshape(tuple(shape))
        self._pinned[id(array)] = ptr
        return array

    def free_pinned(self, array: np.ndarray) -> None:
        ptr = self._pinned.pop(id(array), None)
        if ptr is not None:
            self._call(self.rt.cudaFreeHost(ptr))

    def stream(self) -> Any:
        return self._call(self.rt.cudaStreamCreate())

    def stream_handle(self, stream: Any) -> int:
        return int(stream)

    def destroy_stream(self, stream: Any) -> None:
        self._call(self.rt.cudaStreamDestroy(stream))

    def htod_async(self, dst: int, src: np.ndarray, stream: Any) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._call(self.rt.cudaMemcpyAsync(dst, src.ctypes.data, src.nbytes, kind, stream))

    def dtoh_async(self, dst: np.ndarray, src: int, stream: Any) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._call(self.rt.cudaMemcpyAsync(dst.ctypes.data, src, dst.nbytes, kind, stream))

    def synchronize(self, stream: Any) -> None:
        self._call(self.rt.cudaStreamSynchronize(stream))

    def device(self, index: int) -> Tuple[str, Tuple[int, int]]:
        props = self._call(self.rt.cudaGetDeviceProperties(index))
        name = props.name
        name = bytes(name).split(b'\0', 1)[0].decode(errors='replace') if not isinstance(name, str) else name
        return name.strip(), (int(props.major), int(props.minor))


class _PyCudaRuntime(CudaRuntime):
    name = 'pycuda'

    def __init__(self, device_index: int = 0):
        import pycuda.driver as drv
        drv.init()
        self.drv = drv
        self._device = drv.Device(device_index)
        # TensorRT works in the runtime API's primary context: share it instead of creating our own.
        self._context = self._device.retain_primary_context()
        self._context.push()
        self._allocations: dict = {}

    def malloc(self, nbytes: int) -> int:
        allocation = self.drv.mem_alloc(max(1, int(nbytes)))
        self._allocations[int(allocation)] = allocation
        return int(allocation)

    def free(self, ptr: int) -> None:
        allocation = self._allocations.pop(int(ptr), None)
        if allocation is not None:
            allocation.free()

    def pinned_empty(self, shape: Sequence[int], dtype: Any) -> np.ndarray:
        return self.drv.pagelocked_empty(tuple(shape), np.dtype(dtype))

    def free_pinned(self, array: np.ndarray) -> None:
        base = getattr(array, 'base', None)
        if base is not None and hasattr(base, 'free'):
            base.free()

    def stream(self) -> Any:
        return self.drv.Stream()

    def stream_handle(self, stream: Any) -> int:
        return int(stream.handle)

    def destroy_stream(self, stream: Any) -> None:
        pass  # freed with the Python object

    def htod_async(self, dst: int, src: np.ndarray, stream: Any) -> None:
        self.drv.memcpy_htod_async(dst, src, stream)

    def dtoh_async(self, dst: np.ndarray, src: int, stream: Any) -> None:
        self.drv.memcpy_dtoh_async(dst, src, stream)

    def synchronize(self, stream: Any) -> None:
        stream.synchronize()

    def device(self, index: int) -> Tuple[str, Tuple[int, int]]:
        dev = self.drv.Device(index)
        major, minor = dev.compute_capability()
        return dev.name().strip(), (int(major), int(minor))


def _cuda_python_module() -> Tuple[Optional[Any], str]:
    for module, label in (('cuda.bindings.runtime', 'cuda-python (cuda.bindings.runtime)'),
                          ('cuda.cudart', 'cuda-python (cuda.cudart)')):
        try:
            return importlib.import_module(module), label
        except Exception:
            continue
    return None, ''


def cuda_runtime(device_index: int = 0) -> CudaRuntime:
    """A :class:`CudaRuntime` for device ``device_index``; :class:`TensorRTUnavailable` when no
    binding is installed or no GPU answers."""
    problems: List[str] = []
    module, label = _cuda_python_module()
    if module is not None:
        try:
            return _CudaPythonRuntime(module, label, device_index)
        except Exception as exc:
            problems.append(f'{label}: {exc}')
    try:
        importlib.import_module('pycuda.driver')
    except Exception as exc:
        if module is None:
            problems.append(f'no CUDA Python binding ({type(exc).__name__}: {exc})')
    else:
        try:
            return _PyCudaRuntime(device_index)
        except Exception as exc:
            problems.append(f'pycuda: {exc}')
    raise TensorRTUnavailable(f'no usable CUDA device through Python ({"; ".join(problems)}); {CUDA_HINT}')


def cuda_problem() -> Optional[str]:
    """None when a CUDA binding is installed (the device itself is checked when one is opened)."""
    import importlib.util
    names = ('cuda', 'pycuda')
    if any(importlib.util.find_spec(n) is not None for n in names):
        return None
    return f'no CUDA Python binding is installed; {CUDA_HINT}'
