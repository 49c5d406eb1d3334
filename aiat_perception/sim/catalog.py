"""What the simulator can place: mesh assets (pybullet_data or built from primitives), real photo
crops for photo-textured actors, and the class tables (COCO-style names, KITTI classes, COCO ids)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

# Our class names -> KITTI object classes (the dataset writer's label_2 "type" column).
KITTI_CLASS: Dict[str, str] = {
    'car': 'Car', 'person': 'Pedestrian', 'bicycle': 'Cyclist', 'motorcycle': 'Cyclist',
    'truck': 'Misc', 'bus': 'Misc', 'traffic_cone': 'Misc', 'robot': 'Misc', 'obstacle': 'Misc',
}

# COCO category ids where the class exists in COCO (so detections of a COCO model line up);
# simulator-only classes get ids from 100 up.
COCO_ID: Dict[str, int] = {
    'person': 1, 'bicycle': 2, 'car': 3, 'motorcycle': 4, 'bus': 6, 'truck': 8,
    'traffic_cone': 100, 'robot': 101, 'obstacle': 102,
}


@dataclass(frozen=True)
class MeshAsset:
    class_name: str
    urdf: Optional[str]          # path inside pybullet_data, or None for a procedural body
    scale: float = 1.0           # default globalScaling (real-world size)
    color: Optional[Tuple[float, float, float, float]] = None  # default tint (None keeps the URDF's)
    reflectivity: float = 0.5    # lidar intensity factor


ASSETS: Dict[str, MeshAsset] = {
    # pybullet's racecar is a 1:10 RC car (0.46 m); scaled 8x it has the size of a small car.
    'racecar': MeshAsset('car', 'racecar/racecar.urdf', 8.0, None, 0.8),
    'rc_car': MeshAsset('car', 'racecar/racecar.urdf', 1.0, None, 0.8),
    'sedan': MeshAsset('car', None, 1.0, (0.55, 0.1, 0.1, 1.0), 0.8),
    'husky': MeshAsset('robot', 'husky/husky.urdf', 1.0, None, 0.4),
    'r2d2': MeshAsset('robot', 'r2d2.urdf', 1.0, None, 0.6),
    'bicycle': MeshAsset('bicycle', 'bicycle/bike.urdf', 0.6, None, 0.5),
    'cube': MeshAsset('obstacle', 'cube.urdf', 1.0, None, 0.5),
    # Built from primitives in sim/bodies.py (pybullet_data's humanoid.urdf is a y-up DeepMimic rig
    # whose zero pose is not a standing person).
    'pedestrian': MeshAsset('person', None, 1.0, (0.2, 0.25, 0.45, 1.0), 0.3),
    'traffic_cone': MeshAsset('traffic_cone', None, 1.0, (1.0, 0.35, 0.0, 1.0), 0.9),
}


@dataclass(frozen=True)
class PhotoCrop:
    class_name: str
    source: str                  # darknet image name, or 'vtest:<frame index>' for vtest.avi
    box: Tuple[int, int, int, int]  # x0, y0, x1, y1 in source pixels (object tight, small margin)
    height: float                # default real-world height of the quad, metres


# Crop rectangles picked by eye on the original photos (boxes hug the object).
PHOTO_CROPS: Dict[str, PhotoCrop] = {
    'person_blue_jacket': PhotoCrop('person', 'person.jpg', (188, 96, 278, 378), 1.75),
    'bicycle_red': PhotoCrop('bicycle', 'dog.jpg', (122, 136, 572, 424), 1.0),
    'truck_pickup': PhotoCrop('truck', 'dog.jpg', (462, 70, 718, 174), 1.8),
    'person_beach_blue': PhotoCrop('person', 'kite.jpg', (110, 608, 170, 762), 1.7),
    'person_beach_navy': PhotoCrop('person', 'kite.jpg', (213, 695, 274, 854), 1.7),
    'person_vtest_red': PhotoCrop('person', 'vtest:600', (451, 298, 506, 420), 1.75),
    'person_vtest_black': PhotoCrop('person', 'vtest:600', (638, 301, 674, 414), 1.75),
    'person_vtest_walk': PhotoCrop('person', 'vtest:200', (612, 261, 655, 372), 1.75),
    'person_vtest_coat': PhotoCrop('person', 'vtest:200', (701, 250, 747, 357), 1.75),
    'van_vtest': PhotoCrop('car', 'vtest:600', (648, 40, 727, 100), 1.9),
}
