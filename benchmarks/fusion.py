"""Camera-lidar fusion per frame on the full 120k-point KITTI scan 000001, with 5, 20 and 50 camera
detections.

    python benchmarks/fusion.py [--iterations 200] [--out docs/benchmarks/fusion.json]

The boxes are synthetic (seeded, 20-250 px wide, anywhere in the lower three quarters of the
image, classes person / car / bicycle), on the real scan, calib and image size; the lidar
detections are the lidar detector's on that scan (computed once, not timed), so association runs
as in the node. Prints JSON: per case, median and p99 (ms, wall clock, and this process's CPU time)
of fuse() and its stages, and a same-run floor interleaved with it: the bare projection of every
point of the scan into the image (``CameraModel.project_lidar``), which fusion cannot beat.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.interleaved import interleaved, pct  # noqa: E402
from benchmarks.json_out import emit_json, machine  # noqa: E402

from aiat_perception.assets import shared_data  # noqa: E402
from aiat_perception.fusion import CameraModel, FusionConfig, fuse, homogeneous  # noqa: E402
from aiat_perception.kitti import KittiCalibration, read_velodyne  # noqa: E402
from aiat_perception.lidar.detector import PointCloudDetector  # noqa: E402
from aiat_perception.lidar.params import read_yaml  # noqa: E402
from aiat_perception.lidar.detector import PARAMETERS  # noqa: E402
from aiat_perception.metrics.kitti_rules import png_size  # noqa: E402

CLASSES = ('person', 'car', 'bicycle')


def synthetic_boxes(n, width, height, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.uniform(20, 250, n)
    h = w * rng.uniform(0.6, 2.5, n)
    x0 = rng.uniform(0, width - w)
    y0 = rng.uniform(height * 0.25, np.maximum(height * 0.25 + 1, height - h))
    boxes = np.stack([x0, y0, x0 + w, np.minimum(y0 + h, height)], axis=1)
    return boxes, [CLASSES[i % len(CLASSES)] for i in range(n)], rng.uniform(0.3, 0.95, n)


def run_case(n, points, cam_from_lidar, camera, lidar, iterations, warmup=10):
    boxes, names, scores = synthetic_boxes(n, camera.width, camera.height, seed=n)
    config = FusionConfig()

    def call():
        return fuse(boxes, names, scores, points, cam_from_lidar, camera, config, lidar)

    def floor():
        return camera.project_lidar(points, cam_from_lidar)

    t = interleaved(call, floor, iterations, warmup)
    totals, floors, cpu, floor_cpu, stages, result = (t['totals'], t['floors'], t['cpu'], t['floor_cpu'],
                                                      t['stages'], t['result'])
    return {'case': f'{n} detections', 'detections': n, 'iterations': iterations, 'total': pct(totals),
            'stages': {k: pct(v) for k, v in stages.items()}, 'floor_project_all_points': pct(floors),
            'total_cpu': pct(cpu), 'floor_cpu': pct(floor_cpu),
            'total_over_floor_median': round(float(np.median(totals) / max(np.median(floors), 1e-9)), 2),
            'fused_objects': len(result.objects), 'unsupported': len(result.unsupported),
            'points_in_image': result.points_in_image}


def kitti_000001():
    """The full KITTI scan 000001: points, its camera model, cam_from_lidar and the lidar detector's
    detections on it (with config/lidar_detector.yaml)."""
    root = shared_data('kitti_object', 'training')
    calib = KittiCalibration.read(root / 'calib' / '000001.txt')
    points = read_velodyne(root / 'velodyne' / '000001.bin')
    width, height = png_size(root / 'image_2' / '000001.png')
    camera = CameraModel.from_kitti(calib, width, height)
    config_file = ROOT / 'config' / 'lidar_detector.yaml'
    params = read_yaml(config_file, 'lidar_detector', PARAMETERS) if config_file.is_file() else None
    return points, camera, homogeneous(calib.Tr_velo_to_cam), PointCloudDetector(params)(points).detections


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--iterations', type=int, default=200)
    parser.add_argument('--detections', type=int, nargs='+', default=[5, 20, 50])
    parser.add_argument('--out', type=Path, help='also write the JSON here')
    args = parser.parse_args(argv)
    points, camera, cam_from_lidar, lidar = kitti_000001()
    cases = [run_case(n, points, cam_from_lidar, camera, lidar, args.iterations) for n in args.detections]
    emit_json({'benchmark': 'fusion', 'frame': 'KITTI 000001', 'points': int(len(points)),
               'image': [camera.width, camera.height], 'lidar_detections': len(lidar),
               'machine': machine(),
               'cases': cases}, args.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
