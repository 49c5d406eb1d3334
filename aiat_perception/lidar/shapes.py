"""Oriented boxes for clusters: L-shape fitting (search over 0-90 degrees with the closeness criterion
of Zhang et al., "Efficient L-Shape Fitting for Vehicle Detection Using Laser Scanners", 2017), for
all clusters at once: every cluster's points sit in one sorted array and per-cluster minima, maxima
and sums are ``reduceat`` over it, so there is no Python loop per cluster or per point."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass
class Boxes:
    center: np.ndarray     # K x 3
    size: np.ndarray       # K x 3: length (along yaw, the longer side), width, height
    yaw: np.ndarray        # K, in [-pi/2, pi/2)
    n_points: np.ndarray   # K
    top_elevation: np.ndarray = None   # K: highest elevation angle (rad) of a cluster point seen from the sensor
    top_extent: np.ndarray = None      # K: length of the top 40 % (by height) over the box length, 0-1


def _segments(labels: np.ndarray, count: int):
    """Order that sorts the labelled (>= 0) items by label, and each label's start in that order.
    Every label 0..count-1 must occur."""
    idx = np.flatnonzero(labels >= 0)
    keys = labels[idx]
    if count < 32768:
        keys = keys.astype(np.int16)   # numpy sorts 16-bit integers by radix: linear time
    order = idx[np.argsort(keys, kind='stable')]
    counts = np.bincount(labels[idx], minlength=count)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return order, starts, counts


def lshape_angles(xy: np.ndarray, labels: np.ndarray, count: int, angle_step_deg: float = 1.0,
                  d0: float = 0.01, max_distance: float = 0.16, max_extent: float = np.inf) -> np.ndarray:
    """Best rectangle orientation in [0, pi/2) per cluster: the angle maximising the closeness score
    sum(1 / max(d, d0)) over points within ``max_distance`` of their nearest rectangle edge. Clusters
    whose axis-aligned footprint has a side longer than ``max_extent`` (walls, hedges) keep angle 0."""
    best = np.zeros(count)
    if count == 0:
        return best
    order, starts, counts = _segments(labels, count)
    pts = xy[order, :2].astype(np.float64)
    lab = labels[order]
    extent = np.maximum(np.maximum.reduceat(pts, starts, axis=0) - np.minimum.reduceat(pts, starts, axis=0), 0)
    fit = extent.max(axis=1) <= max_extent
    if not fit.any():
        return best
    if not fit.all():
        keep = fit[lab]
        new_id = np.cumsum(fit) - 1
        pts, lab = pts[keep], new_id[lab[keep]]
        counts = counts[fit]
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pts -= (np.add.reduceat(pts, starts, axis=0) / counts[:, None])[lab]
    angles = np.radians(np.arange(0.0, 90.0, angle_step_deg))
    c, s = np.cos(angles), np.sin(angles)
    scores = []
    # chunks bound the (points x angles) temporaries on very large clouds
    for a0 in range(0, len(angles), 30):
        ca, sa = c[a0:a0 + 30], s[a0:a0 + 30]
        p1 = pts[:, :1] * ca + pts[:, 1:] * sa
        p2 = -pts[:, :1] * sa + pts[:, 1:] * ca
        d1 = np.minimum(np.maximum.reduceat(p1, starts, axis=0)[lab] - p1, p1 - np.minimum.reduceat(p1, starts, axis=0)[lab])
        d2 = np.minimum(np.maximum.reduceat(p2, starts, axis=0)[lab] - p2, p2 - np.minimum.reduceat(p2, starts, axis=0)[lab])
        d = np.minimum(d1, d2)
        scores.append(np.add.reduceat(np.where(d <= max_distance, 1.0 / np.maximum(d, d0), 0.0), starts, axis=0))
    best[fit] = angles[np.argmax(np.concatenate(scores, axis=1), axis=1)]
    return best


def fit_boxes(xyz: np.ndarray, labels: np.ndarray, count: int, angles: np.ndarray,
              ground_z: Optional[np.ndarray] = None) -> Boxes:
    """Boxes aligned with each cluster's ``angles`` (radians) enclosing its points; the bottom reaches
    down to the lowest ground under the cluster (``ground_z`` of its points) when given."""
    if count == 0:
        z = np.zeros((0, 3))
        return Boxes(z, z.copy(), np.zeros(0), np.zeros(0, np.int64), np.zeros(0), np.zeros(0))
    order, starts, counts = _segments(labels, count)
    pts = xyz[order, :3].astype(np.float64)
    lab = labels[order]
    ca, sa = np.cos(angles)[lab], np.sin(angles)[lab]
    p1 = pts[:, 0] * ca + pts[:, 1] * sa
    p2 = -pts[:, 0] * sa + pts[:, 1] * ca
    lo1, hi1 = np.minimum.reduceat(p1, starts), np.maximum.reduceat(p1, starts)
    lo2, hi2 = np.minimum.reduceat(p2, starts), np.maximum.reduceat(p2, starts)
    top = np.maximum.reduceat(pts[:, 2], starts)
    with np.errstate(divide='ignore', invalid='ignore'):
        slope = pts[:, 2] / np.hypot(pts[:, 0], pts[:, 1])
    top_elevation = np.arctan(np.maximum.reduceat(np.nan_to_num(slope, nan=-np.inf), starts))
    bottom = np.minimum.reduceat(pts[:, 2], starts)
    if ground_z is not None:
        # down to the lowest ground under the cluster's points (on a slope: its downhill edge)
        bottom = np.minimum(bottom, np.minimum.reduceat(ground_z[order].astype(np.float64), starts))
    # how far the upper part spans the box: a car's roof nearly all of it, a rider's torso little
    upper = pts[:, 2] >= (top - 0.4 * (top - bottom))[lab]
    up1 = np.maximum.reduceat(np.where(upper, p1, -np.inf), starts) - np.minimum.reduceat(np.where(upper, p1, np.inf), starts)
    up2 = np.maximum.reduceat(np.where(upper, p2, -np.inf), starts) - np.minimum.reduceat(np.where(upper, p2, np.inf), starts)
    m1, m2 = (lo1 + hi1) / 2.0, (lo2 + hi2) / 2.0
    c, s = np.cos(angles), np.sin(angles)
    cx, cy = m1 * c - m2 * s, m1 * s + m2 * c
    len1, len2 = hi1 - lo1, hi2 - lo2
    longer_first = len1 >= len2
    yaw = np.where(longer_first, angles, angles + math.pi / 2.0)
    yaw = (yaw + math.pi / 2.0) % math.pi - math.pi / 2.0
    size = np.stack([np.maximum(len1, len2), np.minimum(len1, len2), top - bottom], axis=1)
    center = np.stack([cx, cy, (top + bottom) / 2.0], axis=1)
    with np.errstate(invalid='ignore', divide='ignore'):
        top_extent = np.where(longer_first, up1 / len1, up2 / len2)
    top_extent = np.clip(np.nan_to_num(top_extent, nan=1.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    return Boxes(center, size, yaw, counts, top_elevation, top_extent)


def complete_car(center, size, yaw: float, length: float, width: float, min_length: float = 2.6,
                 min_width: float = 1.3):
    """A car box completed to a ``length`` x ``width`` footprint where only its end (box shorter than
    ``min_length``) or only one side (box narrower than ``min_width``) was seen. The visible face is
    the one nearest the sensor, so the unseen extent grows away from it. Returns (center, size, yaw)."""
    center = np.array(center, dtype=np.float64)
    size = np.array(size, dtype=np.float64)
    across = np.array([-math.sin(yaw), math.cos(yaw)])
    if np.dot(across, center[:2]) < 0:
        across = -across
    if size[0] < min_length:
        # the seen face (the box's long side) is the car's back or front; its length runs across it
        grow = max(length, size[1]) - size[1]
        center[:2] += across * grow / 2.0
        size[:2] = size[1] + grow, size[0]
        yaw = math.atan2(across[1], across[0])
    elif size[1] < min_width:
        grow = max(width, size[1]) - size[1]
        center[:2] += across * grow / 2.0
        size[1] += grow
    yaw = (yaw + math.pi / 2.0) % math.pi - math.pi / 2.0
    return center, size, yaw
