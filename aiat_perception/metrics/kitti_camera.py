"""Recall of a 2D camera detector on KITTI object labels (ROS-free).

The rule: KITTI ``Pedestrian`` is found by a ``person``; ``Cyclist`` by a ``person`` or a
``bicycle`` (KITTI's cyclist box covers rider and bike); ``Car`` by a ``car`` (a ``truck``
accepted). Only objects KITTI's "moderate" difficulty keeps count: box height >= 25 px,
occlusion <= 1, truncation <= 0.3. Matching is :func:`greedy_match` on the IoU matrix, with pairs
the rule does not allow taken out, so a detection finds at most one object and vice versa.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np

from aiat_perception.kitti import KittiObject
from aiat_perception.metrics.matching import LabeledBox, greedy_match, iou_matrix

# KITTI type -> detector classes that find it
KITTI_CAMERA_RULE: Dict[str, Tuple[str, ...]] = {
    'Pedestrian': ('person',),
    'Cyclist': ('person', 'bicycle'),
    'Car': ('car', 'truck'),
}
MODERATE_MIN_HEIGHT = 25.0
MODERATE_MAX_OCCLUSION = 1
MODERATE_MAX_TRUNCATION = 0.3


def is_moderate(obj: KittiObject) -> bool:
    """Whether KITTI's "moderate" difficulty keeps this object."""
    return (obj.bbox[3] - obj.bbox[1] >= MODERATE_MIN_HEIGHT and obj.occluded <= MODERATE_MAX_OCCLUSION
            and obj.truncated <= MODERATE_MAX_TRUNCATION)


def counted_objects(labels: Sequence[KittiObject]) -> List[KittiObject]:
    """The labels the recall counts: a class the rule covers, moderate difficulty."""
    return [o for o in labels if o.type in KITTI_CAMERA_RULE and is_moderate(o)]


@dataclass
class CameraRecall:
    objects: List[KittiObject]                # the counted labels
    found: List[bool]                         # per counted label
    matched_by: List[int]                     # per counted label: detection index, -1 = none

    @property
    def tp(self) -> int:
        return int(sum(self.found))

    @property
    def total(self) -> int:
        return len(self.objects)

    @property
    def recall(self) -> float:
        return self.tp / self.total if self.total else 1.0

    def by_type(self) -> Dict[str, Tuple[int, int]]:
        """KITTI type -> (found, counted)."""
        out: Dict[str, Tuple[int, int]] = {}
        for obj, hit in zip(self.objects, self.found):
            f, n = out.get(obj.type, (0, 0))
            out[obj.type] = (f + int(hit), n + 1)
        return out


def kitti_camera_recall(detections: Sequence[LabeledBox], labels: Sequence[KittiObject],
                        iou_threshold: float = 0.5, moderate_only: bool = True) -> CameraRecall:
    """Which counted KITTI objects the detections find at IoU >= ``iou_threshold``
    (``moderate_only=False``: every label of a class the rule covers, whatever its difficulty)."""
    objects = counted_objects(labels) if moderate_only else [o for o in labels if o.type in KITTI_CAMERA_RULE]
    idx = [i for i, d in enumerate(detections)
           if any(d.class_id in KITTI_CAMERA_RULE[o.type] for o in objects)]
    matched_by = [-1] * len(objects)
    if objects and idx:
        dets = [detections[i] for i in idx]
        aff = iou_matrix(np.array([d.box for d in dets], np.float64),
                         np.array([o.bbox for o in objects], np.float64))
        allowed = np.array([[d.class_id in KITTI_CAMERA_RULE[o.type] for o in objects] for d in dets], bool)
        aff[~allowed] = np.nan                  # NaN never matches
        m = greedy_match(aff, np.array([d.score for d in dets], np.float64), iou_threshold)
        for d, g in enumerate(m.gt_index.tolist()):
            if g >= 0:
                matched_by[g] = idx[d]
    return CameraRecall(objects, [i >= 0 for i in matched_by], matched_by)
