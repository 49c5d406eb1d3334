"""An object's 3D position from the lidar points inside its 2D box (ROS-free).

The points inside a box are the object plus whatever shows around it and through it (the wall
behind a person, the road, a car behind a cyclist). The mean of them is wherever that mix says.
The object is the *dominant depth cluster*: sorted by range, the points split wherever
consecutive ranges jump by more than a gap; the cluster with the most points wins (the nearer one
on a tie: a nearer object occludes a farther one, not the other way round).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


def dominant_cluster(ranges: np.ndarray, gap: float) -> np.ndarray:
    """Indices (into ``ranges``) of the largest group of ranges with no gap above ``gap`` (metres)."""
    ranges = np.asarray(ranges, dtype=np.float64).reshape(-1)
    if not len(ranges):
        return np.zeros(0, np.int64)
    order = np.argsort(ranges)
    r = ranges[order]
    starts = np.concatenate([[0], np.flatnonzero(np.diff(r) > gap) + 1])
    ends = np.concatenate([starts[1:], [len(r)]])
    best = int(np.argmax(ends - starts))          # argmax takes the first (nearest) of equal sizes
    return order[starts[best]:ends[best]]


class Estimate(NamedTuple):
    surface: np.ndarray       # 3: median of the supporting points (on the visible surface)
    extent: np.ndarray        # 3: size of the supporting points along the camera axes
    covariance: np.ndarray    # 3x3: spread of the supporting points plus range noise


def estimate(points: np.ndarray, range_noise: float) -> Estimate:
    """Surface point, extent and covariance of an object's supporting points (M x 3, M >= 1).

    The covariance is the points' spread about their mean (the object's centre lies somewhere
    inside its visible part, so the spread is an honest, if conservative, position uncertainty),
    plus ``range_noise``^2 on the diagonal so that a single point or a flat surface still gives a
    proper (positive definite) covariance."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    return estimate_columns(np.ascontiguousarray(pts.T), range_noise)


def estimate_columns(q: np.ndarray, range_noise: float) -> Estimate:
    """:func:`estimate` of points given as a 3 x M array (reductions along rows are several times
    faster than down the columns of an M x 3 array)."""
    m = q.shape[1]
    surface = np.median(q, axis=1)
    extent = q.max(axis=1) - q.min(axis=1)
    d = q - q.mean(axis=1)[:, None]
    cov = np.empty((3, 3))
    for i in range(3):
        for j in range(i, 3):
            cov[i, j] = cov[j, i] = float(np.dot(d[i], d[j])) / m
    cov += np.eye(3) * float(range_noise) ** 2
    return Estimate(surface, extent, cov)


def push_back(surface: np.ndarray, depth: float) -> np.ndarray:
    """The object's centre from a point on its visible surface: ``depth``/2 farther along the line
    of sight from the camera (the visible surface faces the camera)."""
    surface = np.asarray(surface, dtype=np.float64)
    norm = float(np.linalg.norm(surface))
    if norm <= 0.0:
        return surface.copy()
    return surface * (1.0 + depth / 2.0 / norm)
