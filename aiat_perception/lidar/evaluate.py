"""Scoring the lidar detectors on labelled data: KITTI object frames (3D) and leg-labelled laser scans (2D)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from aiat_perception.kitti import KittiCalibration, read_label, read_velodyne
from aiat_perception.lidar.types import Detection3D
from aiat_perception.metrics import kitti_rules
from aiat_perception.metrics.matching_3d import Evaluation3D, Object3D, center_distance_matrix, greedy_match

OBJECT_CLASSES = ('car', 'pedestrian', 'cyclist')


def as_object(d: Detection3D) -> Object3D:
    return Object3D(d.class_name, d.center, d.size, d.yaw, d.score)


@dataclass
class KittiFrameScore:
    frame: str
    qualifying: int                 # labelled objects with >= min_points lidar points in their box
    found: int                      # of those, matched by any output box (any class) within the distance
    false_classified: int           # car/pedestrian/cyclist detections in the labelled region matching no label
    detections: List[Detection3D]
    ground_truth: List[Object3D]
    gt_points: List[int]
    evaluation: Evaluation3D
    not_counted: List[bool] = field(default_factory=list)   # per detection: outside the frustum or in DontCare

    @property
    def recall(self) -> float:
        return self.found / self.qualifying if self.qualifying else float('nan')


def score_kitti_frame(root, frame: str, detector, min_points: int = 20, max_distance: float = 1.0,
                      evaluation: Optional[Evaluation3D] = None) -> KittiFrameScore:
    """Run ``detector`` on ``<root>/velodyne/<frame>.bin`` and score it against label_2 (KITTI rules:
    detections outside the image_2 frustum or in DontCare areas are not counted as false)."""
    root = Path(root)
    points = read_velodyne(root / 'velodyne' / f'{frame}.bin')
    calib = KittiCalibration.read(root / 'calib' / f'{frame}.txt')
    labels = read_label(root / 'label_2' / f'{frame}.txt')
    image = root / 'image_2' / f'{frame}.png'
    size = kitti_rules.png_size(image) if image.is_file() else kitti_rules.KITTI_IMAGE_SIZE
    gts, dontcare = kitti_rules.ground_truth(calib, labels)
    gt_points = [kitti_rules.points_in_box(points, g) for g in gts]
    detections = detector(points).detections
    dets = [as_object(d) for d in detections]
    ignore = kitti_rules.not_counted(calib, dets, dontcare, size)
    classified = [i for i, d in enumerate(dets) if d.class_name in OBJECT_CLASSES]
    evaluation = evaluation if evaluation is not None else Evaluation3D('distance', max_distance)
    evaluation.add([dets[i] for i in classified], gts, [ignore[i] for i in classified])
    # class-agnostic: every output box (unknown ones too) may find a labelled object; false = a
    # classified box in the labelled region that matches no label
    qualifying = [j for j, n in enumerate(gt_points) if n >= min_points]
    pairs = greedy_match(-center_distance_matrix(np.array([d.center for d in dets]).reshape(-1, 3),
                                                 np.array([g.center for g in gts]).reshape(-1, 3)),
                         [d.score for d in dets], -max_distance) if dets and gts else []
    matched_gt = {g for _, g in pairs}
    matched_det = {d for d, _ in pairs}
    false = sum(1 for i in classified if i not in matched_det and not ignore[i])
    return KittiFrameScore(frame, len(qualifying), sum(1 for j in qualifying if j in matched_gt), false,
                           detections, gts, gt_points, evaluation, ignore)


@dataclass
class LegScore:
    scans: int = 0
    labelled_legs: int = 0
    legs_found: int = 0             # labelled legs with a leg detection within leg_distance (one-to-one)
    legs_with_person: int = 0       # labelled legs with a person output within person_distance
    leg_detections: int = 0
    person_detections: int = 0
    unmatched_legs: int = 0         # leg detections matching no labelled leg
    unmatched_persons: int = 0      # person outputs farther than person_distance from every labelled leg

    @property
    def leg_recall(self) -> float:
        return self.legs_found / self.labelled_legs if self.labelled_legs else float('nan')

    @property
    def person_found(self) -> float:
        return self.legs_with_person / self.labelled_legs if self.labelled_legs else float('nan')

    @property
    def unmatched_per_scan(self) -> float:
        return (self.unmatched_legs + self.unmatched_persons) / self.scans if self.scans else float('nan')

    def summary(self) -> Dict[str, float]:
        return {'scans': self.scans, 'labelled_legs': self.labelled_legs, 'leg_recall': round(self.leg_recall, 4),
                'person_found': round(self.person_found, 4), 'leg_detections': self.leg_detections,
                'person_detections': self.person_detections, 'unmatched_legs': self.unmatched_legs,
                'unmatched_persons': self.unmatched_persons,
                'unmatched_leg_person_per_scan': round(self.unmatched_per_scan, 4)}

    def add(self, detections: Sequence[Detection3D], legs_xy: np.ndarray, leg_distance: float = 0.25,
            person_distance: float = 0.4) -> None:
        legs_xy = np.asarray(legs_xy, dtype=np.float64).reshape(-1, 2)
        leg_dets = [d for d in detections if d.class_name == 'leg']
        persons = [d for d in detections if d.class_name == 'person']
        self.scans += 1
        self.labelled_legs += len(legs_xy)
        self.leg_detections += len(leg_dets)
        self.person_detections += len(persons)
        pairs = []
        if leg_dets and len(legs_xy):
            dist = center_distance_matrix(np.array([d.center[:2] for d in leg_dets]), legs_xy)
            pairs = greedy_match(-dist, [d.score for d in leg_dets], -leg_distance)
        self.legs_found += len(pairs)
        self.unmatched_legs += len(leg_dets) - len(pairs)
        if persons:
            pd = center_distance_matrix(np.array([d.center[:2] for d in persons]), legs_xy)
            if len(legs_xy):
                self.legs_with_person += int(np.count_nonzero((pd <= person_distance).any(axis=0)))
                self.unmatched_persons += int(np.count_nonzero(~(pd <= person_distance).any(axis=1)))
            else:
                self.unmatched_persons += len(persons)


def scan_arrays(msg):
    """(ranges, angles, range_min, range_max) of a LaserScan-like message (rclpy or rosbags); the
    angles are angle_min + i * angle_increment. Bad headers raise ValueError."""
    ranges = np.asarray(msg.ranges, dtype=np.float32).ravel()
    a0, inc = float(msg.angle_min), float(msg.angle_increment)
    if not (np.isfinite(a0) and np.isfinite(inc)) or len(ranges) > 100_000:
        raise ValueError(f'bad LaserScan: angle_min {a0}, angle_increment {inc}, {len(ranges)} ranges')
    return ranges, a0 + np.arange(len(ranges)) * inc, float(msg.range_min), float(msg.range_max)


def score_leg_bag(path, detector, label_topic: str = '/leg_cluster_positions', scan_topic: str = '/training_scan',
                  leg_distance: float = 0.25, person_distance: float = 0.4) -> LegScore:
    """Run the scan detector over a leg-labelled bag: each PoseArray label pairs with the next scan."""
    from aiat_perception.bag_reading import paired_messages
    score = LegScore()
    for label, scan in paired_messages(path, label_topic, scan_topic):
        result = detector(*scan_arrays(scan))
        legs = np.array([[p.position.x, p.position.y] for p in label.poses], dtype=np.float64).reshape(-1, 2)
        score.add(result.detections, legs, leg_distance, person_distance)
    return score
