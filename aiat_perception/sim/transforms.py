"""Rigid transforms as 4x4 numpy matrices, and the fixed frame conventions of the simulator.

Frames (REP 103/105): ``map`` (world, z up), ``base_link`` (ego, x forward, y left, z up),
sensor body frames (same axes as base_link), and ``camera_optical`` (x right, y down, z forward,
the frame of KITTI's camera coordinates and of OpenCV's pinhole model).
"""
from __future__ import annotations

import math

import numpy as np

from aiat_perception.static_transforms import invert, matrix_to_quaternion  # noqa: F401 (invert: sim API)

# Rotation taking optical-frame vectors into the camera body frame (x fwd, y left, z up).
R_BODY_FROM_OPTICAL = np.array([[0.0, 0.0, 1.0],
                                [-1.0, 0.0, 0.0],
                                [0.0, -1.0, 0.0]])


def rotation_rpy(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """R = Rz(yaw) @ Ry(pitch) @ Rx(roll) (fixed-axis roll, pitch, yaw as in ROS/URDF)."""
    cr, sr = math.cos(roll), math.sin(roll)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    return np.array([[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                     [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                     [-sp, cp * sr, cp * cr]])


def make_transform(translation=(0.0, 0.0, 0.0), rotation=None) -> np.ndarray:
    T = np.eye(4)
    if rotation is not None:
        T[:3, :3] = rotation
    T[:3, 3] = translation
    return T


def pose_xyz_rpy(xyz, rpy) -> np.ndarray:
    return make_transform(xyz, rotation_rpy(*rpy))


def pose_xy_yaw(x: float, y: float, z: float, yaw: float) -> np.ndarray:
    return make_transform((x, y, z), rotation_rpy(0.0, 0.0, yaw))


def transform_points(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    return points @ T[:3, :3].T + T[:3, 3]


def quaternion_xyzw(R: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w) of a rotation matrix (w >= 0)."""
    return np.array(matrix_to_quaternion(R))


def wrap_angle(angle: float) -> float:
    return (angle + math.pi) % (2.0 * math.pi) - math.pi
