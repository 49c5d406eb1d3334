"""KITTI's evaluation rules for lidar detections: labels exist only inside the image_2 frustum, so a
detection outside it (or in a DontCare area) is not counted as false; label classes mapped onto
the lidar detector's classes."""
from __future__ import annotations

import struct
from typing import List, Sequence, Tuple

import numpy as np

from aiat_perception.kitti import KittiCalibration, KittiObject
from aiat_perception.metrics.matching_3d import Object3D

KITTI_TO_LIDAR = {'Car': 'car', 'Van': 'car', 'Pedestrian': 'pedestrian', 'Person_sitting': 'pedestrian',
                  'Cyclist': 'cyclist', 'Truck': 'truck', 'Tram': 'tram', 'Misc': 'misc'}
KITTI_IMAGE_SIZE = (1242, 375)


def png_size(path) -> Tuple[int, int]:
    """(width, height) from a PNG header."""
    with open(path, 'rb') as f:
        head = f.read(24)
    if len(head) < 24 or head[:8] != b'\x89PNG\r\n\x1a\n':
        raise ValueError(f'{path}: not a PNG file')
    return struct.unpack('>II', head[16:24])


def ground_truth(calib: KittiCalibration, labels: Sequence[KittiObject]) -> Tuple[List[Object3D], np.ndarray]:
    """Labelled boxes in the velodyne frame (classes mapped) and the DontCare rectangles (K x 4 pixels)."""
    objects, dontcare = [], []
    for obj in labels:
        if obj.type == 'DontCare':
            dontcare.append(obj.bbox)
            continue
        center, size, yaw = calib.label_box_velo(obj)
        objects.append(Object3D(KITTI_TO_LIDAR.get(obj.type, obj.type.lower()), tuple(center), tuple(size), yaw))
    return objects, np.array(dontcare, dtype=np.float64).reshape(-1, 4)


def not_counted(calib: KittiCalibration, detections: Sequence[Object3D], dontcare: np.ndarray,
                image_size: Tuple[int, int] = KITTI_IMAGE_SIZE) -> List[bool]:
    """Per detection: True when its centre projects outside image_2 (or behind the camera) or inside a
    DontCare rectangle, i.e. where KITTI has no labels to match it against."""
    if not detections:
        return []
    centers = np.array([d.center for d in detections], dtype=np.float64)
    width, height = image_size
    uv, depth = calib.project_velo(centers)
    with np.errstate(invalid='ignore'):
        inside = (depth > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < width) & (uv[:, 1] >= 0) & (uv[:, 1] < height)
        in_dontcare = np.zeros(len(detections), dtype=bool)
        for x0, y0, x1, y1 in dontcare:
            in_dontcare |= (uv[:, 0] >= x0) & (uv[:, 0] <= x1) & (uv[:, 1] >= y0) & (uv[:, 1] <= y1)
    return (~inside | in_dontcare).tolist()


def points_in_box(points: np.ndarray, obj: Object3D) -> int:
    """How many points lie inside an object's 3D box."""
    d = np.asarray(points, dtype=np.float64)[:, :3] - np.asarray(obj.center)
    c, s = np.cos(obj.yaw), np.sin(obj.yaw)
    lx = d[:, 0] * c + d[:, 1] * s
    ly = -d[:, 0] * s + d[:, 1] * c
    half = np.asarray(obj.size) / 2.0
    return int(np.count_nonzero((np.abs(lx) <= half[0]) & (np.abs(ly) <= half[1]) & (np.abs(d[:, 2]) <= half[2])))
