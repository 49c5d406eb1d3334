"""Offline fusion in a replay: the camera core's detections of a frame and the point cloud (with the
lidar core's detections) nearest to it in stamp go through :func:`aiat_perception.fusion.fuse`, with
the camera model from the bag's CameraInfo and the extrinsic from its /tf_static, as the fusion node
does on the vehicle.

A fused object becomes a 3D box in the lidar frame, where the ground truth is: centre = the fused
position; with an associated lidar detection that box's size and heading, else the extent of the
supporting points along the camera axes (heading = the camera's optical axis), the node's box rule
(aiat_perception/fusion_messages.py on the fusion-node branch). Its class is the camera's, mapped to
the lidar's evaluation classes (person -> pedestrian, bicycle -> cyclist, car -> car; others are
not scored).
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Callable, Deque, Dict, List, Tuple

import numpy as np

FUSED_CLASS = {'person': 'pedestrian', 'car': 'car', 'bicycle': 'cyclist'}
RECENT_CLOUDS = 4


@dataclass
class CameraEntry:
    frame: object                    # the camera SensorFrame
    boxes: np.ndarray
    labels: List[str]
    scores: np.ndarray


@dataclass
class CloudEntry:
    stamp_ns: int
    frame_id: str
    xyz: np.ndarray
    detections: list                 # lidar core Detection3D (lidar frame)


def camera_model(info):
    """CameraModel of a CameraInfo (rosbags or rclpy); rectified when it has no distortion (the
    fusion node's ``image_rectified: auto``)."""
    from aiat_perception.fusion.camera import CameraModel
    rectified = not any(float(v) != 0.0 for v in info.d)
    return CameraModel.from_camera_info_fields(list(info.k), list(info.d), list(info.r), list(info.p),
                                               int(info.width), int(info.height), str(info.distortion_model),
                                               rectified=rectified)


def object_from_box(class_name: str, center, rotation: np.ndarray, size, score: float):
    """An Object3D (z-up, yaw about z) of an oriented box in the lidar frame: the box axis nearest
    the vertical gives the height, the first of the other two the length and the heading."""
    from aiat_perception.metrics.matching_3d import Object3D
    rotation = np.asarray(rotation, np.float64)
    up = int(np.argmax(np.abs(rotation[2])))
    a, b = [k for k in range(3) if k != up]
    yaw = math.atan2(rotation[1, a], rotation[0, a])
    return Object3D(class_name, tuple(float(v) for v in center), (float(size[a]), float(size[b]), float(size[up])),
                    yaw, float(score))


def fused_objects(result, lidar_detections, cam_from_lidar: np.ndarray) -> Tuple[list, List[Dict[str, object]]]:
    """(Object3D per fused object of a scored class, in the lidar frame; the same objects' camera box,
    camera class, distance from the camera and centre source). The box is the fusion node's: with an
    associated lidar detection its size and heading, else the supporting points' extent along the
    camera axes."""
    from aiat_perception.lidar.output import yaw_matrix
    lidar_from_cam = np.linalg.inv(cam_from_lidar)
    R = lidar_from_cam[:3, :3]
    objects, info = [], []
    for obj in result.objects:
        cls = FUSED_CLASS.get(obj.class_name)
        if cls is None:
            continue
        center = R @ np.asarray(obj.position, np.float64) + lidar_from_cam[:3, 3]
        if obj.lidar_index is not None and lidar_detections:
            lidar = lidar_detections[obj.lidar_index]
            rotation, size = yaw_matrix(float(lidar.yaw)), lidar.size
        else:
            rotation, size = R, obj.extent
        objects.append(object_from_box(cls, center, rotation, size, obj.score))
        info.append({'camera_class': obj.class_name, 'box': [float(v) for v in obj.box_xyxy],
                     'distance': float(obj.distance), 'center_source': obj.center_source,
                     'n_points': int(obj.n_points)})
    return objects, info


def objects_from_fused_msg(entries, lidar_from_frame: np.ndarray, camera_from_frame: np.ndarray, camera_boxes):
    """The fusion node's output (``entries``: (id, class, score, centre, quaternion xyzw, size) in its
    frame) as :func:`fused_objects` gives them: boxes moved into the lidar frame, the camera box of
    each (``camera_boxes``: the camera detector's boxes at that stamp, indexed by the detection's id)
    and the distance from the camera."""
    from aiat_perception.static_transforms import quaternion_to_matrix
    objects, info = [], []
    for det_id, class_name, score, center, q, size in entries:
        cls = FUSED_CLASS.get(class_name)
        if cls is None:
            continue
        c = np.asarray(center, np.float64)
        try:
            rotation = lidar_from_frame[:3, :3] @ quaternion_to_matrix(*q)
            index = int(det_id)
        except ValueError:
            continue
        box = camera_boxes[index] if 0 <= index < len(camera_boxes) else [float('nan')] * 4
        objects.append(object_from_box(cls, lidar_from_frame[:3, :3] @ c + lidar_from_frame[:3, 3], rotation, size, score))
        info.append({'camera_class': class_name, 'box': [float(v) for v in box],
                     'distance': float(np.linalg.norm(camera_from_frame[:3, :3] @ c + camera_from_frame[:3, 3])),
                     'center_source': 'node', 'n_points': -1})
    return objects, info


class FusionStage:
    """Pairs camera frames with the nearest cloud in stamp (within ``tolerance_ns``) as they come in
    bag order and fuses them; ``make_frame(camera_entry, cloud_entry, result, objects, info, T, model)``
    records each fused frame. Only the last few clouds are kept."""

    def __init__(self, fuse: Callable, tolerance_ns: int, make_frame: Callable):
        self.fuse = fuse
        self.tolerance_ns = int(tolerance_ns)
        self.make_frame = make_frame
        self.pending: List[CameraEntry] = []
        self.clouds: Deque[CloudEntry] = deque(maxlen=RECENT_CLOUDS)
        self.infos: Deque[object] = deque(maxlen=RECENT_CLOUDS)      # CameraInfo messages
        self.unpaired = 0
        self.problems: List[str] = []

    def add_camera_info(self, msg) -> None:
        self.infos.append(msg)

    def add_camera(self, entry: CameraEntry, tf) -> None:
        self.pending.append(entry)
        self._pair(tf, final=False)

    def add_cloud(self, entry: CloudEntry, tf) -> None:
        self.clouds.append(entry)
        self._pair(tf, final=False)

    def finish(self, tf) -> None:
        self._pair(tf, final=True)
        self.unpaired += len(self.pending)
        self.pending = []

    def _pair(self, tf, final: bool) -> None:
        newest = self.clouds[-1].stamp_ns if self.clouds else None
        keep = []
        for entry in self.pending:
            stamp = entry.frame.stamp_ns
            # decided once a cloud at or after the frame's stamp is in (or at the end of the bag)
            if not final and (newest is None or newest < stamp):
                keep.append(entry)
                continue
            best = min(self.clouds, key=lambda c: abs(c.stamp_ns - stamp), default=None)
            if best is None or abs(best.stamp_ns - stamp) > self.tolerance_ns:
                if final or (newest is not None and newest - stamp > self.tolerance_ns):
                    self.unpaired += 1
                else:
                    keep.append(entry)
                continue
            self._fuse(entry, best, tf)
        self.pending = keep

    def _fuse(self, entry: CameraEntry, cloud: CloudEntry, tf) -> None:
        import time

        from aiat_perception.fusion.camera import CameraModelError
        from aiat_perception.static_transforms import TransformError
        stamp = entry.frame.stamp_ns
        # the CameraInfo nearest in stamp (a bag may write it just after its image)
        info = min(self.infos, key=lambda i: abs(i.header.stamp.sec * 1_000_000_000 + i.header.stamp.nanosec - stamp),
                   default=None)
        try:
            if info is None:
                raise ValueError('no CameraInfo before the point cloud')
            model = camera_model(info)
            T = tf.lookup(info.header.frame_id, cloud.frame_id)
        except (CameraModelError, TransformError, ValueError) as exc:
            self.problems.append(' '.join(str(exc).split())[:200])
            self.unpaired += 1
            return
        if self.fuse is None:        # live: the frame only; the node's output fills it in
            self.make_frame(entry, cloud, float('nan'), [], [], T, model)
            return
        t0 = time.perf_counter()
        result = self.fuse(entry.boxes, entry.labels, entry.scores, cloud.xyz, T, model, cloud.detections)
        ms = (time.perf_counter() - t0) * 1e3
        objects, details = fused_objects(result, cloud.detections, T)
        self.make_frame(entry, cloud, ms, objects, details, T, model)
