"""Importing TensorRT: one place that says what to install and which versions this code supports.

The builder and the runtime use one code path for TensorRT 8.6 (JetPack 6.0) and 10.x (JetPack 6.1+,
x86_64). TensorRT 11 removed the FP16/INT8 builder flags and the INT8 calibrator (strongly typed
networks only), so it is refused until a strongly-typed path exists.
"""
from __future__ import annotations

import importlib
import importlib.util
import re
from typing import Any, List, Optional, Tuple

SUPPORTED = ((8, 6), (11, 0))      # [lowest, first unsupported)
REQUIREMENT = 'tensorrt>=8.6,<11'
INSTALL_HINT = ('install TensorRT 8.6-10.x: on a Jetson it comes with JetPack (`sudo apt install '
                'python3-libnvinfer`; a venv needs --system-site-packages), on x86_64 '
                f"`pip install '{REQUIREMENT}'` (see docs/jetson.md)")


class TensorRTUnavailable(RuntimeError):
    """TensorRT (or the CUDA bindings it needs here) cannot be used on this machine."""


def version_tuple(version: str) -> Tuple[int, ...]:
    """'10.3.0.30' -> (10, 3, 0, 30); non-numeric tails ('8.6.2.post1') are dropped."""
    parts = []
    for piece in str(version).split('.'):
        match = re.match(r'\d+', piece)
        if not match:
            break
        parts.append(int(match.group()))
    if not parts:
        raise ValueError(f'not a version: {version!r}')
    return tuple(parts)


def check_version(version: str) -> None:
    got = version_tuple(version)[:2]
    low, high = SUPPORTED
    if not low <= got < high:
        raise TensorRTUnavailable(
            f'TensorRT {version} is not supported: this code builds and runs engines with TensorRT '
            f'{low[0]}.{low[1]} up to (not including) {high[0]} ({REQUIREMENT}); '
            + ('TensorRT 11 has no FP16/INT8 builder flags or calibrator' if got >= high
               else 'older releases lack the name-based tensor API (set_tensor_address, '
                    'execute_async_v3)'))


def import_tensorrt() -> Any:
    """The ``tensorrt`` module, or :class:`TensorRTUnavailable` saying what to install."""
    try:
        trt = importlib.import_module('tensorrt')
    except Exception as exc:  # ImportError, or OSError from the stub wheel without its libraries
        raise TensorRTUnavailable(f'TensorRT is not installed or does not load here '
                                  f'({type(exc).__name__}: {exc}); {INSTALL_HINT}') from None
    check_version(getattr(trt, '__version__', '0'))
    return trt


def tensorrt_problem() -> Optional[str]:
    """None when TensorRT is usable, else why not (one line)."""
    if importlib.util.find_spec('tensorrt') is None:
        return f'TensorRT is not installed; {INSTALL_HINT}'
    try:
        import_tensorrt()
    except TensorRTUnavailable as exc:
        return str(exc)
    return None


class CollectingLogger:
    """A ``trt.ILogger`` that keeps warnings and errors so a failed build can report them."""

    def __new__(cls, trt: Any, min_severity: Any = None):
        class _Logger(trt.ILogger):
            def __init__(self) -> None:
                trt.ILogger.__init__(self)
                self.messages: List[Tuple[str, str]] = []
                self.min_severity = (trt.ILogger.Severity.WARNING if min_severity is None
                                     else min_severity)

            def log(self, severity, msg):  # called by TensorRT
                # Severity values are ordered: INTERNAL_ERROR(0) < ERROR < WARNING < INFO < VERBOSE
                if int(severity) <= int(self.min_severity):
                    self.messages.append((str(severity).rsplit('.', 1)[-1], str(msg)))

            def errors(self) -> List[str]:
                return [m for s, m in self.messages if 'ERROR' in s]

        return _Logger()
