"""Point cloud files: KITTI velodyne ``.bin``, numpy ``.npy`` and PCL ``.pcd`` (through pypcd4, an
optional extra: ``pip install pypcd4``; not a vehicle dependency)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from aiat_perception.kitti import KittiFormatError, read_velodyne
from aiat_perception.lidar.filters import as_points

MAX_POINTS = 20_000_000   # a file claiming more is refused rather than exhausting memory


class PointFileError(ValueError):
    pass


def load_points(path) -> np.ndarray:
    """N x 4 float32 (x, y, z, intensity; intensity 0 where the file has none)."""
    path = Path(path)
    if not path.is_file():
        raise PointFileError(f'{path}: no such file')
    suffix = path.suffix.lower()
    if suffix == '.bin':
        if path.stat().st_size > MAX_POINTS * 16:
            raise PointFileError(f'{path}: more than {MAX_POINTS} points')
        try:
            pts = read_velodyne(path)
        except KittiFormatError as exc:
            raise PointFileError(str(exc)) from exc
    elif suffix == '.npy':
        try:
            arr = np.load(str(path), mmap_mode='r', allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise PointFileError(f'{path}: not a numpy array file: {exc}') from exc
        if arr.shape and arr.shape[0] > MAX_POINTS:
            raise PointFileError(f'{path}: more than {MAX_POINTS} points')
        pts = _from_array(np.asarray(arr), path)
    elif suffix == '.pcd':
        pts = _read_pcd(path)
    else:
        raise PointFileError(f'{path}: unknown point file type {suffix!r} (.bin, .npy or .pcd)')
    return pts


def _from_array(arr: np.ndarray, path) -> np.ndarray:
    try:
        pts = as_points(arr)
    except ValueError as exc:
        raise PointFileError(f'{path}: {exc}') from exc
    if pts.shape[1] == 3:
        pts = np.hstack([pts, np.zeros((len(pts), 1), np.float32)])
    return np.ascontiguousarray(pts[:, :4], dtype=np.float32)


def _read_pcd(path: Path) -> np.ndarray:
    try:
        from pypcd4 import PointCloud
    except ImportError as exc:
        raise PointFileError(f'{path}: reading .pcd needs the optional pypcd4 package (pip install pypcd4)') from exc
    try:
        cloud = PointCloud.from_path(str(path))
    except Exception as exc:  # pypcd4 raises assorted errors for malformed headers and data
        raise PointFileError(f'{path}: cannot read PCD: {exc}') from exc
    fields = list(cloud.fields)
    missing = [f for f in ('x', 'y', 'z') if f not in fields]
    if missing:
        raise PointFileError(f'{path}: PCD has no {", ".join(missing)} field (fields: {fields})')
    if cloud.points > MAX_POINTS:
        raise PointFileError(f'{path}: more than {MAX_POINTS} points')
    data = cloud.numpy(('x', 'y', 'z'))
    intensity = cloud.numpy(('intensity',))[:, 0] if 'intensity' in fields else np.zeros(len(data))
    return np.hstack([data, intensity[:, None]]).astype(np.float32)
