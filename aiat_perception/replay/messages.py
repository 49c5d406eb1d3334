"""Building rosbags messages from numpy (for writing bags) and reading the evaluation-relevant ones
back (ground truth, detections, scans). Sensor data is read with ``msg_conversions``' readers,
which take rosbags messages as they are.
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import numpy as np

from aiat_perception.replay.typestore import msg_class
from aiat_perception.static_transforms import matrix_to_quaternion, quaternion_to_matrix

IMAGE = 'sensor_msgs/msg/Image'
COMPRESSED_IMAGE = 'sensor_msgs/msg/CompressedImage'
CAMERA_INFO = 'sensor_msgs/msg/CameraInfo'
POINTCLOUD2 = 'sensor_msgs/msg/PointCloud2'
LASER_SCAN = 'sensor_msgs/msg/LaserScan'
POSE_ARRAY = 'geometry_msgs/msg/PoseArray'
TF_MESSAGE = 'tf2_msgs/msg/TFMessage'
DETECTION_2D_ARRAY = 'vision_msgs/msg/Detection2DArray'
DETECTION_3D_ARRAY = 'vision_msgs/msg/Detection3DArray'

_CHANNELS = {'bgr8': 3, 'rgb8': 3, 'mono8': 1, 'bgra8': 4, 'rgba8': 4}


def stamp(ns: int):
    return msg_class('builtin_interfaces/msg/Time')(sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))


def stamp_ns(header) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def header(ns: int, frame_id: str):
    return msg_class('std_msgs/msg/Header')(stamp=stamp(ns), frame_id=frame_id)


def image(array: np.ndarray, encoding: str, ns: int, frame_id: str):
    array = np.ascontiguousarray(array, dtype=np.uint8)
    if encoding not in _CHANNELS:
        raise ValueError(f'unsupported encoding {encoding!r}')
    h, w = array.shape[:2]
    return msg_class(IMAGE)(header=header(ns, frame_id), height=h, width=w, encoding=encoding, is_bigendian=0,
                            step=w * _CHANNELS[encoding], data=array.reshape(-1))


def compressed_image(array: np.ndarray, ns: int, frame_id: str, fmt: str = 'png'):
    import cv2
    ok, data = cv2.imencode('.' + fmt, array)
    if not ok:
        raise ValueError(f'cannot encode a {array.shape} image as {fmt}')
    return msg_class(COMPRESSED_IMAGE)(header=header(ns, frame_id), format=fmt, data=data.reshape(-1))


def pointcloud2(points: np.ndarray, ns: int, frame_id: str):
    """An unorganised cloud of float32 x, y, z, intensity from N x 3 or N x 4 points."""
    pts = np.asarray(points, dtype=np.float32)
    if pts.ndim != 2 or pts.shape[1] not in (3, 4):
        raise ValueError(f'points must be N x 3 or N x 4, got {pts.shape}')
    if pts.shape[1] == 3:
        pts = np.hstack([pts, np.zeros((len(pts), 1), np.float32)])
    field = msg_class('sensor_msgs/msg/PointField')
    fields = [field(name=n, offset=4 * i, datatype=7, count=1) for i, n in enumerate(('x', 'y', 'z', 'intensity'))]
    data = np.ascontiguousarray(pts.astype('<f4')).view(np.uint8).reshape(-1)
    return msg_class(POINTCLOUD2)(header=header(ns, frame_id), height=1, width=len(pts), fields=fields,
                                  is_bigendian=False, point_step=16, row_step=16 * len(pts), data=data,
                                  is_dense=bool(np.isfinite(pts).all()))


def camera_info(P: np.ndarray, width: int, height: int, ns: int, frame_id: str, K: Optional[np.ndarray] = None):
    """A rectified camera's CameraInfo: no distortion, R = identity, P the 3x4 projection."""
    P = np.asarray(P, dtype=np.float64).reshape(3, 4)
    K = P[:, :3] if K is None else np.asarray(K, dtype=np.float64).reshape(3, 3)
    roi = msg_class('sensor_msgs/msg/RegionOfInterest')(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    return msg_class(CAMERA_INFO)(header=header(ns, frame_id), height=int(height), width=int(width),
                                  distortion_model='plumb_bob', d=np.zeros(5), k=K.reshape(-1).copy(),
                                  r=np.eye(3).reshape(-1), p=P.reshape(-1).copy(), binning_x=0, binning_y=0, roi=roi)


def laser_scan(ranges: np.ndarray, angle_min: float, angle_increment: float, range_min: float, range_max: float,
               ns: int, frame_id: str, scan_time: float = 0.0):
    ranges = np.asarray(ranges, dtype=np.float32).reshape(-1)
    return msg_class(LASER_SCAN)(header=header(ns, frame_id), angle_min=float(angle_min),
                                 angle_max=float(angle_min + angle_increment * max(len(ranges) - 1, 0)),
                                 angle_increment=float(angle_increment), time_increment=0.0, scan_time=float(scan_time),
                                 range_min=float(range_min), range_max=float(range_max), ranges=ranges,
                                 intensities=np.zeros(0, np.float32))


def _vector3(v):
    return msg_class('geometry_msgs/msg/Vector3')(x=float(v[0]), y=float(v[1]), z=float(v[2]))


def _quaternion(R: np.ndarray):
    x, y, z, w = matrix_to_quaternion(R)
    return msg_class('geometry_msgs/msg/Quaternion')(x=x, y=y, z=z, w=w)


def _pose(xyz, R: np.ndarray):
    point = msg_class('geometry_msgs/msg/Point')(x=float(xyz[0]), y=float(xyz[1]), z=float(xyz[2]))
    return msg_class('geometry_msgs/msg/Pose')(position=point, orientation=_quaternion(R))


def yaw_matrix(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def tf_message(transforms: Sequence[Tuple[str, str, np.ndarray]], ns: int):
    """TFMessage of (parent, child, parent_from_child 4x4) transforms."""
    ts = msg_class('geometry_msgs/msg/TransformStamped')
    tr = msg_class('geometry_msgs/msg/Transform')
    items = [ts(header=header(ns, parent), child_frame_id=child,
                transform=tr(translation=_vector3(T[:3, 3]), rotation=_quaternion(T[:3, :3])))
             for parent, child, T in transforms]
    return msg_class(TF_MESSAGE)(transforms=items)


def _hypotheses(class_id: str, score: float):
    hyp = msg_class('vision_msgs/msg/ObjectHypothesis')(class_id=str(class_id), score=float(score))
    pose = msg_class('geometry_msgs/msg/PoseWithCovariance')(pose=_pose((0, 0, 0), np.eye(3)), covariance=np.zeros(36))
    return [msg_class('vision_msgs/msg/ObjectHypothesisWithPose')(hypothesis=hyp, pose=pose)]


def detection_2d_array(boxes: Sequence[Sequence[float]], classes: Sequence[str], scores: Optional[Sequence[float]],
                       ns: int, frame_id: str, ids: Optional[Sequence[str]] = None):
    """Boxes as x0, y0, x1, y1 pixels (ground truth: scores None = 1.0)."""
    hdr = header(ns, frame_id)
    point2d, pose2d = msg_class('vision_msgs/msg/Point2D'), msg_class('vision_msgs/msg/Pose2D')
    bbox2d, det2d = msg_class('vision_msgs/msg/BoundingBox2D'), msg_class('vision_msgs/msg/Detection2D')
    out = []
    for i, (b, cls) in enumerate(zip(boxes, classes)):
        x0, y0, x1, y1 = (float(v) for v in b)
        box = bbox2d(center=pose2d(position=point2d(x=(x0 + x1) / 2, y=(y0 + y1) / 2), theta=0.0),
                     size_x=x1 - x0, size_y=y1 - y0)
        score = 1.0 if scores is None else float(scores[i])
        out.append(det2d(header=hdr, results=_hypotheses(cls, score), bbox=box, id=str(ids[i]) if ids else ''))
    return msg_class(DETECTION_2D_ARRAY)(header=hdr, detections=out)


def detection_3d_array(objects: Sequence, ns: int, frame_id: str):
    """Objects with class_name, center (xyz), size (length, width, height), yaw, score (metric_3d.Object3D)."""
    hdr = header(ns, frame_id)
    bbox3d, det3d = msg_class('vision_msgs/msg/BoundingBox3D'), msg_class('vision_msgs/msg/Detection3D')
    out = [det3d(header=hdr, results=_hypotheses(o.class_name, getattr(o, 'score', 1.0)),
                 bbox=bbox3d(center=_pose(o.center, yaw_matrix(o.yaw)), size=_vector3(o.size)), id='')
           for o in objects]
    return msg_class(DETECTION_3D_ARRAY)(header=hdr, detections=out)


# ------------------------------------------------------------------ reading


def _best(results) -> Tuple[str, float]:
    if not results:
        return '', 0.0
    best = max(results, key=lambda r: r.hypothesis.score)
    return str(best.hypothesis.class_id), float(best.hypothesis.score)


def boxes_2d(msg) -> Tuple[np.ndarray, List[str], np.ndarray]:
    """(boxes K x 4 x0 y0 x1 y1, classes, scores) of a Detection2DArray; non-finite boxes dropped."""
    boxes, classes, scores = [], [], []
    for det in msg.detections:
        cx, cy = float(det.bbox.center.position.x), float(det.bbox.center.position.y)
        w, h = float(det.bbox.size_x), float(det.bbox.size_y)
        b = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        if not all(math.isfinite(v) for v in b) or w < 0 or h < 0:
            continue
        cls, score = _best(det.results)
        boxes.append(b)
        classes.append(cls)
        scores.append(score)
    return np.array(boxes, dtype=np.float64).reshape(-1, 4), classes, np.array(scores, dtype=np.float64)


def objects_3d(msg) -> list:
    """``Object3D`` per detection of a Detection3DArray (yaw from the orientation about z)."""
    from aiat_perception.metrics.matching_3d import Object3D
    out = []
    for det in msg.detections:
        c, s, q = det.bbox.center.position, det.bbox.size, det.bbox.center.orientation
        values = [c.x, c.y, c.z, s.x, s.y, s.z]
        if not all(math.isfinite(float(v)) for v in values):
            continue
        try:
            R = quaternion_to_matrix(q.x, q.y, q.z, q.w)
        except ValueError:
            continue
        cls, score = _best(det.results)
        out.append(Object3D(cls, (float(c.x), float(c.y), float(c.z)), (float(s.x), float(s.y), float(s.z)),
                            math.atan2(R[1, 0], R[0, 0]), score))
    return out
