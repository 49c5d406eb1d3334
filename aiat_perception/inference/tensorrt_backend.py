"""TensorRT backend: a serialized engine run through the name-based tensor API (TensorRT 8.6/10.x).

Deserializes the engine after checking its metadata against this machine and the bundle (a mismatch
is refused with the rebuild command), binds device buffers by tensor name (``set_tensor_address``),
copies through pinned host buffers on one CUDA stream and runs ``execute_async_v3``. Outputs follow
the ONNX Runtime backend's contract ({output name: float32 [B, cells, values]}), so decoding and NMS
are shared. Device memory and streams come from cuda-python or pycuda (``engine/cuda_api.py``).

The engine comes from ``engine=PATH`` or from the engine cache (``engine/cache.py``), built there at
start-up when ``build_if_missing`` is set.

Flexible bundles: the engine's optimization profile is a box of input sizes (``engine/profile.py``).
Each run sets the actual input shape (``set_input_shape``), refuses a shape outside the profile with
the rebuild command, reads the output shapes from the context afterwards, and grows the device and
pinned host buffers when a shape needs more than they hold (:func:`grown_buffers`). The box is
``input_sizes``, which the Detector's keep_aspect size picker respects.

Never run on hardware: no GPU and no TensorRT where it was written; the pure helpers are unit-tested.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .backends import Backend, BackendUnavailable, TensorInfo
from .bundle import Bundle, BundleError


def availability() -> Optional[str]:
    """None when the backend can be created here, else why not (one line)."""
    from ..engine.cuda_api import cuda_problem
    from ..engine.trt_api import tensorrt_problem
    return tensorrt_problem() or cuda_problem()


def check_engine_io(bundle: Bundle, inputs: Dict[str, Tuple[int, ...]],
                    outputs: Dict[str, Tuple[int, ...]]) -> List[str]:
    """Problems between an engine's I/O tensors (name -> shape, -1 = dynamic) and the bundle."""
    problems = []
    spec = bundle.input
    if spec.name not in inputs:
        problems.append(f'engine has no input {spec.name!r} (its inputs: {sorted(inputs)})')
    else:
        shape = inputs[spec.name]
        want = (spec.channels, spec.height, spec.width)
        if len(shape) != 4 or any(d >= 0 and d != w for d, w in zip(shape[1:], want)):
            problems.append(f'engine input {spec.name!r} is {list(shape)}, the bundle needs '
                            f'[batch, {want[0]}, {want[1]}, {want[2]}]')
    if len(inputs) > 1:
        problems.append(f'engine has {len(inputs)} inputs {sorted(inputs)}; bundles have one')
    cells = bundle.num_cells
    for key, out in bundle.outputs.items():
        if out.name not in outputs:
            problems.append(f'engine has no output {out.name!r} (bundle outputs.{key}; its outputs: '
                            f'{sorted(outputs)})')
            continue
        shape = outputs[out.name]
        want = (cells, out.shape[2])
        if len(shape) != 3 or any(d >= 0 and d != w for d, w in zip(shape[1:], want)):
            problems.append(f'engine output {out.name!r} is {list(shape)}, the bundle needs '
                            f'[batch, {want[0]}, {want[1]}]')
    return problems


def tensor_name_map(engine_names: Sequence[str], bundle_to_engine: Optional[Dict[str, str]] = None
                    ) -> Dict[str, str]:
    """{name the bundle uses: name in the engine}; identity unless the metadata maps names."""
    mapping = dict(bundle_to_engine or {})
    unknown = [e for e in mapping.values() if e not in engine_names]
    if unknown:
        raise BundleError(f'engine metadata maps to tensors {unknown} the engine does not have '
                          f'(it has {list(engine_names)})')
    to_bundle = {e: b for b, e in mapping.items()}
    return {to_bundle.get(e, e): e for e in engine_names}


def tensor_nbytes(shape: Sequence[int], dtype: Any) -> int:
    """Bytes of a tensor of ``shape`` (no dynamic dimensions) and ``dtype``."""
    if any(int(d) < 0 for d in shape):
        raise ValueError(f'tensor shape {list(shape)} still has dynamic dimensions')
    return int(np.prod([int(d) for d in shape], dtype=np.int64)) * np.dtype(dtype).itemsize


def grown_buffers(capacity: Dict[str, int], needed: Dict[str, int]) -> Dict[str, int]:
    """{tensor: new byte size} for the buffers that must be (re)allocated: those missing or smaller
    than ``needed``. Buffers only grow (a smaller frame reuses a bigger buffer), so a camera that
    alternates sizes allocates once per size maximum, not per frame."""
    return {name: int(n) for name, n in needed.items() if int(n) > capacity.get(name, -1)}


def shape_refusal(engine: Any, shape: Sequence[int], sizes: Any, batch: Sequence[int],
                  command: str) -> Optional[str]:
    """The message refusing input ``shape`` outside the engine's profile (None when inside)."""
    from ..engine.profile import check_input_shape
    problem = check_input_shape(shape, sizes, batch)
    if problem is None:
        return None
    return (f'tensorrt backend: engine {engine} cannot take input {list(shape)}: {problem} '
            f'(profile: batch {batch[0]}:{batch[1]}:{batch[2]}, {sizes.describe()}). Pick a size '
            f'inside it (the Detector does for keep_aspect) or rebuild the engine for it: {command}')


def concrete_shape(shape: Sequence[int], batch: int) -> Tuple[int, ...]:
    """An engine shape with its dynamic batch (-1) set; other dynamic dims are an error."""
    out = tuple(batch if i == 0 and d < 0 else int(d) for i, d in enumerate(shape))
    if any(d < 0 for d in out):
        raise BundleError(f'engine tensor shape {list(shape)} has dynamic dimensions besides the batch')
    return out


class TensorRTBackend(Backend):
    """Options: ``engine`` (path; default: the engine cache), ``precision`` ('fp16'), ``batch``
    (N or (min, opt, max) for a cached engine, default 1), ``cache_dir``, ``build_if_missing``
    (False), ``workspace_mb``, ``device_id`` (0), ``warmup`` (runs at start, default 3), and for a
    flexible bundle's cached engine ``min_size``/``max_size`` ((height, width) or 'HxW': the
    profile box; default engine/profile.py's)."""

    name = 'tensorrt'

    def __init__(self, bundle: Bundle, engine: Optional[Union[str, Path]] = None, precision: str = 'fp16',
                 batch: Union[int, Sequence[int]] = 1, cache_dir: Optional[Union[str, Path]] = None,
                 build_if_missing: bool = False, workspace_mb: Optional[int] = None,
                 device_id: int = 0, warmup: int = 3,
                 min_size: Optional[Union[str, Sequence[int]]] = None,
                 max_size: Optional[Union[str, Sequence[int]]] = None):
        super().__init__(bundle)
        problem = availability()
        if problem:
            raise BackendUnavailable(f'tensorrt backend is not available: {problem}')
        from ..engine.builder import machine_facts
        from ..engine.cache import ensure_engine
        from ..engine.cuda_api import cuda_runtime
        from ..engine.metadata import build_command, check_engine, read_metadata
        from ..engine.profile import parse_batch, parse_size
        from ..engine.trt_api import CollectingLogger, import_tensorrt

        trt = import_tensorrt()
        self._trt = trt
        self._cuda = cuda = cuda_runtime(device_id)
        machine = machine_facts(device_id, trt, cuda)
        if engine is None:
            engine = ensure_engine(bundle, precision, parse_batch(batch), cache_dir, build_if_missing,
                                   workspace_mb, machine=machine,
                                   min_size=None if min_size is None else parse_size(min_size),
                                   max_size=None if max_size is None else parse_size(max_size))
        engine = Path(engine)
        if not engine.is_file():
            raise BundleError(f'{engine}: engine file does not exist')
        meta = read_metadata(engine)
        check_engine(engine, meta, machine, bundle)
        self.engine_path, self.metadata = engine, meta
        self.device = f'tensorrt:{device_id}'
        self._stream = None

        self._logger = CollectingLogger(trt)
        self._runtime = trt.Runtime(self._logger)
        self._engine = self._runtime.deserialize_cuda_engine(engine.read_bytes())
        if self._engine is None:
            detail = '; '.join(self._logger.errors()) or 'no detail given'
            raise BundleError(f'{engine}: TensorRT {trt.__version__} cannot deserialize the engine ({detail})')
        self._context = self._engine.create_execution_context()
        # Engines exported by Torch-TensorRT name their tensors themselves; their metadata maps them.
        engine_names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        self._engine_name = tensor_name_map(engine_names, meta.extra.get('tensor_names'))
        names = list(self._engine_name)
        shapes = {n: tuple(int(d) for d in self._engine.get_tensor_shape(self._engine_name[n])) for n in names}
        is_input = {n: self._engine.get_tensor_mode(self._engine_name[n]) == trt.TensorIOMode.INPUT
                    for n in names}
        inputs = {n: s for n, s in shapes.items() if is_input[n]}
        outputs = {n: s for n, s in shapes.items() if not is_input[n]}
        problems = check_engine_io(bundle, inputs, outputs)
        if problems:
            raise BundleError(f'{engine}: ' + '; '.join(problems))

        self.min_batch, self.max_batch = meta.batch[0], meta.batch[2]
        self._input_name = bundle.input.name
        self._output_names = [bundle.outputs['scores'].name, bundle.outputs['boxes'].name]
        self._inputs = {self._input_name: TensorInfo(self._input_name, ('batch',) + inputs[self._input_name][1:])}
        self._outputs = {n: TensorInfo(n, ('batch',) + outputs[n][1:]) for n in self._output_names}
        self._dtypes = {n: np.dtype(trt.nptype(self._engine.get_tensor_dtype(self._engine_name[n])))
                        for n in names}
        if self._dtypes[self._input_name] != np.float32:
            raise BundleError(f'{engine}: input {self._input_name!r} is {self._dtypes[self._input_name]}, '
                              f'expected float32 (the bundle\'s preprocessing output)')
        self.input_sizes = self._profile_sizes(engine, meta, inputs[self._input_name])
        self._rebuild_command = build_command(
            bundle.path, meta.precision, meta.batch, output=engine, workspace_mb=meta.workspace_mb,
            calibration=(meta.calibration or {}).get('source'), sizes=self.input_sizes)

        self._stream = cuda.stream()
        self._host: Dict[str, np.ndarray] = {}        # pinned, flat, grown on demand
        self._device_ptr: Dict[str, int] = {}
        self._capacity: Dict[str, int] = {}           # bytes of each tensor's buffers
        opt_h, opt_w = self.input_sizes.opt
        zeros = np.zeros((meta.batch[1], bundle.input.channels, opt_h, opt_w), np.float32)
        for _ in range(max(0, int(warmup))):
            self._run(zeros)

    def _profile_sizes(self, engine: Path, meta: Any, input_shape: Sequence[int]) -> Any:
        """The engine's own profile 0 as a SizeRange, checked against its metadata."""
        from ..engine.profile import SizeRange, size_range_of_shapes
        name = self._engine_name[self._input_name]
        if all(int(d) >= 0 for d in input_shape[2:]):       # static height and width
            hw = (int(input_shape[2]), int(input_shape[3]))
            sizes = SizeRange(hw, hw, hw, 1)
        else:
            shapes = self._engine.get_tensor_profile_shape(name, 0)    # [min, opt, max] Dims
            sizes = size_range_of_shapes(shapes, self.bundle.input.size_multiple)
        recorded = meta.input_sizes
        if recorded is not None and (recorded.min, recorded.max) != (sizes.min, sizes.max):
            raise BundleError(f'{engine}: the engine\'s profile is {sizes.describe()} but its metadata '
                              f'says {recorded.describe()}: the metadata belongs to another engine; '
                              f'rebuild with aiat-engine build')
        return sizes

    def _ensure_buffers(self, needed: Dict[str, int]) -> None:
        """(Re)allocate the device and pinned host buffers that ``needed`` bytes outgrow, and give
        TensorRT the new addresses."""
        cuda = self._cuda
        grow = grown_buffers(self._capacity, needed)
        if not grow:
            return
        cuda.synchronize(self._stream)      # nothing in flight uses the old buffers
        for name, nbytes in grow.items():
            if name in self._device_ptr:
                cuda.free(self._device_ptr.pop(name))
                cuda.free_pinned(self._host.pop(name))
            count = -(-nbytes // self._dtypes[name].itemsize)
            self._host[name] = cuda.pinned_empty((count,), self._dtypes[name])
            self._device_ptr[name] = cuda.malloc(nbytes)
            self._capacity[name] = nbytes
            if not self._context.set_tensor_address(self._engine_name[name], self._device_ptr[name]):
                raise BundleError(f'{self.engine_path}: TensorRT refused the address of tensor {name!r}')

    def _run(self, batch: np.ndarray) -> Dict[str, np.ndarray]:
        n = len(batch)
        run_n = max(n, self.min_batch)     # pad up to the profile's minimum batch
        shape = (run_n,) + tuple(int(d) for d in batch.shape[1:])
        refusal = shape_refusal(self.engine_path, shape, self.input_sizes, self.metadata.batch,
                                self._rebuild_command)
        if refusal:
            raise ValueError(refusal)
        cuda, stream = self._cuda, self._stream
        context, input_name = self._context, self._input_name
        if not context.set_input_shape(self._engine_name[input_name], shape):
            raise ValueError(f'tensorrt backend: engine {self.engine_path} refused input shape '
                             f'{list(shape)} ({"; ".join(self._logger.errors()[-3:]) or "no detail"}); '
                             f'rebuild: {self._rebuild_command}')
        # output shapes follow from the input shape once it is set
        out_shapes = {name: tuple(int(d) for d in context.get_tensor_shape(self._engine_name[name]))
                      for name in self._output_names}
        for name, out_shape in out_shapes.items():
            if any(d < 0 for d in out_shape):
                raise RuntimeError(f'tensorrt backend: output {name!r} has no concrete shape '
                                   f'({list(out_shape)}) for input {list(shape)}')
        needed = {input_name: tensor_nbytes(shape, self._dtypes[input_name])}
        needed.update({name: tensor_nbytes(s, self._dtypes[name]) for name, s in out_shapes.items()})
        self._ensure_buffers(needed)

        host_in = self._host[input_name][:int(np.prod(shape))].reshape(shape)
        np.copyto(host_in[:n], batch, casting='same_kind')
        if run_n > n:
            host_in[n:] = 0
        cuda.htod_async(self._device_ptr[input_name], host_in, stream)
        if not context.execute_async_v3(cuda.stream_handle(stream)):
            raise RuntimeError(f'tensorrt backend: execute_async_v3 failed '
                               f'({"; ".join(self._logger.errors()[-3:]) or "no detail"})')
        views = {}
        for name, out_shape in out_shapes.items():
            view = self._host[name][:int(np.prod(out_shape))].reshape(out_shape)
            cuda.dtoh_async(view, self._device_ptr[name], stream)
            views[name] = view
        cuda.synchronize(stream)
        # copies: the pinned buffers are overwritten by the next run; fp16 outputs become float32
        return {name: np.array(view[:n], dtype=np.float32) for name, view in views.items()}

    def close(self) -> None:
        cuda = getattr(self, '_cuda', None)
        if cuda is None:
            return
        if getattr(self, '_stream', None) is not None:
            cuda.synchronize(self._stream)
        for ptr in getattr(self, '_device_ptr', {}).values():
            cuda.free(ptr)
        for host in getattr(self, '_host', {}).values():
            cuda.free_pinned(host)
        if getattr(self, '_stream', None) is not None:
            cuda.destroy_stream(self._stream)
        self._device_ptr, self._host, self._capacity, self._stream = {}, {}, {}, None
        self._context = self._engine = self._runtime = None
