"""Detections <-> vision_msgs, and diagnostics reports -> diagnostic_msgs (message classes imported
lazily, so the module loads without ROS)."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np


def detections_to_msg(boxes: np.ndarray, scores: np.ndarray, labels: Sequence[str], header,
                      msg=None, ids: Optional[Sequence[str]] = None):
    """A ``vision_msgs/Detection2DArray`` (xyxy pixel boxes -> centre/size) with ``header``;
    ``ids`` fills each detection's id (e.g. the simulator's actor names)."""
    from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

    msg = msg or Detection2DArray()
    msg.header = header
    detections = []
    ids = ids if ids is not None else [''] * len(labels)
    for (x1, y1, x2, y2), score, label, det_id in zip(np.asarray(boxes, dtype=np.float64).tolist(),
                                                       np.asarray(scores, dtype=np.float64).tolist(),
                                                       labels, ids):
        det = Detection2D()
        det.header = header
        det.id = det_id
        det.bbox.center.position.x = (x1 + x2) / 2.0
        det.bbox.center.position.y = (y1 + y2) / 2.0
        det.bbox.size_x = x2 - x1
        det.bbox.size_y = y2 - y1
        hyp = ObjectHypothesisWithPose()
        hyp.hypothesis.class_id = label
        hyp.hypothesis.score = score
        det.results.append(hyp)
        detections.append(det)
    msg.detections = detections
    return msg


def label_info_msg(class_names: Sequence[str], threshold: float, header=None):
    from vision_msgs.msg import LabelInfo, VisionClass

    msg = LabelInfo()
    if header is not None:
        msg.header = header
    msg.class_map = [VisionClass(class_id=i, class_name=name) for i, name in enumerate(class_names)]
    msg.threshold = float(threshold)
    return msg


def diagnostic_array(statuses: Sequence, stamp) -> object:
    """``diagnostic_msgs/DiagnosticArray`` from (name, hardware_id, report) tuples, a report being
    a :class:`~aiat_perception.pipeline_health.HealthReport` (level 0..3, message, (key, value)
    pairs; float values written with 6 significant digits). The one diagnostics builder."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

    array = DiagnosticArray()
    array.header.stamp = stamp
    for name, hardware_id, report in statuses:
        status = DiagnosticStatus()
        status.level = bytes([report.level])
        status.name = name
        status.hardware_id = hardware_id
        status.message = report.message
        status.values = [KeyValue(key=k, value=f'{v:.6g}' if isinstance(v, float) else str(v))
                         for k, v in report.values]
        array.status.append(status)
    return array


def diagnostic_values(status) -> dict:
    return {kv.key: kv.value for kv in status.values}


def labeled_boxes_from_msg(msg, min_score: float = 0.0) -> list:
    """:class:`~aiat_perception.metrics.matching.LabeledBox` es from a Detection2DArray (best
    hypothesis per detection); malformed entries (no hypothesis, negative size, non-finite numbers)
    are skipped."""
    import math

    from aiat_perception.metrics.matching import LabeledBox
    out = []
    for det in msg.detections:
        if not det.results:
            continue
        best = max(det.results, key=lambda r: r.hypothesis.score)
        cx, cy = det.bbox.center.position.x, det.bbox.center.position.y
        w, h = det.bbox.size_x, det.bbox.size_y
        values = (cx, cy, w, h, best.hypothesis.score)
        if not all(math.isfinite(v) for v in values) or w < 0 or h < 0:
            continue
        if best.hypothesis.score < min_score:
            continue
        out.append(LabeledBox((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), best.hypothesis.class_id,
                              float(best.hypothesis.score), det.id))
    return out


def detections_3d_to_msg(detections, header, frame_from_sensor=None, msg=None):
    """A ``vision_msgs/Detection3DArray`` of lidar :class:`~aiat_perception.lidar.types.Detection3D` s
    with ``header`` (its frame is the output frame; ``frame_from_sensor`` moves the boxes there).
    ``id`` is the detection's index; the class and score are the one hypothesis, whose pose is the box's."""
    from vision_msgs.msg import Detection3D, Detection3DArray, ObjectHypothesisWithPose

    from aiat_perception.lidar.output import posed_boxes

    msg = msg or Detection3DArray()
    msg.header = header
    out = []
    for index, (det, (center, q)) in enumerate(zip(detections, posed_boxes(detections, frame_from_sensor))):
        d = Detection3D()
        d.header = header
        d.id = str(index)
        _set_pose(d.bbox.center, center, q)
        d.bbox.size.x, d.bbox.size.y, d.bbox.size.z = (float(v) for v in det.size)
        hyp = ObjectHypothesisWithPose()
        hyp.hypothesis.class_id = det.class_name
        hyp.hypothesis.score = float(det.score)
        _set_pose(hyp.pose.pose, center, q)
        d.results = [hyp]
        out.append(d)
    msg.detections = out
    return msg


def _set_pose(pose, center, q) -> None:
    pose.position.x, pose.position.y, pose.position.z = center
    pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = q


def detections_3d_markers(detections, header, frame_from_sensor=None, namespace: str = 'detections'):
    """A ``visualization_msgs/MarkerArray`` for RViz / Foxglove: a DELETEALL (boxes of the previous
    frame go), then per detection a CUBE (or CYLINDER) coloured by class and a text label above it."""
    from visualization_msgs.msg import Marker, MarkerArray

    from aiat_perception.lidar.output import class_color, marker_scale, posed_boxes

    clear = Marker(action=Marker.DELETEALL)
    clear.header = header
    markers = [clear]
    for index, (det, (center, q)) in enumerate(zip(detections, posed_boxes(detections, frame_from_sensor))):
        box = Marker(ns=namespace, id=2 * index, action=Marker.ADD,
                     type=Marker.CYLINDER if det.shape == 'cylinder' else Marker.CUBE)
        box.header = header
        _set_pose(box.pose, center, q)
        box.scale.x, box.scale.y, box.scale.z = marker_scale(det.size)
        box.color.r, box.color.g, box.color.b, box.color.a = class_color(det.class_name)
        label = Marker(ns=namespace + '/labels', id=2 * index + 1, action=Marker.ADD,
                       type=Marker.TEXT_VIEW_FACING, text=f'{det.class_name} {det.score:.2f}')
        label.header = header
        _set_pose(label.pose, (center[0], center[1], center[2] + box.scale.z / 2 + 0.3), (0.0, 0.0, 0.0, 1.0))
        label.scale.z = 0.4
        label.color.r = label.color.g = label.color.b = label.color.a = 1.0
        markers += [box, label]
    return MarkerArray(markers=markers)


def objects_3d_from_msg(msg, min_score: float = 0.0) -> list:
    """:class:`~aiat_perception.metrics.matching_3d.Object3D` s (class, centre, size, yaw about z) of a
    ``Detection3DArray``, best hypothesis each; malformed entries (no hypothesis, non-finite numbers,
    negative sizes, a zero quaternion) are skipped."""
    import math

    from aiat_perception.lidar.output import yaw_of_quaternion
    from aiat_perception.metrics.matching_3d import Object3D
    from aiat_perception.static_transforms import TransformError

    out = []
    for det in msg.detections:
        if not det.results:
            continue
        best = max(det.results, key=lambda r: r.hypothesis.score)
        p, o, s = det.bbox.center.position, det.bbox.center.orientation, det.bbox.size
        numbers = (p.x, p.y, p.z, s.x, s.y, s.z, best.hypothesis.score)
        if not all(math.isfinite(v) for v in numbers) or min(s.x, s.y, s.z) < 0:
            continue
        if best.hypothesis.score < min_score:
            continue
        try:
            yaw = yaw_of_quaternion(o.x, o.y, o.z, o.w)
        except TransformError:
            continue
        out.append(Object3D(best.hypothesis.class_id, (p.x, p.y, p.z), (s.x, s.y, s.z), yaw,
                            float(best.hypothesis.score)))
    return out
