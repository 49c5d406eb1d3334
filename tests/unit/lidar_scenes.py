"""Constructed point clouds for the lidar tests: ground planes and the sensor-facing faces of boxes."""
from __future__ import annotations

import math

import numpy as np


def ground(extent: float = 40.0, spacing: float = 0.25, height: float = -1.73, slope_deg: float = 0.0,
           noise: float = 0.01, seed: int = 0, start: float = 2.0) -> np.ndarray:
    """A ground grid (x forward, y left) at ``height`` under the sensor, rising along +x by ``slope_deg``
    beyond x = ``start`` (flat before it)."""
    rng = np.random.default_rng(seed)
    xs = np.arange(-extent, extent, spacing)
    x, y = np.meshgrid(xs, xs, indexing='ij')
    x, y = x.ravel(), y.ravel()
    keep = np.hypot(x, y) > 1.5
    x, y = x[keep], y[keep]
    z = height + np.maximum(x - start, 0.0) * math.tan(math.radians(slope_deg)) + rng.normal(0, noise, len(x))
    return np.stack([x, y, z], axis=1)


def ground_height(x, height: float = -1.73, slope_deg: float = 0.0, start: float = 2.0):
    return height + np.maximum(np.asarray(x) - start, 0.0) * math.tan(math.radians(slope_deg))


def box_faces(center, size, yaw: float, spacing: float = 0.05, noise: float = 0.0, seed: int = 1,
              visible_only: bool = True) -> np.ndarray:
    """Points on the vertical faces of a box (length along yaw, width, height; centre z at mid height)
    that face the sensor at the origin (all four with ``visible_only=False``), and its top."""
    rng = np.random.default_rng(seed)
    cx, cy, cz = center
    length, width, height = size
    c, s = math.cos(yaw), math.sin(yaw)
    pts = []
    zs = np.arange(cz - height / 2.0, cz + height / 2.0 + 1e-9, spacing)
    for sign, axis_len, other_len, normal_local in [(1, length, width, (1, 0)), (-1, length, width, (-1, 0)),
                                                    (1, width, length, (0, 1)), (-1, width, length, (0, -1))]:
        nx, ny = normal_local
        # face centre and direction along the face, in the box frame
        fc = np.array([nx * length / 2.0, ny * width / 2.0])
        along = np.array([-ny, nx])
        half = (width if nx else length) / 2.0
        ts = np.arange(-half, half + 1e-9, spacing)
        local = fc[None, :] + ts[:, None] * along[None, :]
        world = np.stack([cx + local[:, 0] * c - local[:, 1] * s, cy + local[:, 0] * s + local[:, 1] * c], axis=1)
        normal_world = np.array([nx * c - ny * s, nx * s + ny * c])
        face_centre = np.array([cx + fc[0] * c - fc[1] * s, cy + fc[0] * s + fc[1] * c])
        if visible_only and np.dot(normal_world, -face_centre) <= 0:
            continue
        xy = np.repeat(world, len(zs), axis=0)
        z = np.tile(zs, len(world))
        pts.append(np.column_stack([xy, z]))
    out = np.vstack(pts)
    return out + rng.normal(0, noise, out.shape) if noise else out


def cylinder(center, radius: float, height: float, spacing: float = 0.04, seed: int = 2) -> np.ndarray:
    """Points on the sensor-facing half of a vertical cylinder (centre z at mid height)."""
    cx, cy, cz = center
    facing = math.atan2(-cy, -cx)
    angles = facing + np.linspace(-math.pi / 2, math.pi / 2, max(3, int(math.pi * radius / spacing)))
    zs = np.arange(cz - height / 2.0, cz + height / 2.0 + 1e-9, spacing)
    ring = np.stack([cx + radius * np.cos(angles), cy + radius * np.sin(angles)], axis=1)
    return np.column_stack([np.repeat(ring, len(zs), axis=0), np.tile(zs, len(ring))])
