"""Engine metadata: a JSON file next to each engine saying what it was built from, where and how.

An engine runs only with the TensorRT version and the GPU it was built for. The ``tensorrt`` backend
compares this file with the machine and the bundle before deserializing, and refuses a mismatch with
a message naming every difference and the command that rebuilds the engine (instead of TensorRT's
opaque "version tag does not match").
"""
from __future__ import annotations

import datetime
import json
import math
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from .profile import BatchProfile, ProfileError, SizeRange, check_batch, parse_size

FORMAT = 'aiat-engine'
FORMAT_VERSION = 1
PRECISIONS = ('fp32', 'fp16', 'int8')
METADATA_SUFFIX = '.json'
MAX_METADATA_BYTES = 1 << 20


class EngineMetadataError(ValueError):
    """A metadata file that cannot be read: names the file and the problem."""


class EngineMismatch(RuntimeError):
    """An engine that does not fit this machine or bundle; the message says how to rebuild it."""

    def __init__(self, message: str, differences: List[str], command: str):
        super().__init__(message)
        self.differences = differences
        self.command = command


@dataclass(frozen=True)
class EngineMetadata:
    tensorrt_version: str
    gpu_name: str
    compute_capability: str          # 'major.minor', e.g. '8.7' (Orin)
    precision: str                   # fp32, fp16, int8
    batch: BatchProfile              # (min, opt, max)
    bundle_sha256: str               # the bundle's model.sha256: the ONNX graph the engine came from
    bundle_name: str
    input_name: str
    input_shape: Tuple[int, int, int]   # (channels, height, width)
    builder_flags: Tuple[str, ...] = ()
    workspace_mb: Optional[int] = None
    calibration: Optional[Dict[str, Any]] = None
    built_with: str = 'aiat-engine build'
    created: str = ''
    engine_file: str = 'model.engine'
    engine_sha256: str = ''
    extra: Dict[str, Any] = field(default_factory=dict)
    # the profile's (height, width) box; None in files written before flexible bundles (the engine
    # then takes input_shape only, or whatever its own profile says: the backend reads that too)
    input_sizes: Optional[SizeRange] = None

    def to_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        data['input_sizes'] = self.input_sizes.to_dict() if self.input_sizes is not None else None
        data['batch'] = {'min': self.batch[0], 'opt': self.batch[1], 'max': self.batch[2]}
        data['input_shape'] = list(self.input_shape)
        data['builder_flags'] = list(self.builder_flags)
        return {'format': FORMAT, 'format_version': FORMAT_VERSION, **data}


def metadata_path(engine_path: Union[str, Path]) -> Path:
    """``model.engine`` -> ``model.engine.json``."""
    engine_path = Path(engine_path)
    return engine_path.with_name(engine_path.name + METADATA_SUFFIX)


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()


def write_metadata(engine_path: Union[str, Path], meta: EngineMetadata) -> Path:
    path = metadata_path(engine_path)
    tmp = path.with_name(path.name + '.tmp')
    tmp.write_text(json.dumps(meta.to_dict(), indent=2, sort_keys=False) + '\n', encoding='utf-8')
    tmp.replace(path)
    return path


def _string(data: Dict[str, Any], key: str, source: Path, allow_empty: bool = False) -> str:
    value = data.get(key)
    if not isinstance(value, str) or (not value and not allow_empty):
        raise EngineMetadataError(f'{source}: {key}: expected a non-empty string, got {value!r}')
    return value


def read_metadata(path: Union[str, Path]) -> EngineMetadata:
    """Read and validate a metadata file (or the one next to an engine file)."""
    path = Path(path)
    if path.suffix != METADATA_SUFFIX:
        path = metadata_path(path)
    if not path.is_file():
        raise EngineMetadataError(f'{path}: engine metadata missing (every engine built by '
                                  f'aiat-engine has one; rebuild the engine)')
    if path.stat().st_size > MAX_METADATA_BYTES:
        raise EngineMetadataError(f'{path}: {path.stat().st_size} bytes is too large for engine metadata')
    try:
        data = json.loads(path.read_text(encoding='utf-8'))
    except (ValueError, UnicodeDecodeError) as exc:
        raise EngineMetadataError(f'{path}: not valid JSON ({exc})') from None
    if not isinstance(data, dict):
        raise EngineMetadataError(f'{path}: expected a JSON object, got {type(data).__name__}')
    if data.get('format') != FORMAT:
        raise EngineMetadataError(f'{path}: format is {data.get("format")!r}, expected {FORMAT!r}')
    if data.get('format_version') != FORMAT_VERSION:
        raise EngineMetadataError(f'{path}: format_version {data.get("format_version")!r}, this code '
                                  f'reads {FORMAT_VERSION}')
    precision = _string(data, 'precision', path)
    if precision not in PRECISIONS:
        raise EngineMetadataError(f'{path}: precision {precision!r} is not one of {list(PRECISIONS)}')
    batch = data.get('batch')
    if not isinstance(batch, dict):
        raise EngineMetadataError(f'{path}: batch: expected {{min, opt, max}}, got {batch!r}')
    try:
        batch_profile = check_batch(tuple(batch.get(k) for k in ('min', 'opt', 'max')))
    except ProfileError as exc:
        raise EngineMetadataError(f'{path}: batch: {exc}') from None
    shape = data.get('input_shape')
    if (not isinstance(shape, list) or len(shape) != 3
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)):
        raise EngineMetadataError(f'{path}: input_shape: expected [channels, height, width], got {shape!r}')
    flags = data.get('builder_flags', [])
    if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
        raise EngineMetadataError(f'{path}: builder_flags: expected a list of names, got {flags!r}')
    workspace = data.get('workspace_mb')
    if workspace is not None and (isinstance(workspace, bool) or not isinstance(workspace, int)
                                  or workspace <= 0):
        raise EngineMetadataError(f'{path}: workspace_mb: expected a positive whole number, got {workspace!r}')
    calibration = data.get('calibration')
    if calibration is not None and not isinstance(calibration, dict):
        raise EngineMetadataError(f'{path}: calibration: expected an object or null')
    extra = data.get('extra', {})
    if not isinstance(extra, dict):
        raise EngineMetadataError(f'{path}: extra: expected an object')
    input_sizes = _read_sizes(data.get('input_sizes'), tuple(shape), path)
    cc = _string(data, 'compute_capability', path)
    try:
        major, minor = (int(p) for p in cc.split('.'))
    except ValueError:
        raise EngineMetadataError(f'{path}: compute_capability {cc!r}: expected MAJOR.MINOR') from None
    return EngineMetadata(
        tensorrt_version=_string(data, 'tensorrt_version', path), gpu_name=_string(data, 'gpu_name', path),
        compute_capability=f'{major}.{minor}', precision=precision, batch=batch_profile,
        bundle_sha256=_string(data, 'bundle_sha256', path), bundle_name=_string(data, 'bundle_name', path),
        input_name=_string(data, 'input_name', path), input_shape=tuple(shape),
        builder_flags=tuple(flags), workspace_mb=workspace, calibration=calibration,
        built_with=_string(data, 'built_with', path), created=_string(data, 'created', path, True),
        engine_file=_string(data, 'engine_file', path),
        engine_sha256=_string(data, 'engine_sha256', path, True), extra=extra, input_sizes=input_sizes)


def _read_sizes(value: Any, input_shape: Tuple[int, ...], path: Path) -> Optional[SizeRange]:
    """The input_sizes object: min/opt/max [height, width] with min <= opt <= max per side, the
    max box within MAX_INPUT_PIXELS, opt = input_shape's height and width."""
    from ..inference.bundle import MAX_INPUT_PIXELS
    if value is None:
        return None
    if not isinstance(value, dict):
        raise EngineMetadataError(f'{path}: input_sizes: expected {{min, opt, max}} or null, got {value!r:.80}')
    try:
        low, opt, high = (parse_size(value.get(k)) for k in ('min', 'opt', 'max'))
    except (ProfileError, TypeError) as exc:
        raise EngineMetadataError(f'{path}: input_sizes: {exc}') from None
    multiple = value.get('multiple', 1)
    if isinstance(multiple, bool) or not isinstance(multiple, int) or not 1 <= multiple <= 1024:
        raise EngineMetadataError(f'{path}: input_sizes.multiple: expected a whole number in 1..1024, '
                                  f'got {multiple!r:.40}')
    if not all(a <= b <= c for a, b, c in zip(low, opt, high)):
        raise EngineMetadataError(f'{path}: input_sizes: needs min <= opt <= max for height and width, '
                                  f'got min {list(low)} opt {list(opt)} max {list(high)}')
    if high[0] * high[1] > MAX_INPUT_PIXELS:
        raise EngineMetadataError(f'{path}: input_sizes.max {high[0]}x{high[1]} is over '
                                  f'MAX_INPUT_PIXELS = {MAX_INPUT_PIXELS}')
    if opt != tuple(input_shape[1:]):
        raise EngineMetadataError(f'{path}: input_sizes.opt {list(opt)} differs from input_shape '
                                  f'{list(input_shape)}')
    return SizeRange(low, opt, high, multiple)


@dataclass(frozen=True)
class MachineFacts:
    """What an engine must match on the machine that runs it."""
    tensorrt_version: str
    gpu_name: str
    compute_capability: str


def build_command(bundle_path: Union[str, Path], precision: str, batch: Sequence[int],
                  output: Optional[Union[str, Path]] = None, workspace_mb: Optional[int] = None,
                  calibration: Optional[str] = None, sizes: Optional[SizeRange] = None) -> str:
    """The ``aiat-engine build`` command line; ``sizes`` adds --min-size/--max-size (flexible)."""
    words = ['aiat-engine', 'build', str(bundle_path), '--precision', precision,
             '--batch', ':'.join(str(b) for b in batch)]
    if sizes is not None and not sizes.fixed:
        words += ['--min-size', f'{sizes.min[0]}x{sizes.min[1]}',
                  '--max-size', f'{sizes.max[0]}x{sizes.max[1]}']
    if workspace_mb:
        words += ['--workspace', str(workspace_mb)]
    if calibration:
        words += ['--calibration', str(calibration)]
    if output:
        words += ['--output', str(output)]
    return ' '.join(shlex.quote(w) for w in words)


def differences(meta: EngineMetadata, machine: Optional[MachineFacts] = None, bundle: Any = None,
                precision: Optional[str] = None, batch: Optional[int] = None,
                input_size: Optional[Sequence[int]] = None) -> List[str]:
    """Every way ``meta`` does not fit: this machine, this bundle, the wanted precision, a batch
    size and an input (height, width) the caller will run. Empty = the engine can be used."""
    found: List[str] = []
    if machine is not None:
        if meta.tensorrt_version != machine.tensorrt_version:
            found.append(f'TensorRT version: engine built with {meta.tensorrt_version}, this machine '
                         f'has {machine.tensorrt_version}')
        if meta.compute_capability != machine.compute_capability:
            found.append(f'GPU compute capability: engine built for {meta.compute_capability} '
                         f'({meta.gpu_name}), this GPU is {machine.compute_capability} ({machine.gpu_name})')
        elif meta.gpu_name != machine.gpu_name:
            found.append(f'GPU: engine built on {meta.gpu_name!r}, this GPU is {machine.gpu_name!r} '
                         f'(engines are tuned for one GPU model)')
    if bundle is not None:
        if meta.bundle_sha256 != bundle.model.sha256:
            found.append(f'bundle: engine built from model sha256 {meta.bundle_sha256[:16]}..., '
                         f'{bundle.path} has {bundle.model.sha256[:16]}...')
        spec = bundle.input
        want = (spec.channels, spec.height, spec.width)
        if tuple(meta.input_shape) != want or meta.input_name != spec.name:
            found.append(f'input: engine takes {meta.input_name!r} {list(meta.input_shape)}, the bundle '
                         f'says {spec.name!r} {list(want)}')
    if precision is not None and meta.precision != precision:
        found.append(f'precision: engine is {meta.precision}, {precision} was asked for')
    if batch is not None and not meta.batch[0] <= batch <= meta.batch[2]:
        found.append(f'batch: engine profile {meta.batch[0]}:{meta.batch[1]}:{meta.batch[2]} does not '
                     f'admit batch {batch}')
    if input_size is not None:
        h, w = (int(v) for v in input_size)
        sizes = meta.input_sizes or SizeRange(meta.input_shape[1:], meta.input_shape[1:],
                                              meta.input_shape[1:])
        if not sizes.admits(h, w):
            found.append(f'input size: engine profile {sizes.describe()} does not admit {h}x{w}')
    return found


def check_engine(engine_path: Union[str, Path], meta: EngineMetadata, machine: Optional[MachineFacts],
                 bundle: Any, precision: Optional[str] = None, batch: Optional[int] = None,
                 input_size: Optional[Sequence[int]] = None) -> None:
    """Raise :class:`EngineMismatch` when the engine does not fit (see :func:`differences`)."""
    found = differences(meta, machine, bundle, precision, batch, input_size)
    if not found:
        return
    low, opt, high = meta.batch
    if batch is not None and not low <= batch <= high:
        low, high = min(low, batch), max(high, batch)
    command = build_command(bundle.path if bundle is not None else '<bundle>', precision or meta.precision,
                            (low, min(max(opt, low), high), high), output=engine_path,
                            workspace_mb=meta.workspace_mb,
                            calibration=(meta.calibration or {}).get('source'),
                            sizes=_sizes_for_rebuild(meta, bundle, input_size))
    lines = '; '.join(found)
    raise EngineMismatch(f'{engine_path}: engine does not match ({lines}). Rebuild it on this machine '
                         f'with: {command}', found, command)


def _sizes_for_rebuild(meta: EngineMetadata, bundle: Any, input_size: Optional[Sequence[int]]
                       ) -> Optional[SizeRange]:
    """The engine's size box, widened to hold ``input_size`` (multiples of the bundle's)."""
    sizes = meta.input_sizes
    spec = getattr(bundle, 'input', None)
    if sizes is None or spec is None or not spec.flexible:
        return None
    if input_size is None:
        return sizes
    m = spec.size_multiple
    h, w = (-(-int(v) // m) * m for v in input_size)
    low = (min(sizes.min[0], h), min(sizes.min[1], w))
    high = (max(sizes.max[0], h), max(sizes.max[1], w))
    return SizeRange(low, (spec.height, spec.width), high, m)


def calibration_summary(source: str, images: int, batch_size: int, cache_sha256: Optional[str]) -> Dict[str, Any]:
    return {'source': source, 'images': int(images), 'batch_size': int(batch_size),
            'cache_sha256': cache_sha256}


def workspace_bytes(workspace_mb: Optional[int]) -> Optional[int]:
    if workspace_mb is None:
        return None
    if isinstance(workspace_mb, bool) or not isinstance(workspace_mb, int) or workspace_mb <= 0 \
            or workspace_mb > 1 << 20 or math.isnan(workspace_mb):
        raise ValueError(f'workspace {workspace_mb!r} MB: expected a whole number in 1..{1 << 20}')
    return workspace_mb << 20
