"""Ground removal for spinning lidars, vectorised.

``polar_grid_ground``: the scan is cut into azimuth sectors and range bins; each cell's lowest point is
a ground candidate. Walking outwards along all sectors at once (a loop over range bins, never over
rays or points), a candidate becomes the sector's ground when it rises no more than the local slope
allows from the previous ground cell of that sector and no more than the global slope allows from the
ground under the sensor, so the estimate follows sloped roads and skips the bottoms of objects.
Cells without a ground candidate keep the sector's last ground height. A point is non-ground when it
lies more than ``height_threshold`` above its cell's ground. This is the idea of Autoware's
ray/scan ground filters (Autoware compares consecutive points along each ray in C++; the grid of
cell minima lets numpy do the same comparison for all rays at once).

``ransac_ground``: one plane fitted by RANSAC (hypotheses scored in one matrix product), for flat scenes.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import numpy as np


def polar_grid_ground(xyz: np.ndarray, sensor_height: float, range_max: float, sector_deg: float = 1.0,
                      bin_m: float = 0.5, local_slope_deg: float = 13.0, global_slope_deg: float = 10.0,
                      chain_tolerance: float = 0.15, max_gap_m: float = 4.0,
                      height_threshold: float = 0.2, r: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
    """(non-ground mask, ground height under every point) for points in the sensor frame (z up);
    ``r`` is the points' horizontal range when the caller has it already."""
    n = len(xyz)
    if n == 0:
        return np.zeros(0, bool), np.zeros(0, np.float64)
    sectors = max(1, int(round(360.0 / sector_deg)))
    bins = max(1, int(math.ceil(range_max / bin_m)))
    x, y, z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    if r is None:
        r = np.hypot(x, y)
    sector = ((np.arctan2(y, x) + np.float32(math.pi)) * np.float32(sectors / (2.0 * math.pi))).astype(np.int32)
    np.clip(sector, 0, sectors - 1, out=sector)
    rbin = np.minimum((r * np.float32(1.0 / bin_m)).astype(np.int32), bins - 1)
    cell = sector * np.int32(bins) + rbin
    lowest = np.full(sectors * bins, np.inf, dtype=z.dtype)
    np.minimum.at(lowest, cell, z)
    lowest = lowest.astype(np.float64).reshape(sectors, bins)

    base = -float(sensor_height)
    tan_local, tan_global = math.tan(math.radians(local_slope_deg)), math.tan(math.radians(global_slope_deg))
    centres = (np.arange(bins) + 0.5) * bin_m
    # the global-slope test does not depend on the walk: for all cells at once
    candidate = np.abs(lowest - base) <= centres * tan_global + chain_tolerance
    ground = np.empty((bins, sectors))
    last_z = np.full(sectors, base)
    last_r = np.zeros(sectors)
    lowest_t, candidate_t = np.ascontiguousarray(lowest.T), np.ascontiguousarray(candidate.T)
    any_candidate = candidate.any(axis=0).tolist()
    for k in range(bins):
        if any_candidate[k]:
            rc = centres[k]
            m = lowest_t[k]
            ok = candidate_t[k] & (np.abs(m - last_z) <= np.minimum(rc - last_r, max_gap_m) * tan_local
                                   + chain_tolerance)
            np.copyto(last_z, m, where=ok)
            np.copyto(last_r, rc, where=ok)
        ground[k] = last_z
    ground_z = ground.T.ravel()[cell]
    return z > ground_z + height_threshold, ground_z


def ransac_ground(xyz: np.ndarray, sensor_height: float, distance: float = 0.15, max_slope_deg: float = 10.0,
                  hypotheses: int = 128, sample: int = 4000, seed: int = 0,
                  height_threshold: float = 0.2) -> Tuple[np.ndarray, np.ndarray]:
    """(non-ground mask, plane height under every point) from one RANSAC plane near z = -sensor_height."""
    n = len(xyz)
    if n == 0:
        return np.zeros(0, bool), np.zeros(0, np.float64)
    pts = xyz[:, :3].astype(np.float64)
    candidates = pts[np.abs(pts[:, 2] + sensor_height) < 1.0]
    a, b, c, d = 0.0, 0.0, 1.0, sensor_height  # fallback: level plane z = -sensor_height
    if len(candidates) >= 3:
        rng = np.random.default_rng(seed)
        if len(candidates) > sample:
            candidates = candidates[rng.choice(len(candidates), sample, replace=False)]
        triples = candidates[rng.integers(0, len(candidates), size=(hypotheses, 3))]
        normals = np.cross(triples[:, 1] - triples[:, 0], triples[:, 2] - triples[:, 0])
        norm = np.linalg.norm(normals, axis=1)
        valid = norm > 1e-9
        normals[valid] /= norm[valid, None]
        normals *= np.where(normals[:, 2:3] < 0, -1.0, 1.0)
        valid &= normals[:, 2] >= math.cos(math.radians(max_slope_deg))
        if valid.any():
            normals, triples = normals[valid], triples[valid]
            offsets = -np.einsum('ij,ij->i', normals, triples[:, 0])
            inliers = np.abs(candidates @ normals.T + offsets) < distance          # sample x hypotheses
            best = int(np.argmax(inliers.sum(axis=0)))
            chosen = candidates[inliers[:, best]]
            # least-squares refinement z = p0 x + p1 y + p2 over the inliers
            A = np.c_[chosen[:, 0], chosen[:, 1], np.ones(len(chosen))]
            p0, p1, p2 = np.linalg.lstsq(A, chosen[:, 2], rcond=None)[0]
            a, b, c, d = -p0, -p1, 1.0, -p2
    ground_z = -(a * pts[:, 0] + b * pts[:, 1] + d) / c
    return pts[:, 2] > ground_z + height_threshold, ground_z
