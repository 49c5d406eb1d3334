"""KITTI object format (devkit conventions): label_2 lines, calib files, velodyne scans.

Camera coordinates: x right, y down, z forward (our optical frame). A label's location is the bottom
centre of the 3D box, dimensions are (height, width, length), rotation_y turns the object's heading
about the camera's y axis (0 = heading along +x), and alpha = rotation_y - atan2(x, z) is the
observation angle. Our single camera is KITTI's rectified camera 0 and camera 2 at once
(R0_rect = I, P0..P3 = K [I | 0]); base_link plays KITTI's IMU.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

from aiat_perception.sim.ground_truth import Box2D, Box3D
from aiat_perception.sim.transforms import wrap_angle

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
    location: Tuple[float, float, float]         # bottom centre in camera coordinates
    rotation_y: float

    def line(self) -> str:
        values = [self.type, f'{self.truncated:.2f}', str(int(self.occluded)), f'{self.alpha:.2f}']
        values += [f'{v:.2f}' for v in self.bbox]
        values += [f'{v:.2f}' for v in self.dimensions]
        values += [f'{v:.2f}' for v in self.location]
        values.append(f'{self.rotation_y:.2f}')
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


def kitti_object(box2d: Box2D, box3d: Box3D) -> KittiObject:
    """A label from our ground truth; ``box3d`` must be in the (level) camera optical frame."""
    R = box3d.pose[:3, :3]
    up = R[:, 2]
    if abs(up[1] + 1.0) > 1e-3:
        raise KittiFormatError(
            f'{box2d.actor}: the camera is not level (object up axis in camera coordinates is '
            f'{np.round(up, 3).tolist()}); KITTI labels need camera roll = pitch = 0')
    length, width, height = (float(v) for v in box3d.size)
    bottom = box3d.center - up * height / 2.0
    heading = R[:, 0]
    rotation_y = wrap_angle(math.atan2(-heading[2], heading[0]))
    alpha = wrap_angle(rotation_y - math.atan2(box3d.center[0], box3d.center[2]))
    return KittiObject(box2d.kitti_class, float(np.clip(box2d.truncation, 0.0, 1.0)), box2d.occlusion_level,
                       alpha, tuple(float(v) for v in box2d.bbox_full), (height, width, length),
                       tuple(float(v) for v in bottom), rotation_y)


def parse_label_line(line: str, source: str = '<label>') -> KittiObject:
    fields = line.split()
    if len(fields) not in (15, 16):
        raise KittiFormatError(f'{source}: expected 15 or 16 fields, got {len(fields)}: {line!r}')
    if fields[0] not in KITTI_CLASSES:
        raise KittiFormatError(f'{source}: unknown KITTI type {fields[0]!r}')
    try:
        v = [float(x) for x in fields[1:15]]
    except ValueError as exc:
        raise KittiFormatError(f'{source}: non-numeric field in {line!r}') from exc
    return KittiObject(fields[0], v[0], int(v[1]), v[2], tuple(v[3:7]), tuple(v[7:10]), tuple(v[10:13]), v[13])


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
        shape = shapes.get(name, (3, 4))
        if numbers.size != shape[0] * shape[1]:
            raise KittiFormatError(f'{path}:{i + 1}: {name} needs {shape[0] * shape[1]} values, got {numbers.size}')
        out[name] = numbers.reshape(shape)
    return out


def write_velodyne(path, points: np.ndarray, intensity: np.ndarray) -> None:
    data = np.hstack([np.asarray(points, np.float32).reshape(-1, 3), np.asarray(intensity, np.float32).reshape(-1, 1)])
    data.astype('<f4').tofile(str(path))


def read_velodyne(path) -> np.ndarray:
    return np.fromfile(str(path), dtype='<f4').reshape(-1, 4)
