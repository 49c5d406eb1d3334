"""The figures of docs/fusion.md: fused distances on the real KITTI frames, and camera-lidar
agreement under a rotated extrinsic.

    python scripts/fusion_kitti_report.py [--frames 000134 000001] [--png docs/fusion_kitti_000134.png]

Prints JSON with, per frame:
- ``detector``: the pretrained camera detector (keep_aspect) + the lidar detector + fusion; the
  error of every camera detection matched to a moderate label (the real-camera rule), with the
  centre taken from the lidar box (default), from the class depth only, and the visible surface;
- ``label_boxes``: the labels' own 2D boxes as camera detections (every labelled object, moderate
  or not: the fusion's error without the detector's), same three estimates;
- ``rotation_sweep`` (first frame): confirm rate, miss rate and mean IoU with the extrinsic
  rotated about each camera axis.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.json_out import emit_json  # noqa: E402

from aiat_perception.assets import shared_data  # noqa: E402
from aiat_perception.cli.lidar import _params  # noqa: E402
from aiat_perception.fusion import FusionConfig, fuse  # noqa: E402
from aiat_perception.fusion.kitti_eval import label_center_cam, summarize  # noqa: E402
from aiat_perception.fusion.kitti_frame import KittiFrame, run_frame  # noqa: E402
from aiat_perception.lidar.detector import PointCloudDetector  # noqa: E402

LABEL_TO_CLASS = {'Car': 'car', 'Van': 'car', 'Truck': 'truck', 'Pedestrian': 'person',
                  'Person_sitting': 'person', 'Cyclist': 'bicycle', 'Tram': 'train', 'Misc': 'misc'}


def rounded(d):
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in d.items()}


def detector_case(frame, camera, lidar):
    from aiat_perception.fusion.kitti_eval import distance_errors
    cases = {}
    for name, config in (('lidar_centre', FusionConfig()), ('class_depth_centre', FusionConfig(use_lidar_center=False))):
        out = run_frame(frame, camera, lidar, config)
        cases[name] = {'summary': rounded(summarize(out.errors)), 'errors': [e.to_dict() for e in out.errors]}
        every = distance_errors(out.result, out.labeled_boxes(), frame.labels, frame.calib, moderate_only=False)
        cases[name + '_any_difficulty'] = {'summary': rounded(summarize(every)), 'errors': [e.to_dict() for e in every]}
    cases['camera_detections'] = len(out.detections)
    return cases


def label_box_case(frame, lidar_detections):
    labels = [o for o in frame.labels if o.type != 'DontCare']
    boxes = np.array([o.bbox for o in labels], np.float64).reshape(-1, 4)
    names = [LABEL_TO_CLASS.get(o.type, o.type.lower()) for o in labels]
    rows = []
    results = {name: fuse(boxes, names, np.ones(len(labels)), frame.points, frame.cam_from_lidar, frame.camera,
                          config, lidar_detections)
               for name, config in (('lidar', FusionConfig()), ('class_depth', FusionConfig(use_lidar_center=False)))}
    for k, obj in enumerate(labels):
        true = float(np.linalg.norm(label_center_cam(obj, frame.calib)))
        row = {'type': obj.type, 'occluded': obj.occluded, 'truncated': obj.truncated,
               'box_height_px': round(obj.bbox[3] - obj.bbox[1], 1), 'true_distance': round(true, 3)}
        for name, r in results.items():
            fused = {o.detection_index: o for o in r.objects}.get(k)
            row[f'{name}_error'] = None if fused is None else round(fused.distance - true, 3)
            if fused is not None:
                row['center_source'] = fused.center_source if name == 'lidar' else row.get('center_source')
                row['surface_error'] = round(fused.surface_distance - true, 3)
                row['n_points'] = fused.n_points
        rows.append(row)
    return rows


def rotation_sweep(frame, camera, lidar_detections, angles=(0.0, 0.5, 1.0, 2.0, 3.0)):
    from scipy.spatial.transform import Rotation
    dets = camera.detect_one(frame.image)
    rows = []
    for axis, name in (('x', 'pitch (camera x)'), ('y', 'yaw (camera y)'), ('z', 'roll (camera z)')):
        for deg in angles:
            rot = np.eye(4)
            rot[:3, :3] = Rotation.from_euler(axis, deg, degrees=True).as_matrix()
            r = fuse(dets.boxes, dets.labels, dets.scores, frame.points, rot @ frame.cam_from_lidar, frame.camera,
                     FusionConfig(), lidar_detections)
            rows.append({'axis': name, 'degrees': deg,
                         'confirm_rate': round(r.confirmed / r.camera_count, 3) if r.camera_count else None,
                         'miss_rate': round(r.lidar_missed / r.lidar_in_view, 3) if r.lidar_in_view else None,
                         'mean_iou': round(float(np.mean(r.ious)), 3) if r.ious else None,
                         'confirmed': r.confirmed, 'camera_count': r.camera_count,
                         'lidar_missed': r.lidar_missed, 'lidar_in_view': r.lidar_in_view})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', nargs='+', default=['000134', '000001'])
    parser.add_argument('--png', type=Path, help='also draw the first frame here (as aiat-lidar fuse --png)')
    parser.add_argument('--out', type=Path, help='also write the JSON here')
    args = parser.parse_args(argv)
    from aiat_perception.cli.detect import ensure_default_bundle
    from aiat_perception.inference.detector import Detector
    camera = Detector(ensure_default_bundle(quiet=True), resize='keep_aspect')
    lidar = PointCloudDetector(_params('lidar', None, []))
    root = shared_data('kitti_object', 'training')
    report = {}
    for i, name in enumerate(args.frames):
        frame = KittiFrame.read(root / 'image_2' / f'{name}.png', root / 'velodyne' / f'{name}.bin',
                                root / 'calib' / f'{name}.txt', root / 'label_2' / f'{name}.txt')
        lidar_detections = lidar(frame.points).detections
        report[name] = {'detector': detector_case(frame, camera, lidar),
                        'label_boxes': label_box_case(frame, lidar_detections)}
        if i == 0:
            report[name]['rotation_sweep'] = rotation_sweep(frame, camera, lidar_detections)
            if args.png:
                from aiat_perception.cli.lidar import main as lidar_cli
                lidar_cli(['fuse', '--image', str(root / 'image_2' / f'{name}.png'),
                           '--cloud', str(root / 'velodyne' / f'{name}.bin'),
                           '--kitti-calib', str(root / 'calib' / f'{name}.txt'),
                           '--kitti-labels', str(root / 'label_2' / f'{name}.txt'), '--png', str(args.png)])
    emit_json(report, args.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
