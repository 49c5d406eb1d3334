"""Build a serialized TensorRT engine from a bundle's ONNX graph (TensorRT 8.6 and 10.x).

Explicit-batch network, ONNX parser errors reported with node names, one optimization profile from
the bundle's input spec (``profile.py``), timing-cache reuse, FP16, and INT8 entropy calibration fed
through the bundle's preprocessing with a calibration cache. The engine's metadata is written next to
it (``metadata.py``).

Written against NVIDIA's documented Python API; it has never run on hardware (no GPU and no TensorRT
where it was written). The pure helpers (flags, error formatting, shapes) are unit-tested.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from aiat_perception.file_hash import sha256_file

from .metadata import (EngineMetadata, MachineFacts, PRECISIONS, calibration_summary, now_iso,
                       workspace_bytes, write_metadata)
from .profile import BatchProfile, check_batch, check_network_input, input_size_range, profile_shapes
from .trt_api import CollectingLogger, import_tensorrt, version_tuple


class EngineBuildError(RuntimeError):
    pass


@dataclass
class BuildOptions:
    precision: str = 'fp16'
    batch: Sequence[int] = (1, 1, 1)
    workspace_mb: Optional[int] = None
    calibration: Optional[str] = None          # directory of images or a split file (int8)
    calibration_batch: int = 8
    calibration_limit: Optional[int] = 512
    calibration_cache: Optional[Union[str, Path]] = None   # default: <engine>.calib
    timing_cache: Optional[Union[str, Path]] = None
    device_index: int = 0
    # flexible bundles: the profile's (height, width) box; default min one size_multiple square, max
    # engine/profile.py default_max_size
    min_size: Optional[Tuple[int, int]] = None
    max_size: Optional[Tuple[int, int]] = None


@dataclass
class BuildResult:
    engine_path: Path
    metadata: EngineMetadata
    seconds: float
    warnings: List[str] = field(default_factory=list)


def machine_facts(device_index: int = 0, trt: Any = None, cuda: Any = None) -> MachineFacts:
    """TensorRT version and the GPU (name, compute capability) of device ``device_index``."""
    from .cuda_api import cuda_runtime
    trt = trt or import_tensorrt()
    cuda = cuda or cuda_runtime(device_index)
    name, (major, minor) = cuda.device(device_index)
    return MachineFacts(tensorrt_version=str(trt.__version__), gpu_name=name,
                        compute_capability=f'{major}.{minor}')


def network_flags(tensorrt_version: str, explicit_batch_bit: Optional[int]) -> int:
    """``create_network`` flags: TensorRT 8.x needs EXPLICIT_BATCH for ONNX; 10.x is always explicit
    batch and deprecates the flag."""
    if version_tuple(tensorrt_version)[0] >= 10 or explicit_batch_bit is None:
        return 0
    return 1 << int(explicit_batch_bit)


def onnx_node_labels(onnx_path: Union[str, Path]) -> List[Tuple[str, str]]:
    """(name, op_type) of every node in graph order; used to name the failing node when the parser
    of TensorRT 8.6 reports only its index. Empty without the ``onnx`` package."""
    try:
        import onnx
    except ImportError:
        return []
    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
    except Exception:
        return []
    return [(n.name, n.op_type) for n in model.graph.node]


def format_parser_error(desc: str, code: str = '', node_index: int = -1, node_name: str = '',
                        node_operator: str = '', labels: Sequence[Tuple[str, str]] = ()) -> str:
    """'node 12 "Conv_12" (Conv): <desc> [UNSUPPORTED_NODE]'; the name comes from ``labels`` when
    the parser gives only the index."""
    if node_index is not None and node_index >= 0 and not node_name and node_index < len(labels):
        node_name, node_operator = labels[node_index][0], node_operator or labels[node_index][1]
    where = []
    if node_index is not None and node_index >= 0:
        where.append(f'node {node_index}')
    if node_name:
        where.append(f'"{node_name}"')
    if node_operator:
        where.append(f'({node_operator})')
    text = (' '.join(where) + ': ' if where else '') + str(desc).strip()
    return text + (f' [{code}]' if code else '')


def _parser_errors(parser: Any, onnx_path: Path) -> List[str]:
    labels = None
    out = []
    for i in range(parser.num_errors):
        error = parser.get_error(i)

        def get(method: str, default: Any = '') -> Any:
            fn = getattr(error, method, None)    # node_name/node_operator: TensorRT 10 only
            try:
                return fn() if callable(fn) else default
            except Exception:
                return default

        index = get('node', -1)
        name = get('node_name')
        if labels is None and not name:
            labels = onnx_node_labels(onnx_path)
        out.append(format_parser_error(get('desc'), str(get('code')).rsplit('.', 1)[-1], index, name,
                                       get('node_operator'), labels or ()))
    return out


def build_engine(bundle: Any, engine_path: Union[str, Path], options: BuildOptions) -> BuildResult:
    """Build, write ``engine_path`` and ``engine_path.json``; :class:`EngineBuildError` with the
    parser's or builder's errors when TensorRT refuses."""
    from ..inference.bundle import Bundle, load_bundle
    from .cuda_api import cuda_runtime

    if not isinstance(bundle, Bundle):
        bundle = load_bundle(bundle)
    if options.precision not in PRECISIONS:
        raise ValueError(f'precision {options.precision!r} is not one of {list(PRECISIONS)}')
    batch: BatchProfile = check_batch(tuple(options.batch))
    if options.precision == 'int8' and not options.calibration:
        raise EngineBuildError('int8 needs calibration data: --calibration DIR_OR_SPLIT_FILE '
                               '(images the vehicle sees; 100-500 is typical)')
    workspace = workspace_bytes(options.workspace_mb)
    engine_path = Path(engine_path)
    started = time.monotonic()

    trt = import_tensorrt()
    cuda = cuda_runtime(options.device_index)
    machine = machine_facts(options.device_index, trt, cuda)
    logger = CollectingLogger(trt)
    builder = trt.Builder(logger)
    explicit = getattr(trt.NetworkDefinitionCreationFlag, 'EXPLICIT_BATCH', None)
    network = builder.create_network(network_flags(trt.__version__, explicit))
    parser = trt.OnnxParser(network, logger)
    onnx_path = bundle.onnx_path
    if not parser.parse_from_file(str(onnx_path)):
        errors = _parser_errors(parser, onnx_path) or logger.errors() or ['no detail given']
        raise EngineBuildError(f'{onnx_path}: the TensorRT {trt.__version__} ONNX parser failed: '
                               + '; '.join(errors))

    network_inputs = {}
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        network_inputs[tensor.name] = tuple(int(d) for d in tensor.shape)
    config = builder.create_builder_config()
    if workspace is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace)
    profile = builder.create_optimization_profile()
    sizes = input_size_range(bundle.input, options.min_size, options.max_size)
    shapes = profile_shapes(bundle.input, batch, sizes.max, sizes.min)
    for name, (low, opt, high) in shapes.items():
        if name not in network_inputs:
            raise EngineBuildError(f'{onnx_path}: network has no input {name!r} (bundle input.name); '
                                   f'its inputs are {sorted(network_inputs)}')
        check_network_input(name, network_inputs[name], (low, opt, high))
        profile.set_shape(name, low, opt, high)
    config.add_optimization_profile(profile)

    flags: List[str] = []
    warnings: List[str] = []
    if options.precision in ('fp16', 'int8'):
        if not getattr(builder, 'platform_has_fast_fp16', True):
            warnings.append('this GPU has no fast FP16; the engine may not be faster than fp32')
        config.set_flag(trt.BuilderFlag.FP16)   # int8 falls back to fp16 where a layer has no int8 kernel
        flags.append('FP16')
    calibrator = None
    calibration = None
    if options.precision == 'int8':
        from .calibration import CalibrationBatches, make_entropy_calibrator
        if not getattr(builder, 'platform_has_fast_int8', True):
            warnings.append('this GPU has no fast INT8')
        static_batch = network_inputs[bundle.input.name][0]
        batches = CalibrationBatches(bundle, options.calibration,
                                     static_batch if static_batch > 0 else options.calibration_batch,
                                     options.calibration_limit)
        if static_batch > 0 and batches.batch_size != static_batch:
            raise EngineBuildError(f'{options.calibration}: {len(batches.paths)} calibration images, '
                                   f'the graph\'s fixed batch needs at least {static_batch}')
        cache_file = Path(options.calibration_cache or engine_path.with_name(engine_path.name + '.calib'))
        calibrator = make_entropy_calibrator(trt, batches, cache_file, cuda)
        config.set_flag(trt.BuilderFlag.INT8)
        flags.append('INT8')
        config.int8_calibrator = calibrator
        name = bundle.input.name
        if any(d < 0 for d in network_inputs[name]):
            # Dynamic shapes: calibration runs at one fixed shape, given by its own profile: the
            # trained size (the profile's opt), which CalibrationBatches produces.
            fixed = (batches.batch_size,) + shapes[name][1][1:]
            calibration_profile = builder.create_optimization_profile()
            calibration_profile.set_shape(name, fixed, fixed, fixed)
            config.set_calibration_profile(calibration_profile)
        calibration = (batches, cache_file)

    timing_cache_file = Path(options.timing_cache) if options.timing_cache else None
    if timing_cache_file is not None:
        data = timing_cache_file.read_bytes() if timing_cache_file.is_file() else b''
        timing_cache = config.create_timing_cache(data)
        config.set_timing_cache(timing_cache, False)   # ignore_mismatch=False: never reuse another GPU's
        flags.append('TIMING_CACHE')

    try:
        serialized = builder.build_serialized_network(network, config)
    finally:
        if calibrator is not None:
            calibrator.release()
    if serialized is None:
        raise EngineBuildError(f'{onnx_path}: TensorRT {trt.__version__} could not build a '
                               f'{options.precision} engine: ' + ('; '.join(logger.errors()) or 'no detail given'))

    engine_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = engine_path.with_name(engine_path.name + '.tmp')
    with open(tmp, 'wb') as f:
        f.write(memoryview(serialized))
    tmp.replace(engine_path)
    if timing_cache_file is not None:
        timing_cache_file.parent.mkdir(parents=True, exist_ok=True)
        timing_cache_file.write_bytes(bytes(memoryview(config.get_timing_cache().serialize())))

    calibration_info = None
    if calibration is not None:
        batches, cache_file = calibration
        calibration_info = calibration_summary(
            str(options.calibration), batches.images_used, batches.batch_size,
            sha256_file(cache_file) if cache_file.is_file() else None)
        calibration_info['fingerprint'] = batches.fingerprint()
    spec = bundle.input
    meta = EngineMetadata(
        tensorrt_version=machine.tensorrt_version, gpu_name=machine.gpu_name,
        compute_capability=machine.compute_capability, precision=options.precision, batch=batch,
        bundle_sha256=bundle.model.sha256, bundle_name=bundle.name, input_name=spec.name,
        input_shape=(spec.channels, spec.height, spec.width), builder_flags=tuple(flags),
        workspace_mb=options.workspace_mb, calibration=calibration_info, built_with='aiat-engine build',
        created=now_iso(), engine_file=engine_path.name, engine_sha256=sha256_file(engine_path),
        extra={'bundle_path': str(bundle.path)}, input_sizes=sizes)
    write_metadata(engine_path, meta)
    return BuildResult(engine_path, meta, time.monotonic() - started, warnings + [
        m for s, m in logger.messages if 'WARNING' in s][:20])


def describe_shapes(shapes: Dict[str, Tuple[Tuple[int, ...], ...]]) -> str:
    return ', '.join(f'{name}: min {list(s[0])} opt {list(s[1])} max {list(s[2])}' for name, s in shapes.items())
