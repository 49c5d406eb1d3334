"""The 80 COCO detection classes in the order of the pretrained NanoDet outputs (index = class id)."""
from __future__ import annotations

from typing import Dict, Optional

COCO_CLASSES = (
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat',
    'traffic light', 'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird', 'cat', 'dog',
    'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella',
    'handbag', 'tie', 'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball', 'kite',
    'baseball bat', 'baseball glove', 'skateboard', 'surfboard', 'tennis racket', 'bottle',
    'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple', 'sandwich', 'orange',
    'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch', 'potted plant',
    'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote', 'keyboard', 'cell phone',
    'microwave', 'oven', 'toaster', 'sink', 'refrigerator', 'book', 'clock', 'vase', 'scissors',
    'teddy bear', 'hair drier', 'toothbrush',
)

# Common names in driving data sets for a COCO class.
COCO_ALIASES: Dict[str, str] = {
    'pedestrian': 'person', 'people': 'person', 'rider': 'person',
    'bike': 'bicycle', 'cyclist': 'bicycle',
    'motorbike': 'motorcycle', 'motor': 'motorcycle',
    'aeroplane': 'airplane', 'sofa': 'couch', 'tvmonitor': 'tv', 'diningtable': 'dining table',
    'pottedplant': 'potted plant', 'trafficlight': 'traffic light', 'stopsign': 'stop sign',
}


def coco_index(name: str) -> Optional[int]:
    """COCO class id for a class name (case, '_' and '-' ignored; common aliases); None if none."""
    key = ' '.join(name.strip().lower().replace('_', ' ').replace('-', ' ').split())
    key = COCO_ALIASES.get(key, COCO_ALIASES.get(key.replace(' ', ''), key))
    try:
        return COCO_CLASSES.index(key)
    except ValueError:
        return None
