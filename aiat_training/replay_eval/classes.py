"""Which ground-truth class a detector's class is scored against.

Camera: evaluation classes are the detector's names (COCO: person, car, bicycle, truck, ...);
ground-truth names are mapped onto them (KITTI: Car -> car, Pedestrian/Person_sitting -> person,
Cyclist -> bicycle, Truck -> truck). Ground truth of classes that are not scored (KITTI Van, Tram,
Misc, DontCare) becomes an ignore region: a detection lying mostly inside one is neither true nor
false (pycocotools' crowd rule). Note KITTI's Cyclist box holds rider and bicycle; a COCO model
reports them as two boxes, so KITTI cyclist figures from a COCO model are indicative only.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

CAMERA_CLASSES = ('person', 'car', 'bicycle', 'truck')
GT_ALIASES: Dict[str, Optional[str]] = {
    'Car': 'car', 'Pedestrian': 'person', 'Person_sitting': 'person', 'Cyclist': 'bicycle', 'Truck': 'truck',
    'Van': None, 'Tram': None, 'Misc': None, 'DontCare': None,
    'pedestrian': 'person', 'cyclist': 'bicycle',
}
LIDAR_CLASSES = ('car', 'pedestrian', 'cyclist')
# BEV IoU thresholds of the KITTI benchmark: 0.7 for cars, 0.5 for pedestrians and cyclists
BEV_IOU = {'car': 0.7, 'pedestrian': 0.5, 'cyclist': 0.5}


def camera_gt_class(name: str, classes: Sequence[str]) -> Optional[str]:
    """The scored class of a ground-truth name, or None (an ignore region)."""
    if name in classes:
        return name
    mapped = GT_ALIASES.get(name, name.lower())
    return mapped if mapped in classes else None
