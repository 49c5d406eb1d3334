"""Fused objects (:mod:`aiat_perception.fusion`) as published by the fusion node: boxes in an output
frame, ``vision_msgs/Detection3DArray`` and ``visualization_msgs/MarkerArray`` (message classes
imported inside the functions, so the geometry loads and is tested without ROS).

A fused object's box: centre = the fused position; with an associated lidar detection its size and
heading are the lidar box's (length, width, height about the lidar's up axis), else the extent of the
supporting points along the camera axes. The position covariance (3x3) is rotated into the output
frame and fills the hypothesis's 6x6 pose covariance; orientation is not estimated, so its variances
are :data:`UNKNOWN_VARIANCE`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from aiat_perception.lidar.output import class_color, marker_scale, yaw_matrix
from aiat_perception.static_transforms import matrix_to_quaternion

UNKNOWN_VARIANCE = 1e6     # rad^2: "not estimated" in the rotation block of the pose covariance


@dataclass
class FusedBox:
    detection_id: str                           # the 2D detection's id (or its index when it has none)
    class_name: str                             # the camera's class
    score: float                                # the camera's score
    center: Tuple[float, float, float]          # output frame
    quaternion: Tuple[float, float, float, float]   # x y z w, output frame
    size: Tuple[float, float, float]
    covariance: np.ndarray                      # 3x3 position covariance, output frame (m^2)
    distance: float                             # metres from the camera
    n_points: int
    lidar_index: Optional[int]

    def pose_covariance(self) -> List[float]:
        """Row-major 6x6 (x y z, rotation about x y z) for geometry_msgs/PoseWithCovariance."""
        cov = np.zeros((6, 6))
        cov[:3, :3] = self.covariance
        cov[3:, 3:] = np.eye(3) * UNKNOWN_VARIANCE
        return [float(v) for v in cov.ravel()]


def fused_boxes(objects: Sequence, detection_ids: Sequence[str], frame_from_camera: Optional[np.ndarray] = None,
                lidar_detections: Optional[Sequence] = None,
                cam_from_lidar: Optional[np.ndarray] = None) -> List[FusedBox]:
    """One :class:`FusedBox` per :class:`~aiat_perception.fusion.fuse.FusedObject` (``detection_ids``
    indexed by each object's ``detection_index``), moved into the output frame by the 4x4
    ``frame_from_camera`` (None: the camera frame)."""
    T = np.eye(4) if frame_from_camera is None else np.asarray(frame_from_camera, dtype=np.float64)
    R = T[:3, :3]
    out = []
    for obj in objects:
        position = np.asarray(obj.position, dtype=np.float64)
        lidar = None
        if obj.lidar_index is not None and lidar_detections is not None and cam_from_lidar is not None:
            lidar = lidar_detections[obj.lidar_index]
        if lidar is not None:
            rotation = R @ np.asarray(cam_from_lidar, dtype=np.float64)[:3, :3] @ yaw_matrix(float(lidar.yaw))
            size = tuple(float(v) for v in lidar.size)
        else:
            rotation = R
            size = tuple(float(v) for v in obj.extent)
        covariance = R @ np.asarray(obj.covariance, dtype=np.float64).reshape(3, 3) @ R.T
        out.append(FusedBox(str(detection_ids[obj.detection_index]), str(obj.class_name), float(obj.score),
                            tuple(float(v) for v in R @ position + T[:3, 3]), matrix_to_quaternion(rotation),
                            size, covariance, float(obj.distance), int(obj.n_points), obj.lidar_index))
    return out


def _set_pose(pose, center, q) -> None:
    pose.position.x, pose.position.y, pose.position.z = center
    pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = q


def fused_detections_msg(boxes: Sequence[FusedBox], header):
    """``vision_msgs/Detection3DArray``: per box the 2D detection's id, one hypothesis (the camera's
    class and score) whose pose is the box's with the position covariance, header = ``header``."""
    from vision_msgs.msg import Detection3D, Detection3DArray, ObjectHypothesisWithPose

    msg = Detection3DArray()
    msg.header = header
    detections = []
    for box in boxes:
        d = Detection3D()
        d.header = header
        d.id = box.detection_id
        _set_pose(d.bbox.center, box.center, box.quaternion)
        d.bbox.size.x, d.bbox.size.y, d.bbox.size.z = box.size
        hyp = ObjectHypothesisWithPose()
        hyp.hypothesis.class_id = box.class_name
        hyp.hypothesis.score = box.score
        _set_pose(hyp.pose.pose, box.center, box.quaternion)
        hyp.pose.covariance = box.pose_covariance()
        d.results = [hyp]
        detections.append(d)
    msg.detections = detections
    return msg


def fused_markers(boxes: Sequence[FusedBox], header, namespace: str = 'fused'):
    """A DELETEALL, then per box a CUBE coloured by class and a text label (class, distance)."""
    from visualization_msgs.msg import Marker, MarkerArray

    clear = Marker(action=Marker.DELETEALL)
    clear.header = header
    markers = [clear]
    for index, box in enumerate(boxes):
        cube = Marker(ns=namespace, id=2 * index, action=Marker.ADD, type=Marker.CUBE)
        cube.header = header
        _set_pose(cube.pose, box.center, box.quaternion)
        cube.scale.x, cube.scale.y, cube.scale.z = marker_scale(box.size, minimum=0.1)
        cube.color.r, cube.color.g, cube.color.b, cube.color.a = class_color(box.class_name)
        label = Marker(ns=namespace + '/labels', id=2 * index + 1, action=Marker.ADD, type=Marker.TEXT_VIEW_FACING,
                       text=f'{box.class_name} {box.distance:.1f} m' if math.isfinite(box.distance) else box.class_name)
        label.header = header
        _set_pose(label.pose, box.center, (0.0, 0.0, 0.0, 1.0))
        label.scale.z = 0.4
        label.color.r = label.color.g = label.color.b = label.color.a = 1.0
        markers += [cube, label]
    return MarkerArray(markers=markers)


def camera_detections_from_msg(msg, max_detections: int = 10_000):
    """(boxes K x 4 xyxy, class names, scores, ids, skipped) of a ``Detection2DArray``: best hypothesis
    per detection; an entry with no hypothesis, a non-finite number or a negative size is skipped and
    counted. ``ids``: each detection's id, or its index in the message when it has none. More than
    ``max_detections`` entries: ValueError (a malformed message)."""
    if len(msg.detections) > max_detections:
        raise ValueError(f'{len(msg.detections)} detections > {max_detections}')
    boxes, names, scores, ids = [], [], [], []
    skipped = 0
    for index, det in enumerate(msg.detections):
        if not det.results:
            skipped += 1
            continue
        best = max(det.results, key=lambda r: r.hypothesis.score)
        cx, cy = det.bbox.center.position.x, det.bbox.center.position.y
        w, h, score = det.bbox.size_x, det.bbox.size_y, best.hypothesis.score
        if not all(math.isfinite(v) for v in (cx, cy, w, h, score)) or w < 0 or h < 0 or max(abs(cx), abs(cy), w, h) > 1e6:
            skipped += 1
            continue
        boxes.append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
        names.append(str(best.hypothesis.class_id))
        scores.append(float(score))
        ids.append(det.id or str(index))
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4), names, np.asarray(scores, dtype=np.float64), ids, skipped


def objects_moved(objects: Sequence, T: np.ndarray) -> list:
    """:class:`~aiat_perception.metrics.matching_3d.Object3D` s moved by the 4x4 ``T`` between two
    z-up frames (centre moved, heading turned by T's turn about z)."""
    from aiat_perception.metrics.matching_3d import Object3D
    T = np.asarray(T, dtype=np.float64)
    turn = math.atan2(T[1, 0], T[0, 0])
    return [Object3D(o.class_name, tuple(float(v) for v in T[:3, :3] @ np.asarray(o.center) + T[:3, 3]), o.size,
                     o.yaw + turn, o.score) for o in objects]
