"""Detections as published: boxes moved into an output frame (centre, orientation quaternion, size),
marker colours per class, and detections read back from a message's numbers (ROS-free)."""
from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import numpy as np

from aiat_perception.lidar.types import Detection3D
from aiat_perception.static_transforms import matrix_to_quaternion, quaternion_to_matrix

# RGBA per class for RViz / Foxglove markers; anything else is grey
CLASS_COLORS = {
    'car': (0.1, 0.5, 1.0, 0.5), 'pedestrian': (1.0, 0.3, 0.1, 0.6), 'cyclist': (1.0, 0.9, 0.1, 0.6),
    'person': (1.0, 0.3, 0.1, 0.6), 'leg': (1.0, 0.6, 0.6, 0.6), 'unknown': (0.6, 0.6, 0.6, 0.3),
    'other': (0.6, 0.6, 0.6, 0.3),
}
DEFAULT_COLOR = (0.6, 0.6, 0.6, 0.3)


def yaw_matrix(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def posed_boxes(detections: Sequence[Detection3D], frame_from_sensor: Optional[np.ndarray] = None
                ) -> List[Tuple[Tuple[float, float, float], Tuple[float, float, float, float]]]:
    """(centre, quaternion x y z w) of each detection's box in the output frame: the sensor frame,
    or through the 4x4 ``frame_from_sensor``."""
    T = np.eye(4) if frame_from_sensor is None else np.asarray(frame_from_sensor, dtype=np.float64)
    if not detections:
        return []
    centers = np.array([det.center for det in detections], dtype=np.float64) @ T[:3, :3].T + T[:3, 3]
    yaws = np.array([det.yaw for det in detections], dtype=np.float64)
    if abs(T[2, 2] - 1.0) < 1e-12:
        # the usual case (sensor upright in its target frame): a turn about z, quaternions in one go
        half = (yaws + math.atan2(T[1, 0], T[0, 0])) / 2.0
        quats = np.stack([np.zeros_like(half), np.zeros_like(half), np.sin(half), np.cos(half)], axis=1)
        quats[quats[:, 3] < 0] *= -1.0
        quats = [tuple(q) for q in quats.tolist()]
    else:
        quats = [matrix_to_quaternion(T[:3, :3] @ yaw_matrix(yaw)) for yaw in yaws.tolist()]
    return [(tuple(c), q) for c, q in zip(centers.tolist(), quats)]


def yaw_of_quaternion(x: float, y: float, z: float, w: float) -> float:
    """Heading about +z of an orientation (the box's x axis projected on the ground plane)."""
    R = quaternion_to_matrix(x, y, z, w)
    return float(math.atan2(R[1, 0], R[0, 0]))


def marker_scale(size: Sequence[float], minimum: float = 0.05) -> Tuple[float, float, float]:
    """A box's size for a marker: RViz refuses zero scales (a 2D scan's boxes are flat)."""
    return tuple(max(float(v), minimum) if math.isfinite(v) else minimum for v in size)


def class_color(name: str) -> Tuple[float, float, float, float]:
    return CLASS_COLORS.get(name, DEFAULT_COLOR)
