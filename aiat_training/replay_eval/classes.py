"""Which ground-truth class a detector's class is scored against.

Camera: evaluation classes are the detector's names (COCO: person, car, bicycle, truck, ...);
ground-truth names are mapped onto them by :func:`aiat_perception.class_names.canonical` (KITTI:
Car -> car, Pedestrian/Person_sitting -> person, Cyclist -> bicycle, Truck -> truck). Ground truth of classes that are not scored (KITTI Van, Tram,
Misc, DontCare) becomes an ignore region: a detection lying mostly inside one is neither true nor
false (pycocotools' crowd rule). Note KITTI's Cyclist box holds rider and bicycle; a COCO model
reports them as two boxes, so KITTI cyclist figures from a COCO model are indicative only.
"""
from __future__ import annotations

from typing import Optional, Sequence

from aiat_perception.class_names import canonical

CAMERA_CLASSES = ('person', 'car', 'bicycle', 'truck')
LIDAR_CLASSES = ('car', 'pedestrian', 'cyclist')
# BEV IoU thresholds of the KITTI benchmark: 0.7 for cars, 0.5 for pedestrians and cyclists
BEV_IOU = {'car': 0.7, 'pedestrian': 0.5, 'cyclist': 0.5}


def camera_gt_class(name: str, classes: Sequence[str]) -> Optional[str]:
    """The scored class of a ground-truth name, or None (an ignore region)."""
    if name in classes:
        return name
    mapped = canonical(name)             # the one alias mechanism: Pedestrian -> person, ...
    return mapped if mapped in classes else None
