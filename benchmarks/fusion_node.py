"""What the fusion node adds per frame around the core, in one process (no transport): the full
120k-point KITTI scan 000001 as a PointCloud2 message and 5 / 20 / 50 camera detections as a
Detection2DArray in; the node's own steps out: PointCloud2 -> x y z (``cloud_xyz``),
Detection2DArray -> boxes, fuse(), fused boxes -> Detection3DArray (+ MarkerArray), and the nearest-stamp
pairing of a 30 Hz camera with a 10 Hz lidar.

    .venv/bin/python benchmarks/fusion_node.py [--iterations 100] [--out docs/benchmarks/fusion_node.json]

Prints JSON: per case, median and p99 (ms, wall clock) of the node's whole per-frame work and of each
step, and the same-run floor interleaved with it: the bare fuse() on arrays (the core's own figure,
benchmarks/fusion.py), so ``node_over_core_median`` is what the ROS shell costs. Needs the ROS 2
wheels (message classes), run with .venv, .venv310 or .venv312.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.fusion import kitti_000001, pct, synthetic_boxes  # noqa: E402
from benchmarks.json_out import emit_json, machine  # noqa: E402

from aiat_perception.fusion import FusionConfig, fuse  # noqa: E402
from aiat_perception.fusion_messages import (camera_detections_from_msg, fused_boxes,  # noqa: E402
                                             fused_detections_msg, fused_markers)
from aiat_perception.msg_conversions import array_to_pointcloud2, cloud_xyz  # noqa: E402
from aiat_perception.stamp_pairing import NearestStampPairer  # noqa: E402
from aiat_perception.vision_conversions import detections_to_msg  # noqa: E402

STEPS = ('cloud_xyz', 'detections_from_msg', 'fuse', 'fused_msg', 'markers')


def cloud_message(points: np.ndarray):
    from std_msgs.msg import Header
    cloud = np.zeros(len(points), dtype=[('x', '<f4'), ('y', '<f4'), ('z', '<f4'), ('intensity', '<f4')])
    for i, name in enumerate(('x', 'y', 'z', 'intensity')):
        cloud[name] = points[:, i]
    return array_to_pointcloud2(cloud, Header(frame_id='velodyne'))


def run_case(n, cloud_msg, points, cam_from_lidar, camera, lidar, iterations, warmup=5):
    from std_msgs.msg import Header
    boxes, names, scores = synthetic_boxes(n, camera.width, camera.height, seed=n)
    det_msg = detections_to_msg(boxes, scores, names, Header(frame_id='camera'))
    config = FusionConfig()
    header = Header(frame_id='camera')

    def node_frame(times):
        t = time.perf_counter()
        xyz, _ = cloud_xyz(cloud_msg, nan='drop')
        t, times['cloud_xyz'] = time.perf_counter(), (time.perf_counter() - t) * 1e3
        b, c, s, ids, _ = camera_detections_from_msg(det_msg)
        t, times['detections_from_msg'] = time.perf_counter(), (time.perf_counter() - t) * 1e3
        result = fuse(b, c, s, xyz, cam_from_lidar, camera, config, lidar)
        t, times['fuse'] = time.perf_counter(), (time.perf_counter() - t) * 1e3
        out = fused_boxes(result.objects, ids, None, lidar, cam_from_lidar)
        fused_detections_msg(out, header)
        t, times['fused_msg'] = time.perf_counter(), (time.perf_counter() - t) * 1e3
        fused_markers(out, header)
        times['markers'] = (time.perf_counter() - t) * 1e3
        return result

    def floor():
        return fuse(boxes, names, scores, points, cam_from_lidar, camera, config, lidar)

    for _ in range(warmup):
        node_frame({})
        floor()
    totals, floors, steps = [], [], {k: [] for k in STEPS}
    result = None
    for _ in range(iterations):
        t0 = time.perf_counter()
        floor()
        floors.append((time.perf_counter() - t0) * 1e3)
        times = {}
        t0 = time.perf_counter()
        result = node_frame(times)
        totals.append((time.perf_counter() - t0) * 1e3)
        for k in STEPS:
            steps[k].append(times[k])
    return {'case': f'{n} detections', 'detections': n, 'iterations': iterations,
            'node_frame': pct(totals), 'steps': {k: pct(v) for k, v in steps.items()},
            'floor_bare_fuse': pct(floors),
            'node_over_core_median': round(float(np.median(totals) / max(np.median(floors), 1e-9)), 2),
            'fused_objects': len(result.objects)}


def pairing_case(seconds: float = 60.0) -> dict:
    """A 30 Hz camera and a 10 Hz lidar (stamps 7 ms apart), ``seconds`` of them: time per add()."""
    pairer = NearestStampPairer('detections', ['points'], 50_000_000, 1_000_000_000)
    calls = []
    paired = 0
    for k in range(int(seconds * 30)):
        stamp = k * 33_333_333
        if k % 3 == 0:
            t0 = time.perf_counter()
            paired += len(pairer.add('points', stamp + 7_000_000, k))
            calls.append((time.perf_counter() - t0) * 1e3)
        t0 = time.perf_counter()
        paired += len(pairer.add('detections', stamp, k))
        calls.append((time.perf_counter() - t0) * 1e3)
    return {'case': 'pairing 30 Hz camera with 10 Hz lidar', 'add_calls': len(calls), 'paired': paired,
            'unpaired': pairer.unpaired, 'add': pct(calls)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--iterations', type=int, default=100)
    parser.add_argument('--detections', type=int, nargs='+', default=[5, 20, 50])
    parser.add_argument('--out', type=Path, help='also write the JSON here')
    args = parser.parse_args(argv)
    points, camera, cam_from_lidar, lidar = kitti_000001()
    cloud_msg = cloud_message(points)
    cases = [run_case(n, cloud_msg, points, cam_from_lidar, camera, lidar, args.iterations) for n in args.detections]
    emit_json({'benchmark': 'fusion_node', 'frame': 'KITTI 000001', 'points': int(len(points)),
               'lidar_detections': len(lidar),
               'machine': machine(),
               'cases': cases, 'pairing': pairing_case()}, args.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
