"""Fused distances against KITTI labels (ROS-free): the figures of the accuracy test, the CLI and
docs/fusion.md.

Camera detections are matched to labels by the real-camera rule
(:func:`aiat_perception.metrics.kitti_camera.kitti_camera_recall`: class rule, moderate objects,
IoU >= 0.5). A label's true distance is that of its 3D box *centre* (the label's location is the
bottom centre; the centre is half the height above it), in the camera frame of the fusion
(KITTI's reference camera 0: the rectified frame rotated back by R0_rect; a rotation keeps
distances).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from aiat_perception.kitti import KittiCalibration, KittiObject
from aiat_perception.metrics.kitti_camera import kitti_camera_recall
from aiat_perception.metrics.matching import LabeledBox


def label_center_cam(obj: KittiObject, calib: KittiCalibration) -> np.ndarray:
    """The centre of a label's 3D box in the reference camera frame (the fusion's camera frame)."""
    center_rect = np.asarray(obj.location, dtype=np.float64) - np.array([0.0, obj.dimensions[0] / 2.0, 0.0])
    return calib.R0_rect.T @ center_rect


@dataclass
class MatchedError:
    label_index: int                 # index into the label file's objects
    kitti_type: str
    detection_index: int
    class_name: str
    true_distance: float             # metres to the label's box centre
    distance: Optional[float]        # fused distance (None: the detection had too few points)
    surface_distance: Optional[float]
    center_source: str = ''

    @property
    def error(self) -> Optional[float]:
        return None if self.distance is None else self.distance - self.true_distance

    @property
    def relative_error(self) -> Optional[float]:
        return None if self.distance is None else abs(self.error) / self.true_distance

    def to_dict(self) -> Dict[str, object]:
        r = lambda x, n=3: None if x is None else round(float(x), n)  # noqa: E731
        return {'label': self.label_index, 'kitti_type': self.kitti_type, 'detection': self.detection_index,
                'class': self.class_name, 'true_distance': r(self.true_distance), 'distance': r(self.distance),
                'error': r(self.error), 'relative_error': r(self.relative_error, 4),
                'surface_distance': r(self.surface_distance),
                'surface_error': r(None if self.surface_distance is None
                                   else self.surface_distance - self.true_distance),
                'center_source': self.center_source}


def distance_errors(result, detections: Sequence[LabeledBox], labels: Sequence[KittiObject],
                    calib: KittiCalibration, moderate_only: bool = True) -> List[MatchedError]:
    """One entry per counted label a camera detection matches (``result``: the fusion of exactly
    those detections, in that order); ``moderate_only=False`` counts labels of any difficulty."""
    recall = kitti_camera_recall(detections, labels, moderate_only=moderate_only)
    by_detection = {o.detection_index: o for o in result.objects}
    index_of = {id(o): i for i, o in enumerate(labels)}
    out = []
    for obj, det in zip(recall.objects, recall.matched_by):
        if det < 0:
            continue
        fused = by_detection.get(det)
        out.append(MatchedError(index_of[id(obj)], obj.type, det, detections[det].class_id,
                                float(np.linalg.norm(label_center_cam(obj, calib))),
                                None if fused is None else float(fused.distance),
                                None if fused is None else float(fused.surface_distance),
                                '' if fused is None else fused.center_source))
    return out


def summarize(errors: Sequence[MatchedError]) -> Dict[str, object]:
    """Median / max absolute error, worst relative error, and how many matched objects lack a distance."""
    fused = [e for e in errors if e.distance is not None]
    abs_err = np.array([abs(e.error) for e in fused])
    rel = np.array([e.relative_error for e in fused])
    surf = np.array([abs(e.surface_distance - e.true_distance) for e in fused])
    return {'matched': len(errors), 'with_distance': len(fused),
            'median_abs_error': float(np.median(abs_err)) if len(fused) else None,
            'max_abs_error': float(abs_err.max()) if len(fused) else None,
            'max_relative_error': float(rel.max()) if len(fused) else None,
            'median_abs_surface_error': float(np.median(surf)) if len(fused) else None}
