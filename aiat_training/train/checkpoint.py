"""Checkpoints with everything a bit-exact resume needs: weights, EMA, optimiser, scheduler,
AMP scaler, the RNG states of python/numpy/torch(/CUDA), epoch and position in the epoch.

Safety: a checkpoint is loaded with ``torch.load(weights_only=True)``, so unpickling can only build
tensors and plain data (dict, list, tuple, str, numbers, None); a file that asks for anything else
(a crafted ``__reduce__`` running a command, arbitrary classes) is refused with
:class:`CheckpointRefused` before any of it runs. Everything we write is plain data (the numpy RNG
state is stored as a tensor, not an ndarray), and :func:`save_checkpoint` checks that before writing.
Checkpoints of format version 1 (numpy RNG state as an ndarray) stay readable: for them only the
numpy ndarray/dtype reconstructors are allowed, scoped to that one load.
"""
from __future__ import annotations

import os
import pickle
import random
import re
import zipfile
from pathlib import Path

import numpy as np
import torch

CHECKPOINT_VERSION = 2
TMP_SUFFIX = '.tmp'


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message is one line naming the file."""


class CheckpointMissing(CheckpointError, FileNotFoundError):
    pass


class CheckpointCorrupt(CheckpointError):
    """Truncated, not a torch file, or not an aiat-train checkpoint."""


class CheckpointRefused(CheckpointError):
    """Holds objects other than tensors and plain data: refused without running any of them."""


def _legacy_numpy_globals() -> list:
    """What a version-1 checkpoint's numpy RNG state (``('MT19937', uint32 ndarray, ...)``) needs."""
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:                       # numpy < 2
        from numpy.core.multiarray import _reconstruct
    allowed = [_reconstruct, np.ndarray, np.dtype]
    if hasattr(np, 'dtypes'):
        allowed.append(np.dtypes.UInt32DType)
    return allowed


def _global_names(objs) -> set:
    return {f'{o.__module__}.{o.__qualname__}' for o in objs}


# -- RNG state as plain data ---------------------------------------------------------------------

def rng_state() -> dict:
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state = {'python': [int(version), list(internal), gauss],
             'numpy': {'kind': str(kind), 'keys': torch.from_numpy(keys.astype(np.int64)), 'pos': int(pos),
                       'has_gauss': int(has_gauss), 'cached_gaussian': float(cached)},
             'torch': torch.get_rng_state()}
    if torch.cuda.is_available():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    version, internal, gauss = state['python']
    random.setstate((int(version), tuple(int(v) for v in internal), gauss))
    numpy_state = state['numpy']
    if isinstance(numpy_state, dict):
        keys = np.asarray(numpy_state['keys'].cpu().numpy() if torch.is_tensor(numpy_state['keys'])
                          else numpy_state['keys'], dtype=np.uint32)
        np.random.set_state((numpy_state['kind'], keys, numpy_state['pos'], numpy_state['has_gauss'],
                             numpy_state['cached_gaussian']))
    else:                                     # version 1: the tuple np.random.get_state() returns
        np.random.set_state(numpy_state)
    torch.set_rng_state(state['torch'].cpu() if torch.is_tensor(state['torch']) else state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state['cuda']])


# -- writing -----------------------------------------------------------------------------------

def plain(value, where: str = 'checkpoint'):
    """``value`` with numpy scalars/arrays and paths turned into numbers/tensors/strings; anything
    else that weights-only loading would refuse raises TypeError (a bug in the writer, caught here
    rather than when the checkpoint is needed)."""
    if value is None or isinstance(value, (bool, int, float, str, bytes, torch.Tensor, torch.dtype,
                                           torch.device, torch.Size)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        items = [(plain(k, where), plain(v, f'{where}[{k!r}]')) for k, v in value.items()]
        if all(a is k and b is v for (a, b), (k, v) in zip(items, value.items())):
            return value       # unchanged: keeps a state_dict's OrderedDict and its _metadata
        return dict(items)
    if isinstance(value, (list, tuple)):
        items = [plain(v, f'{where}[{i}]') for i, v in enumerate(value)]
        if all(a is b for a, b in zip(items, value)):
            return value
        return items if isinstance(value, list) else tuple(items)
    raise TypeError(f'{where}: {type(value).__qualname__} is not plain data; weights-only loading '
                    'would refuse the checkpoint')


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(path: str | Path, **content) -> Path:
    """Write atomically: temp file, fsync, rename, fsync of the directory. A kill or power loss at
    any point leaves either the previous checkpoint or the new one, never a torn file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    content = plain(content)
    try:
        with open(tmp, 'wb') as handle:
            torch.save(content, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)        # the rename itself is durable only once the directory is synced
    return path


def copy_checkpoint(source: str | Path, target: str | Path) -> Path:
    """Atomic, fsynced copy (``best.pt`` from ``last.pt``)."""
    source, target = Path(source), Path(target)
    tmp = target.with_name(target.name + TMP_SUFFIX)
    try:
        with open(source, 'rb') as src, open(tmp, 'wb') as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)
    return target


def remove_leftover_temp_files(directory: str | Path) -> list[Path]:
    """Delete ``*.tmp`` files a killed run left behind (a finished write never leaves one)."""
    directory = Path(directory)
    removed = []
    if directory.is_dir():
        for tmp in sorted(directory.glob('*' + TMP_SUFFIX)):
            if tmp.is_file():
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
    return removed


# -- reading -----------------------------------------------------------------------------------

def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _unsafe_globals(path: Path) -> list[str] | None:
    """Globals the file's pickle asks for beyond what weights-only allows (read without running
    anything), or None if the file cannot be inspected."""
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    except Exception:                         # noqa: BLE001 - a file this broken is simply corrupt
        return None


def _torch_load(path: Path, map_location):
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        asked = re.findall(r'GLOBAL ([\w.]+)', str(exc))
        if not asked:    # an opcode the weights-only unpickler does not take: garbage or a foreign pickle
            raise CheckpointCorrupt(f'{path}: not a readable checkpoint (truncated, corrupt or not written by '
                                    f'torch.save: {_weights_only_reason(exc)})') from None
        unsafe = _unsafe_globals(path)
        legacy = _global_names(_legacy_numpy_globals())
        if unsafe and set(unsafe) <= legacy:
            with torch.serialization.safe_globals(_legacy_numpy_globals()):
                try:
                    return torch.load(path, map_location=map_location, weights_only=True)
                except pickle.UnpicklingError as again:
                    asked = re.findall(r'GLOBAL ([\w.]+)', str(again)) or asked
        what = ', '.join(sorted(set(unsafe or asked), key=lambda name: (name in legacy, name))[:3])
        raise CheckpointRefused(
            f'{path}: refused: it asks to run or build Python objects other than tensors and plain data '
            f'({what}); aiat-train loads checkpoints weights-only. Use checkpoints written by aiat-train '
            '(re-export or re-train from a trusted copy)') from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError, KeyError,
            IndexError, TypeError, AttributeError, MemoryError) as exc:
        raise CheckpointCorrupt(f'{path}: not a readable checkpoint, truncated or corrupt '
                                f'({type(exc).__name__}: {_first_line(exc)})') from None


def _weights_only_reason(exc: BaseException) -> str:
    """The specific line of torch's long weights-only message (e.g. 'Unsupported operand 103')."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if line.startswith(('Unsupported', 'Trying', 'Unpickler')) or 'invalid load key' in line:
            return line[:160]
    return lines[-1][:160] if lines else type(exc).__name__


def load_checkpoint(path: str | Path, map_location='cpu') -> dict:
    """The checkpoint's content, loaded weights-only. Raises :class:`CheckpointMissing`,
    :class:`CheckpointCorrupt` or :class:`CheckpointRefused` (each a one-line message naming the file)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointMissing(f'{path}: checkpoint not found')
    ckpt = _torch_load(path, map_location)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get('model'), dict) \
            or not isinstance(ckpt.get('model_meta'), dict):
        raise CheckpointCorrupt(f'{path}: not an aiat-train checkpoint (needs model and model_meta)')
    return ckpt
