"""Figures and pictures for docs/lidar.md: the lidar cores on the real KITTI frames and leg bags, the
simulated street (16 and 64 rings), and what each tuned parameter changes (each change undone alone).

    python scripts/lidar_report.py [--out docs] [--no-sim]

Writes <out>/lidar_kitti_000134_bev.png, lidar_kitti_000001_bev.png, lidar_sim_hdl64_bev.png and
prints one JSON document with every figure quoted in docs/lidar.md.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiat_perception.assets import shared_data  # noqa: E402
from aiat_perception.kitti import read_velodyne  # noqa: E402
from aiat_perception.lidar.bev import render_bev  # noqa: E402
from aiat_perception.lidar.detector import PARAMETERS, PointCloudDetector  # noqa: E402
from aiat_perception.lidar.evaluate import OBJECT_CLASSES, score_kitti_frame, score_leg_bag  # noqa: E402
from aiat_perception.lidar.params import read_yaml  # noqa: E402
from aiat_perception.lidar.scan import SCAN_PARAMETERS, ScanDetector  # noqa: E402
from aiat_perception.lidar.types import DetectionResult  # noqa: E402
from aiat_perception.metrics.matching_3d import Evaluation3D  # noqa: E402

LEG_BAGS = ('leg_tracker_positive_1_extracted.bag', 'leg_tracker_positive_2_extracted.bag')
# (what, parameter overrides that undo one tuning step)
LIDAR_ABLATIONS = [
    ('as configured', {}),
    ('class score as first set (min score 0.3, points scale 15)', {'class_min_score': 0.3, 'class_points_scale': 15.0}),
    ('no top-beam rule', {'top_beam_tolerance_deg': 0.0}),
    ('no car completion', {'car_complete': False}),
    ('cluster tolerance 0.5 m', {'cluster_tolerance': 0.5}),
    ('3D clustering (use_height)', {'cluster_use_height': True}),
    ('RANSAC ground plane', {'ground_method': 'ransac'}),
]
SCAN_ABLATIONS = [
    ('as configured', {}),
    ('breakpoint sigma 0.03 m', {'breakpoint_sigma': 0.03}),
    ('no missing-beam split', {'max_missing_beams': 100000}),
    ('no two-leg split', {'split_two_legs': False}),
    ('legs must bulge (min bulge 0)', {'leg_min_bulge': 0.0}),
    ('min points 3', {'min_points': 3}),
    ('no background model', {'background_scans': 0}),
    ('circle-centre leg position', {'leg_position': 'circle'}),
]


def classified_only(detector):
    def run(points):
        result = detector(points)
        return DetectionResult([d for d in result.detections if d.class_name in OBJECT_CLASSES], result.stage_ms)
    return run


def kitti(out: Path):
    root = shared_data('kitti_object', 'training')
    base = read_yaml(ROOT / 'config' / 'lidar_detector.yaml', 'lidar_detector', PARAMETERS)
    figures = {}
    for frame in ('000134', '000001'):
        det = PointCloudDetector(base)
        score = score_kitti_frame(root, frame, det)
        strict = score_kitti_frame(root, frame, classified_only(det))
        bands = Evaluation3D('distance', 1.0)
        score_kitti_frame(root, frame, det, evaluation=bands)
        s = bands.summary()
        figures[frame] = {
            'qualifying': score.qualifying, 'found_any_output': score.found, 'recall_any_output': score.recall,
            'found_classified': strict.found, 'recall_classified': strict.recall,
            'false_classified_in_frustum': score.false_classified,
            'labelled': len(score.ground_truth), 'detections': len(score.detections),
            'confusion': bands.confusion_table(), 'per_class_band': s['per_class'], 'agnostic_band': s['agnostic'],
            'mean_heading_error_deg': s['mean_heading_error_deg'],
            'points_in_labelled_boxes': score.gt_points}
        points = read_velodyne(root / 'velodyne' / f'{frame}.bin')
        extent = (-5.0, 50.0, -30.0, 30.0) if frame == '000134' else (-40.0, 75.0, -45.0, 45.0)
        img = render_bev(points, score.detections, score.ground_truth, extent, 10.0 if frame == '000134' else 6.0,
                         f'KITTI {frame}: {len(score.detections)} detections, white = labels',
                         score.not_counted)
        cv2.imwrite(str(out / f'lidar_kitti_{frame}_bev.png'), img)
    ablations = []
    for what, change in LIDAR_ABLATIONS:
        det = PointCloudDetector(dict(base, **change))
        row = {'change': what}
        for frame in ('000134', '000001'):
            score = score_kitti_frame(root, frame, det)
            strict = score_kitti_frame(root, frame, classified_only(det))
            row[frame] = {'found_any': f'{score.found}/{score.qualifying}',
                          'found_classified': f'{strict.found}/{strict.qualifying}',
                          'false': score.false_classified}
        ablations.append(row)
    figures['ablations'] = ablations
    return figures


def legs():
    base = read_yaml(ROOT / 'config' / 'scan_detector.yaml', 'scan_detector', SCAN_PARAMETERS)
    out = {}
    for what, change in SCAN_ABLATIONS:
        row = {}
        for bag in LEG_BAGS:
            row[bag] = score_leg_bag(shared_data('laser_scans', bag), ScanDetector(dict(base, **change))).summary()
        out[what] = row
    return out


def sim(out: Path):
    from tests.unit.test_sim_lidar_detection import SENSORS, run_street
    figures = {}
    for rings in SENSORS:
        run = run_street(rings)
        figures[f'{rings}_rings'] = {
            'points': int(len(run.cloud.points)), 'visible_objects': len(run.gts),
            'car_recall_iou_0.5': run.cars.summary()['per_class']['car/all'],
            'pedestrian_recall_iou_0.3': run.peds.summary()['per_class']['pedestrian/all'],
            'car_heading_error_deg': run.cars.summary()['mean_heading_error_deg'],
            'confusion': run.confusion.confusion_table()}
        if rings == 64:
            img = render_bev(run.cloud.points, run.result.detections, run.truth, (-30.0, 32.0, -20.0, 20.0), 12.0,
                             f'simulated street, 64 rings: {len(run.result.detections)} detections, white = truth')
            cv2.imwrite(str(out / 'lidar_sim_hdl64_bev.png'), img)
    return figures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', default=str(ROOT / 'docs'))
    parser.add_argument('--no-sim', action='store_true')
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    doc = {'kitti': kitti(out), 'leg_bags': legs()}
    if not args.no_sim:
        doc['sim'] = sim(out)
    print(json.dumps(doc, indent=1, default=float))
    return 0


if __name__ == '__main__':
    sys.exit(main())
