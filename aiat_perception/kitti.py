"""KITTI object format and geometry (devkit conventions), ROS-free: labels, calib, velodyne scans.

Frames: ``velodyne`` (x forward, y left, z up), the unrectified reference camera 0 (``Tr_velo_to_cam``
maps velodyne into it), the rectified camera 0 (``R0_rect`` maps reference -> rectified; labels live
here: x right, y down, z forward) and image pixels of camera i through ``Pi`` (3x4, its fourth column
holds the baseline offset of cameras 1-3). A velodyne point reaches image_2 as
``P2 @ R0_rect @ Tr_velo_to_cam @ [x y z 1]``.

A label's location is the bottom centre of its 3D box, dimensions are (height, width, length),
rotation_y turns the heading about the camera's y axis (0 = heading along camera +x), and
alpha = rotation_y - atan2(x, z) is the observation angle.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

KITTI_CLASSES = ('Car', 'Van', 'Truck', 'Pedestrian', 'Person_sitting', 'Cyclist', 'Tram', 'Misc', 'DontCare')


class KittiFormatError(ValueError):
    pass


@dataclass
class KittiObject:
    type: str
    truncated: float
    occluded: int
    alpha: float
    bbox: Tuple[float, float, float, float]      # left, top, right, bottom (pixels)
    dimensions: Tuple[float, float, float]       # height, width, length (metres)
    location: Tuple[float, float, float]         # bottom centre in rectified camera coordinates
    rotation_y: float
    score: Optional[float] = None                # 16th field of result files

    def line(self) -> str:
        values = [self.type, f'{self.truncated:.2f}', str(int(self.occluded)), f'{self.alpha:.2f}']
        values += [f'{v:.2f}' for v in self.bbox]
        values += [f'{v:.2f}' for v in self.dimensions]
        values += [f'{v:.2f}' for v in self.location]
        values.append(f'{self.rotation_y:.2f}')
        if self.score is not None:
            values.append(f'{self.score:.4f}')
        return ' '.join(values)

    def corners(self) -> np.ndarray:
        """8x3 box corners in camera coordinates (devkit's computeBox3D convention)."""
        h, w, l = self.dimensions
        x = np.array([l, l, -l, -l, l, l, -l, -l]) / 2.0
        y = np.array([0, 0, 0, 0, -h, -h, -h, -h], dtype=float)
        z = np.array([w, -w, -w, w, w, -w, -w, w]) / 2.0
        c, s = math.cos(self.rotation_y), math.sin(self.rotation_y)
        R = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
        return (R @ np.vstack([x, y, z])).T + np.asarray(self.location)


def parse_label_line(line: str, source: str = '<label>') -> KittiObject:
    fields = line.split()
    if len(fields) not in (15, 16):
        raise KittiFormatError(f'{source}: expected 15 or 16 fields, got {len(fields)}: {line!r}')
    if fields[0] not in KITTI_CLASSES:
        raise KittiFormatError(f'{source}: unknown KITTI type {fields[0]!r}')
    try:
        v = [float(x) for x in fields[1:]]
    except ValueError as exc:
        raise KittiFormatError(f'{source}: non-numeric field in {line!r}') from exc
    if not all(math.isfinite(x) for x in v):
        raise KittiFormatError(f'{source}: non-finite field in {line!r}')
    score = v[14] if len(v) == 15 else None
    return KittiObject(fields[0], v[0], int(v[1]), v[2], tuple(v[3:7]), tuple(v[7:10]), tuple(v[10:13]), v[13],
                       score)


def read_label(path) -> List[KittiObject]:
    path = Path(path)
    return [parse_label_line(line, f'{path}:{i + 1}')
            for i, line in enumerate(path.read_text().splitlines()) if line.strip()]


def format_calib(K: np.ndarray, velo_to_cam: np.ndarray, imu_to_velo: np.ndarray) -> str:
    P = np.hstack([K, np.zeros((3, 1))])
    rows = [(f'P{i}', P) for i in range(4)]
    rows += [('R0_rect', np.eye(3)), ('Tr_velo_to_cam', velo_to_cam[:3, :4]), ('Tr_imu_to_velo', imu_to_velo[:3, :4])]
    return ''.join(f'{name}: ' + ' '.join(f'{v:.12e}' for v in np.asarray(m, dtype=float).ravel()) + '\n'
                   for name, m in rows)


def read_calib(path) -> Dict[str, np.ndarray]:
    """Every matrix of a calib file by name (R0_rect 3x3, the others 3x4)."""
    shapes = {'R0_rect': (3, 3)}
    out = {}
    for i, line in enumerate(Path(path).read_text().splitlines()):
        if not line.strip():
            continue
        name, _, values = line.partition(':')
        try:
            numbers = np.array([float(v) for v in values.split()])
        except ValueError as exc:
            raise KittiFormatError(f'{path}:{i + 1}: non-numeric value') from exc
        if not np.all(np.isfinite(numbers)):
            raise KittiFormatError(f'{path}:{i + 1}: non-finite value in {name}')
        shape = shapes.get(name, (3, 4))
        if numbers.size != shape[0] * shape[1]:
            raise KittiFormatError(f'{path}:{i + 1}: {name} needs {shape[0] * shape[1]} values, got {numbers.size}')
        out[name] = numbers.reshape(shape)
    return out


def _homogeneous(m: np.ndarray) -> np.ndarray:
    out = np.eye(4)
    out[:m.shape[0], :m.shape[1]] = m
    return out


class KittiCalibration:
    """The transforms of one calib file: velodyne <-> rectified camera, and projection to image_i."""

    def __init__(self, matrices: Dict[str, np.ndarray], source: str = '<calib>'):
        missing = [k for k in ('P2', 'R0_rect', 'Tr_velo_to_cam') if k not in matrices]
        if missing:
            raise KittiFormatError(f'{source}: missing {", ".join(missing)}')
        self.source = source
        self.P = {i: matrices[f'P{i}'] for i in range(4) if f'P{i}' in matrices}
        self.R0_rect = matrices['R0_rect']
        self.Tr_velo_to_cam = matrices['Tr_velo_to_cam']
        self.rect_from_velo = _homogeneous(self.R0_rect) @ _homogeneous(self.Tr_velo_to_cam)
        self.velo_from_rect = np.linalg.inv(self.rect_from_velo)

    @classmethod
    def read(cls, path) -> 'KittiCalibration':
        return cls(read_calib(path), str(path))

    def velo_to_rect(self, points: np.ndarray) -> np.ndarray:
        return _apply(self.rect_from_velo, points)

    def rect_to_velo(self, points: np.ndarray) -> np.ndarray:
        return _apply(self.velo_from_rect, points)

    def project_rect(self, points_rect: np.ndarray, camera: int = 2) -> Tuple[np.ndarray, np.ndarray]:
        """Pixels (Nx2) of rectified-camera points through P<camera> (with its fourth column), and the
        depth (N) of each point; pixels of points at depth <= 0 are nan."""
        pts = np.asarray(points_rect, dtype=np.float64).reshape(-1, 3)
        uvw = np.hstack([pts, np.ones((len(pts), 1))]) @ self.P[camera].T
        depth = uvw[:, 2]
        with np.errstate(divide='ignore', invalid='ignore'):
            uv = uvw[:, :2] / depth[:, None]
        uv[depth <= 0] = np.nan
        return uv, pts[:, 2]

    def project_velo(self, points_velo: np.ndarray, camera: int = 2) -> Tuple[np.ndarray, np.ndarray]:
        return self.project_rect(self.velo_to_rect(points_velo), camera)

    def in_image(self, points_velo: np.ndarray, width: int, height: int, camera: int = 2) -> np.ndarray:
        """Which points project inside a width x height image of camera ``camera`` in front of it."""
        uv, depth = self.project_velo(points_velo, camera)
        with np.errstate(invalid='ignore'):
            return (depth > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < width) & (uv[:, 1] >= 0) & (uv[:, 1] < height)

    def label_box_velo(self, obj: KittiObject) -> Tuple[np.ndarray, np.ndarray, float]:
        """(centre xyz, size lwh, yaw) of a label's 3D box in the velodyne frame (yaw about +z,
        0 = heading along velodyne +x)."""
        h, w, l = obj.dimensions
        # the box stands on its bottom centre with its height along velodyne z (the frames differ by
        # a fraction of a degree: the usual convention, and exactly invertible)
        bottom = self.rect_to_velo(np.asarray(obj.location, dtype=np.float64))[0]
        center = bottom + np.array([0.0, 0.0, h / 2.0])
        # rotation_y turns the heading about camera +y (down): heading in camera = (cos ry, 0, -sin ry).
        heading_rect = np.asarray(obj.location) + np.array([math.cos(obj.rotation_y), 0.0, -math.sin(obj.rotation_y)])
        heading = self.rect_to_velo(heading_rect)[0] - bottom
        yaw = math.atan2(heading[1], heading[0])
        return center, np.array([l, w, h]), yaw

    def box_velo_to_label(self, center, size, yaw: float) -> Tuple[Tuple[float, float, float], float]:
        """(bottom-centre location in the rectified camera, rotation_y) of a velodyne-frame box."""
        center = np.asarray(center, dtype=np.float64)
        bottom_velo = center - np.array([0.0, 0.0, float(size[2]) / 2.0])
        bottom = self.velo_to_rect(bottom_velo)[0]
        ahead = self.velo_to_rect(bottom_velo + np.array([math.cos(yaw), math.sin(yaw), 0.0]))[0] - bottom
        rotation_y = math.atan2(-ahead[2], ahead[0])
        return tuple(float(v) for v in bottom), rotation_y

    def image_box(self, corners_rect: np.ndarray, camera: int = 2) -> Optional[Tuple[float, float, float, float]]:
        """Pixel rectangle around projected corners (None when any corner is behind the camera)."""
        uv, depth = self.project_rect(corners_rect, camera)
        if np.any(depth <= 0):
            return None
        return (float(uv[:, 0].min()), float(uv[:, 1].min()), float(uv[:, 0].max()), float(uv[:, 1].max()))


def _apply(T: np.ndarray, points) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    return pts @ T[:3, :3].T + T[:3, 3]


def write_velodyne(path, points: np.ndarray, intensity: np.ndarray) -> None:
    data = np.hstack([np.asarray(points, np.float32).reshape(-1, 3), np.asarray(intensity, np.float32).reshape(-1, 1)])
    data.astype('<f4').tofile(str(path))


def read_velodyne(path) -> np.ndarray:
    """N x 4 float32 (x, y, z, reflectance) of a KITTI velodyne .bin file."""
    raw = np.fromfile(str(path), dtype='<f4')
    if raw.size % 4:
        raise KittiFormatError(f'{path}: {raw.size * 4} bytes is not a whole number of 16-byte points')
    return raw.reshape(-1, 4)
