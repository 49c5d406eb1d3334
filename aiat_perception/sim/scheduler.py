"""The simulator node's timing, without ROS: which sensor is due next, and the lockstep handshake.

:class:`SensorScheduler` interleaves sensors of different rates on one simulation clock (the camera
first among sensors due at the same time). In lockstep every tick is served; in real time, ticks the
CPU could not keep up with are skipped. :class:`LockstepHandshake` is the wait for the detector's
answer (a message with the camera frame's stamp) before the next frame is rendered.
"""
from __future__ import annotations

import math
import threading
import time
from typing import Dict, Optional, Set, Tuple


class SensorScheduler:
    def __init__(self, rates_hz: Dict[str, float], first: str = 'camera'):
        if not rates_hz:
            raise ValueError('no sensor to schedule')
        bad = {name: rate for name, rate in rates_hz.items() if not (rate > 0 and math.isfinite(rate))}
        if bad:
            raise ValueError(f'sensor rates must be finite and > 0 Hz, got {bad}')
        self.periods = {name: 1.0 / rate for name, rate in rates_hz.items()}
        self.ticks = {name: 0 for name in rates_hz}
        self.first = first

    def next(self) -> Tuple[str, float]:
        """The sensor due next and its due time (seconds on the simulation clock)."""
        name = min(self.periods, key=lambda n: (self.ticks[n] * self.periods[n], n != self.first))
        return name, self.ticks[name] * self.periods[name]

    def served(self, name: str, now: Optional[float] = None) -> None:
        """``name``'s tick was served. With ``now`` (real time, seconds since start) the ticks that
        already passed are skipped."""
        ticks = self.ticks[name] + 1
        if now is not None:
            ticks = max(ticks, int(math.floor(now / self.periods[name])))
        self.ticks[name] = ticks


class LockstepHandshake:
    """Stamps answered by the detector (from the subscription callback), waited for by the sim loop."""

    def __init__(self, timeout_s: float):
        if not timeout_s > 0:
            raise ValueError(f'timeout_s must be > 0, got {timeout_s}')
        self.timeout_s = timeout_s
        self._condition = threading.Condition()
        self._answered: Set[int] = set()
        self._stopped = False

    def answer(self, stamp_ns: int) -> None:
        with self._condition:
            self._answered.add(int(stamp_ns))
            self._condition.notify_all()

    def wait(self, stamp_ns: int) -> bool:
        """True once ``stamp_ns`` was answered; False after ``timeout_s`` or :meth:`stop`. Answers
        up to ``stamp_ns`` are forgotten (late answers to earlier frames must not satisfy later ones)."""
        deadline = time.monotonic() + self.timeout_s
        with self._condition:
            while stamp_ns not in self._answered:
                left = deadline - time.monotonic()
                if left <= 0 or self._stopped:
                    return False
                self._condition.wait(min(left, 0.1))
            self._answered = {s for s in self._answered if s > stamp_ns}
        return True

    def stop(self) -> None:
        with self._condition:
            self._stopped = True
            self._condition.notify_all()

    @property
    def stopped(self) -> bool:
        return self._stopped
