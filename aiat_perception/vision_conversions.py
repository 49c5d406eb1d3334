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
