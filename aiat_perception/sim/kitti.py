"""KITTI object format (devkit conventions): label_2 lines, calib files, velodyne scans.

Camera coordinates: x right, y down, z forward (our optical frame). A label's location is the bottom
centre of the 3D box, dimensions are (height, width, length), rotation_y turns the object's heading
about the camera's y axis (0 = heading along +x), and alpha = rotation_y - atan2(x, z) is the
observation angle. Our single camera is KITTI's rectified camera 0 and camera 2 at once
(R0_rect = I, P0..P3 = K [I | 0]); base_link plays KITTI's IMU. The format and geometry themselves
live in :mod:`aiat_perception.kitti` (re-exported here); this module turns simulator ground truth into labels.
"""
from __future__ import annotations

import math

import numpy as np

from aiat_perception.kitti import (KITTI_CLASSES, KittiCalibration, KittiFormatError, KittiObject,  # noqa: F401
                                   format_calib, parse_label_line, read_calib, read_label, read_velodyne,
                                   write_velodyne)
from aiat_perception.sim.ground_truth import Box2D, Box3D
from aiat_perception.sim.transforms import wrap_angle


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
