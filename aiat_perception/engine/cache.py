"""The engine cache: one directory per (bundle, TensorRT version, GPU, precision, batch profile, flags).

A container mounts the cache as a volume and reuses engines across restarts; a new TensorRT or a
different GPU gets a new key, so a stale engine is never picked up. ``ensure_engine`` is the node's
"build a missing engine at start-up" step (Autoware's ``build_only`` pattern), free of ROS.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional, Sequence, Union

from .metadata import (EngineMetadataError, EngineMismatch, MachineFacts, PRECISIONS, build_command,
                       differences, metadata_path, read_metadata)
from .profile import BatchProfile, SizeRange, check_batch, input_size_range

ENGINE_FILE = 'model.engine'
ENV_CACHE = 'AIAT_ENGINE_CACHE'


class EngineMissing(FileNotFoundError):
    """No engine for this key and building was not allowed; the message has the build command."""


def default_cache_root() -> Path:
    """``$AIAT_ENGINE_CACHE``, else ``~/.cache/aiat/engines`` (``$AIAT_CACHE`` moves the base)."""
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env)
    from ..assets import cache_dir
    return cache_dir('engines')


def cache_key(bundle_sha256: str, input_shape: Sequence[int], machine: MachineFacts, precision: str,
              batch: Sequence[int], builder_flags: Sequence[str] = (),
              calibration_source: Optional[str] = None, input_sizes: Optional[SizeRange] = None) -> str:
    """Hex digest over everything that makes two engines different (a flexible bundle's profile
    box included; a fixed one keeps the key it had before flexible bundles)."""
    if precision not in PRECISIONS:
        raise ValueError(f'precision {precision!r} is not one of {list(PRECISIONS)}')
    fields: Dict[str, Any] = {
        'bundle_sha256': bundle_sha256, 'input_shape': [int(v) for v in input_shape],
        'tensorrt_version': machine.tensorrt_version, 'gpu_name': machine.gpu_name,
        'compute_capability': machine.compute_capability, 'precision': precision,
        'batch': list(check_batch(tuple(batch))), 'builder_flags': sorted(builder_flags),
        'calibration': calibration_source if precision == 'int8' else None,
    }
    if input_sizes is not None and not input_sizes.fixed:
        fields['input_sizes'] = {'min': list(input_sizes.min), 'max': list(input_sizes.max)}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def _slug(text: str) -> str:
    return re.sub(r'[^A-Za-z0-9._-]+', '-', text).strip('-')[:40] or 'x'


def cache_entry(root: Union[str, Path], bundle: Any, machine: MachineFacts, precision: str,
                batch: Sequence[int], builder_flags: Sequence[str] = (),
                calibration_source: Optional[str] = None, min_size: Optional[Sequence[int]] = None,
                max_size: Optional[Sequence[int]] = None) -> Path:
    """The directory for this engine (not created). Readable name, then the key."""
    spec = bundle.input
    sizes = input_size_range(spec, min_size, max_size)
    key = cache_key(bundle.model.sha256, (spec.channels, spec.height, spec.width), machine, precision,
                    batch, builder_flags, calibration_source, sizes)
    low, opt, high = check_batch(tuple(batch))
    name = (f'{_slug(bundle.name)}-{precision}-b{low}-{opt}-{high}-trt{_slug(machine.tensorrt_version)}'
            f'-sm{machine.compute_capability.replace(".", "")}-{key[:16]}')
    return Path(root) / name


def timing_cache_path(root: Union[str, Path], machine: MachineFacts) -> Path:
    """One timing cache per TensorRT version and GPU, shared by every engine built there."""
    return Path(root) / (f'timing-trt{_slug(machine.tensorrt_version)}-sm'
                         f'{machine.compute_capability.replace(".", "")}-{_slug(machine.gpu_name)}.cache')


def find_cached_engine(entry: Union[str, Path], machine: MachineFacts, bundle: Any,
                       precision: str, batch: Sequence[int],
                       sizes: Optional[SizeRange] = None) -> Optional[Path]:
    """The engine in ``entry`` when it is there, its metadata reads and it matches; else None."""
    engine = Path(entry) / ENGINE_FILE
    if not engine.is_file() or not metadata_path(engine).is_file():
        return None
    try:
        meta = read_metadata(engine)
    except EngineMetadataError:
        return None
    if differences(meta, machine, bundle, precision) or tuple(meta.batch) != tuple(batch):
        return None
    if sizes is not None and not sizes.fixed and (
            meta.input_sizes is None or (meta.input_sizes.min, meta.input_sizes.max) != (sizes.min, sizes.max)):
        return None
    return engine


@contextmanager
def _build_lock(entry: Path) -> Iterator[None]:
    """Two nodes starting together build once: the second waits, then finds the engine."""
    import fcntl
    entry.parent.mkdir(parents=True, exist_ok=True)
    with open(entry.parent / f'.{entry.name}.lock', 'w') as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_engine(bundle: Any, precision: str = 'fp16', batch: Sequence[int] = (1, 1, 1),
                  cache_root: Optional[Union[str, Path]] = None, build_if_missing: bool = True,
                  workspace_mb: Optional[int] = None, calibration: Optional[str] = None,
                  machine: Optional[MachineFacts] = None,
                  log: Optional[Callable[[str], None]] = None,
                  min_size: Optional[Sequence[int]] = None, max_size: Optional[Sequence[int]] = None) -> Path:
    """Path of an engine for ``bundle`` that fits this machine, building it into the cache if needed.

    ``machine`` defaults to what TensorRT and the CUDA runtime report here (TensorRTUnavailable when
    they are missing). With ``build_if_missing=False`` a missing engine raises :class:`EngineMissing`
    naming the command that builds it.
    """
    from ..inference.bundle import Bundle, load_bundle
    if not isinstance(bundle, Bundle):
        bundle = load_bundle(bundle)
    batch_profile: BatchProfile = check_batch(tuple(batch))
    sizes = input_size_range(bundle.input, min_size, max_size)
    root = Path(cache_root) if cache_root is not None else default_cache_root()
    if machine is None:
        from .builder import machine_facts
        machine = machine_facts()
    entry = cache_entry(root, bundle, machine, precision, batch_profile, calibration_source=calibration,
                        min_size=sizes.min, max_size=sizes.max)
    found = find_cached_engine(entry, machine, bundle, precision, batch_profile, sizes)
    if found is not None:
        return found
    command = build_command(bundle.path, precision, batch_profile, output=entry / ENGINE_FILE,
                            workspace_mb=workspace_mb, calibration=calibration, sizes=sizes)
    if not build_if_missing:
        raise EngineMissing(f'no {precision} engine for bundle {bundle.name!r} (batch '
                            f'{":".join(map(str, batch_profile))}) in {root}; build it with: {command}')
    with _build_lock(entry):
        found = find_cached_engine(entry, machine, bundle, precision, batch_profile, sizes)
        if found is not None:
            return found
        from .builder import BuildOptions, build_engine
        if log:
            log(f'building a {precision} TensorRT engine for {bundle.name!r} into {entry} '
                f'(first start on this GPU/TensorRT; minutes on a Jetson)')
        options = BuildOptions(precision=precision, batch=batch_profile, workspace_mb=workspace_mb,
                               calibration=calibration, timing_cache=timing_cache_path(root, machine),
                               min_size=sizes.min, max_size=sizes.max)
        return build_engine(bundle, entry / ENGINE_FILE, options).engine_path


def ort_tensorrt_cache_dir(bundle_name: str, bundle_sha256: str, ort_version: str,
                           root: Optional[Union[str, Path]] = None) -> Path:
    """Where ONNX Runtime's TensorRT execution provider keeps its engines and timing cache for one
    bundle (not created). ORT does not notice a new model, ORT or TensorRT version in its cache
    (its documentation says to clear it), so the directory is keyed by the bundle and ORT version;
    ORT names its engine files after the GPU's compute capability itself."""
    base = Path(root) if root is not None else default_cache_root()
    return base / 'onnxruntime-trt' / f'{_slug(bundle_name)}-{bundle_sha256[:12]}-ort{_slug(ort_version)}'


__all__ = ['EngineMissing', 'EngineMismatch', 'cache_entry', 'cache_key', 'default_cache_root',
           'ensure_engine', 'find_cached_engine', 'ort_tensorrt_cache_dir', 'timing_cache_path']
