"""Point filters: finite/range/height crop and voxel downsampling (vectorised numpy)."""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np


def as_points(points) -> np.ndarray:
    """An (N, >=3) float32 array; a structured array (PointCloud2-like) must have x, y, z fields."""
    arr = np.asarray(points)
    if arr.dtype.names:
        missing = [f for f in ('x', 'y', 'z') if f not in arr.dtype.names]
        if missing:
            raise ValueError(f'point array has no {", ".join(missing)} field (fields: {arr.dtype.names})')
        cols = [arr[f].astype(np.float32).ravel() for f in ('x', 'y', 'z')]
        if 'intensity' in arr.dtype.names:
            cols.append(arr['intensity'].astype(np.float32).ravel())
        return np.stack(cols, axis=1) if cols[0].size else np.zeros((0, len(cols)), np.float32)
    if arr.size == 0:
        return np.zeros((0, 3), np.float32)
    if arr.ndim != 2 or arr.shape[1] < 3:
        raise ValueError(f'points must be N x 3 (or more columns), got shape {arr.shape}')
    return arr.astype(np.float32, copy=False)


def crop_mask(xyz: np.ndarray, range_min: float, range_max: float, z_min: float, z_max: float,
              r: Optional[np.ndarray] = None) -> np.ndarray:
    """Finite points whose horizontal range (``r`` when given) lies in [range_min, range_max] and
    height in [z_min, z_max]."""
    with np.errstate(invalid='ignore', over='ignore'):
        if r is None:
            r = np.hypot(xyz[:, 0], xyz[:, 1])
        keep = (r >= range_min) & (r <= range_max)
        keep &= (xyz[:, 2] >= z_min) & (xyz[:, 2] <= z_max)
    return keep  # NaN compares False: non-finite points drop out here


DENSE_CELLS = 1 << 20   # up to this many cells in the bounding grid, voxels are found without sorting


def voxel_keys(coords: np.ndarray, leaf: float, with_size: bool = False):
    """One int64 key per point naming its voxel (leaf-sized cells over all columns of ``coords``), and
    with ``with_size`` the number of cells of the bounding grid."""
    cells = np.floor(coords / leaf).astype(np.int64)
    cells -= cells.min(axis=0)
    extent = cells.max(axis=0) + 1
    key = cells[:, 0].copy()
    for k in range(1, cells.shape[1]):
        key *= extent[k]
        key += cells[:, k]
    return (key, int(np.prod(extent.astype(np.float64)))) if with_size else key


def voxel_downsample(coords: np.ndarray, leaf: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Voxel centroids (M x D), the voxel index of every input point (N) and points per voxel (M), for
    N x D ``coords`` (D = 3: voxels; D = 2: ground-plane cells)."""
    dims = coords.shape[1] if coords.ndim == 2 else 3
    if len(coords) == 0:
        return np.zeros((0, dims), np.float64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    key, size = voxel_keys(coords, leaf, with_size=True)
    if size <= DENSE_CELLS:
        # counting instead of sorting: a lookup table over the bounding grid
        per_cell = np.bincount(key, minlength=size)
        occupied = np.flatnonzero(per_cell)
        index = np.empty(size, np.int32)
        index[occupied] = np.arange(len(occupied), dtype=np.int32)
        inverse, counts = index[key], per_cell[occupied]
    else:
        _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
        inverse = inverse.ravel()  # numpy 2.0-2.1 return it with the key's shape
    sums = np.stack([np.bincount(inverse, weights=coords[:, k], minlength=len(counts)) for k in range(dims)],
                    axis=1)
    return sums / counts[:, None], inverse, counts
