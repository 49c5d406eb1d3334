"""GPU load for diagnostics: utilisation and memory from NVML (discrete GPUs) or tegrastats/jtop (Jetson).

ROS-free: the nodes put :meth:`GpuLoad.read`'s dict into their ``/diagnostics`` values. Keys that
cannot be read here are absent, never zero: a missing ``gpu_util_percent`` means "unknown", and a
reader of the diagnostics must not take it for an idle GPU.

Keys (all optional): ``gpu_source`` (nvml, tegrastats, jtop), ``gpu_name``, ``gpu_util_percent``,
``gpu_memory_used_mb``, ``gpu_memory_total_mb``, ``gpu_memory_shared`` (True on Jetson: the
memory figures are the RAM the CPU and GPU share), ``gpu_freq_mhz``.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from typing import Any, Dict, List, Optional

GpuValues = Dict[str, Any]

_GR3D = re.compile(r'\bGR3D_FREQ\s+(\d+(?:\.\d+)?)%(?:@\[?([\d,]+)\]?)?')
_GR3D_PER_GPC = re.compile(r'\bGR3D_FREQ\s+\[([^\]]*)\]')   # some releases: GR3D_FREQ [0%@1300,0%@1300]
_RAM = re.compile(r'\bRAM\s+(\d+)/(\d+)(kB|KB|MB|GB)')
_UNIT_MB = {'kB': 1 / 1024, 'KB': 1 / 1024, 'MB': 1.0, 'GB': 1024.0}


def parse_tegrastats(line: str) -> GpuValues:
    """The GPU keys of one tegrastats line (absent where the line does not say)."""
    values: GpuValues = {}
    match = _GR3D.search(line)
    if match:
        values['gpu_util_percent'] = float(match.group(1))
        if match.group(2):
            freqs = [int(f) for f in match.group(2).split(',') if f]
            if freqs:
                values['gpu_freq_mhz'] = max(freqs)
    else:
        per_gpc = _GR3D_PER_GPC.search(line)
        if per_gpc:
            loads = [float(m) for m in re.findall(r'(\d+(?:\.\d+)?)%', per_gpc.group(1))]
            freqs = [int(m) for m in re.findall(r'@(\d+)', per_gpc.group(1))]
            if loads:
                values['gpu_util_percent'] = sum(loads) / len(loads)
            if freqs:
                values['gpu_freq_mhz'] = max(freqs)
    ram = _RAM.search(line)
    if ram:
        scale = _UNIT_MB[ram.group(3)]
        values['gpu_memory_used_mb'] = round(int(ram.group(1)) * scale, 1)
        values['gpu_memory_total_mb'] = round(int(ram.group(2)) * scale, 1)
        values['gpu_memory_shared'] = True
    if values:
        values['gpu_source'] = 'tegrastats'
    return values


class _NvmlReader:
    def __init__(self, index: int):
        import pynvml   # from nvidia-ml-py (or the older pynvml package)
        pynvml.nvmlInit()
        self.nvml = pynvml
        self.handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        name = pynvml.nvmlDeviceGetName(self.handle)
        self.name = name.decode(errors='replace') if isinstance(name, bytes) else str(name)

    def read(self) -> GpuValues:
        nvml = self.nvml
        values: GpuValues = {'gpu_source': 'nvml', 'gpu_name': self.name}
        try:
            util = nvml.nvmlDeviceGetUtilizationRates(self.handle)
            values['gpu_util_percent'] = float(util.gpu)
        except nvml.NVMLError:
            pass     # e.g. not supported on this GPU: leave the key out
        try:
            memory = nvml.nvmlDeviceGetMemoryInfo(self.handle)
            values['gpu_memory_used_mb'] = round(memory.used / 2 ** 20, 1)
            values['gpu_memory_total_mb'] = round(memory.total / 2 ** 20, 1)
        except nvml.NVMLError:
            pass
        try:
            values['gpu_freq_mhz'] = int(nvml.nvmlDeviceGetClockInfo(self.handle, nvml.NVML_CLOCK_GRAPHICS))
        except (nvml.NVMLError, AttributeError):
            pass
        return values

    def close(self) -> None:
        try:
            self.nvml.nvmlShutdown()
        except Exception:
            pass


class _TegrastatsReader:
    """Runs ``tegrastats --interval MS`` and keeps its latest line (it only streams)."""

    def __init__(self, executable: str, interval_ms: int = 1000):
        self.proc = subprocess.Popen([executable, '--interval', str(int(interval_ms))],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.last = ''
        self.thread = threading.Thread(target=self._follow, name='tegrastats', daemon=True)
        self.thread.start()

    def _follow(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.last = line.strip()

    def read(self) -> GpuValues:
        return parse_tegrastats(self.last) if self.last else {}

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class _JtopReader:
    """jetson-stats' service (needs the jtop daemon on the host, /run/jtop.sock in a container)."""

    def __init__(self):
        from jtop import jtop
        self.jetson = jtop()
        self.jetson.start()

    def read(self) -> GpuValues:
        stats = self.jetson.stats or {}    # latest sample; ok() would block until the next one
        values: GpuValues = {}
        if isinstance(stats.get('GPU'), (int, float)):
            values['gpu_util_percent'] = float(stats['GPU'])
        if values:
            values['gpu_source'] = 'jtop'
        return values

    def close(self) -> None:
        try:
            self.jetson.close()
        except Exception:
            pass


class GpuLoad:
    """First source that works: NVML, then tegrastats, then jtop; none -> ``read()`` returns {}.

    ``sources`` limits and orders the sources tried; ``problems`` says why each one was skipped.
    """

    SOURCES = ('nvml', 'tegrastats', 'jtop')

    def __init__(self, device_index: int = 0, sources: Optional[List[str]] = None,
                 tegrastats_path: Optional[str] = None, interval_ms: int = 1000):
        self.reader: Any = None
        self.source: Optional[str] = None
        self.problems: Dict[str, str] = {}
        for source in sources or self.SOURCES:
            try:
                if source == 'nvml':
                    self.reader = _NvmlReader(device_index)
                elif source == 'tegrastats':
                    exe = tegrastats_path or shutil.which('tegrastats') or (
                        '/usr/bin/tegrastats' if os.path.exists('/usr/bin/tegrastats') else None)
                    if not exe:
                        raise FileNotFoundError('tegrastats not found (Jetson only)')
                    self.reader = _TegrastatsReader(exe, interval_ms)
                elif source == 'jtop':
                    self.reader = _JtopReader()
                else:
                    raise ValueError(f'unknown GPU load source {source!r} (use {list(self.SOURCES)})')
            except ValueError:
                raise
            except Exception as exc:  # ImportError, NVMLError (no driver), FileNotFoundError, ...
                self.problems[source] = f'{type(exc).__name__}: {exc}'
                continue
            self.source = source
            break

    @property
    def available(self) -> bool:
        return self.reader is not None

    def read(self) -> GpuValues:
        if self.reader is None:
            return {}
        try:
            return self.reader.read()
        except Exception as exc:
            self.problems[self.source or '?'] = f'{type(exc).__name__}: {exc}'
            return {}

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
            self.reader = None

    def __enter__(self) -> 'GpuLoad':
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def diagnostic_values(values: GpuValues) -> Dict[str, str]:
    """String values for ``diagnostic_msgs/KeyValue`` (only the keys present)."""
    out = {}
    for key, value in values.items():
        if isinstance(value, bool):
            out[key] = 'true' if value else 'false'
        elif isinstance(value, float):
            out[key] = f'{value:.1f}'
        else:
            out[key] = str(value)
    return out
