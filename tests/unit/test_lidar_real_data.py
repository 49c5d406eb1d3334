"""The lidar cores on real, labelled data (../shared/data; missing data fails, naming where it looked):
KITTI object frames 000134 (camera-cropped, 15 objects) and 000001 (full 360 deg HDL-64E scan), and
the leg-labelled Hokuyo bags. Figures are the issue's floors; the detectors run with the parameter
files the nodes read (config/lidar_detector.yaml, config/scan_detector.yaml)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from aiat_perception.assets import shared_data
from aiat_perception.lidar.detector import PARAMETERS, PointCloudDetector
from aiat_perception.lidar.evaluate import OBJECT_CLASSES, score_kitti_frame, score_leg_bag
from aiat_perception.lidar.params import read_yaml
from aiat_perception.lidar.scan import SCAN_PARAMETERS, ScanDetector
from aiat_perception.lidar.types import DetectionResult

ROOT = Path(__file__).resolve().parents[2]


def kitti_detector():
    return PointCloudDetector(read_yaml(ROOT / 'config' / 'lidar_detector.yaml', 'lidar_detector', PARAMETERS))


def classified_only(detector):
    def run(points):
        result = detector(points)
        return DetectionResult([d for d in result.detections if d.class_name in OBJECT_CLASSES], result.stage_ms)
    return run


def report(score):
    print(f'\nKITTI {score.frame}: {score.qualifying} labelled objects with >= 20 points, found {score.found} '
          f'(recall {score.recall:.2f}) at BEV centre distance <= 1 m, class-agnostic; classified detections '
          f'matching no label inside the frustum (DontCare excluded): {score.false_classified}')
    print(score.evaluation.confusion_markdown())
    print(json.dumps({k: v for k, v in score.evaluation.summary()['agnostic'].items()}, default=float))


def test_kitti_000134_recall_and_false_detections():
    root = shared_data('kitti_object', 'training')
    detector = kitti_detector()
    score = score_kitti_frame(root, '000134', detector)
    report(score)
    assert score.qualifying >= 12
    assert score.recall >= 0.7
    assert score.false_classified <= 5
    strict = score_kitti_frame(root, '000134', classified_only(detector))
    print(f'counting only car/pedestrian/cyclist outputs: found {strict.found}/{strict.qualifying} '
          f'(recall {strict.recall:.2f})')


def test_kitti_000001_full_scan_figures():
    score = score_kitti_frame(shared_data('kitti_object', 'training'), '000001', kitti_detector())
    report(score)
    assert score.qualifying == 1                       # the truck: no floor for one object
    assert len(score.detections) > 20                  # a full 360 deg street scan is not empty


@pytest.mark.parametrize('bag', ['leg_tracker_positive_1_extracted.bag', 'leg_tracker_positive_2_extracted.bag'])
def test_leg_bags_legs_and_persons(bag):
    params = read_yaml(ROOT / 'config' / 'scan_detector.yaml', 'scan_detector', SCAN_PARAMETERS)
    score = score_leg_bag(shared_data('laser_scans', bag), ScanDetector(params))
    print(f'\n{bag}: {json.dumps(score.summary())}')
    assert score.scans > 50 and score.labelled_legs > 100
    assert score.leg_recall >= 0.8
    assert score.unmatched_per_scan <= 2.0
    assert score.person_found >= 0.8
