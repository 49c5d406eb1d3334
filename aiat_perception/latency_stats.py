"""Rolling latency statistics and rate meters for diagnostics (ROS-free)."""
from __future__ import annotations

import collections
import threading
from typing import Deque, Dict, Optional

import numpy as np


class RollingStats:
    """The last ``window`` samples of a quantity; percentiles over them."""

    def __init__(self, window: int = 100):
        if window < 1:
            raise ValueError(f'window must be >= 1, got {window}')
        self._samples: Deque[float] = collections.deque(maxlen=window)
        self._lock = threading.Lock()
        self.count = 0

    def add(self, value: float) -> None:
        with self._lock:
            self._samples.append(float(value))
            self.count += 1

    def __len__(self) -> int:
        return len(self._samples)

    def summary(self) -> Dict[str, Optional[float]]:
        """{'p50', 'p95', 'max', 'last'} over the window (None when empty)."""
        with self._lock:
            values = np.fromiter(self._samples, dtype=np.float64, count=len(self._samples))
        if values.size == 0:
            return {'p50': None, 'p95': None, 'max': None, 'last': None}
        p50, p95 = np.percentile(values, [50, 95])
        return {'p50': float(p50), 'p95': float(p95), 'max': float(values.max()),
                'last': float(values[-1])}


class RateMeter:
    """Events per second over the last ``horizon_s`` seconds (times given by the caller, in s)."""

    def __init__(self, horizon_s: float = 5.0):
        self.horizon_s = float(horizon_s)
        self._times: Deque[float] = collections.deque()
        self._lock = threading.Lock()
        self.count = 0
        self.last_time: Optional[float] = None

    def tick(self, now: float) -> None:
        with self._lock:
            self._times.append(now)
            self.count += 1
            self.last_time = now
            self._trim(now)

    def _trim(self, now: float) -> None:
        while self._times and self._times[0] < now - self.horizon_s:
            self._times.popleft()

    def rate(self, now: float) -> float:
        with self._lock:
            self._trim(now)
            if len(self._times) < 2:
                return 0.0
            span = max(now - self._times[0], self._times[-1] - self._times[0])
            return (len(self._times) - 1) / span if span > 0 else 0.0


class WindowedCount:
    """Events counted over the last ``horizon_s`` seconds (times given by the caller, in s).

    Events are summed into ``buckets`` time slots per horizon, so memory stays bounded at any event
    rate; an event leaves the count between ``horizon_s`` and ``horizon_s * (1 + 1 / buckets)``
    after it happened. ``total`` keeps the lifetime count.
    """

    def __init__(self, horizon_s: float = 10.0, buckets: int = 50):
        if not horizon_s > 0 or buckets < 1:
            raise ValueError(f'horizon_s must be > 0 and buckets >= 1, got {horizon_s}, {buckets}')
        self.horizon_s = float(horizon_s)
        self._width = self.horizon_s / buckets
        self._slots: Deque[list] = collections.deque()  # [slot index, count], oldest first
        self._lock = threading.Lock()
        self.total = 0

    def add(self, now: float, count: int = 1) -> None:
        slot = int(now // self._width)
        with self._lock:
            self.total += count
            if self._slots and self._slots[-1][0] >= slot:  # same slot (or a slightly older time)
                self._slots[-1][1] += count
            else:
                self._slots.append([slot, count])
            self._trim(now)

    def _trim(self, now: float) -> None:
        oldest = int((now - self.horizon_s) // self._width)
        while self._slots and self._slots[0][0] < oldest:
            self._slots.popleft()

    def count(self, now: float) -> int:
        with self._lock:
            self._trim(now)
            return sum(n for _, n in self._slots)
