"""Scripted motion: the pose (x, y, yaw) of an actor or the ego at time t, a pure function of t."""
from __future__ import annotations

import math
from typing import Tuple

import numpy as np

from aiat_perception.sim.scenario import MotionConfig


class ScriptedMotion:
    def __init__(self, config: MotionConfig, offset=(0.0, 0.0), yaw_offset: float = 0.0):
        self.config = config
        self.offset = np.asarray(offset, dtype=np.float64)
        self.yaw_offset = yaw_offset
        if config.type == 'waypoints':
            pts = np.asarray(config.waypoints, dtype=np.float64)
            if config.loop:
                pts = np.vstack([pts, pts[:1]])
            seg = np.diff(pts, axis=0)
            self._points = pts
            self._lengths = np.hypot(seg[:, 0], seg[:, 1])
            self._cum = np.concatenate([[0.0], np.cumsum(self._lengths)])

    def pose(self, t: float) -> Tuple[float, float, float]:
        c = self.config
        if c.type == 'static':
            x, y = c.position
            yaw = c.yaw or 0.0
        elif c.type == 'linear':
            x = c.position[0] + c.velocity[0] * t
            y = c.position[1] + c.velocity[1] * t
            moving = abs(c.velocity[0]) + abs(c.velocity[1]) > 0
            yaw = c.yaw if c.yaw is not None else (math.atan2(c.velocity[1], c.velocity[0]) if moving else 0.0)
        else:
            x, y, heading = self._along(c.speed * t)
            yaw = c.yaw if c.yaw is not None else heading
        return float(x + self.offset[0]), float(y + self.offset[1]), float(yaw + self.yaw_offset)

    def _along(self, s: float):
        total = self._cum[-1]
        if total <= 0:
            return self._points[0][0], self._points[0][1], 0.0
        s = s % total if self.config.loop else min(s, total)
        i = int(np.searchsorted(self._cum, s, side='right') - 1)
        i = min(max(i, 0), len(self._lengths) - 1)
        while self._lengths[i] == 0 and i > 0:
            i -= 1
        frac = 0.0 if self._lengths[i] == 0 else (s - self._cum[i]) / self._lengths[i]
        a, b = self._points[i], self._points[i + 1]
        p = a + frac * (b - a)
        return p[0], p[1], math.atan2(b[1] - a[1], b[0] - a[0])
