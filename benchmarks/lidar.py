"""Lidar cores per stage: the full 120k-point KITTI scan 000001, a simulated 64-ring cloud and a
1081-beam LaserScan.

    python benchmarks/lidar.py [--iterations 200] [--out docs/benchmarks/lidar.json]

Prints JSON: per case, median and p99 of every stage and of the total (ms, wall clock; the total
also as this process's CPU time), and a same-run floor, a
bare numpy pass over the same input interleaved with the detector runs so both see the same machine
load: for clouds, voxel hashing of every point (floor(xyz / 0.3) -> one int64 key -> np.unique), for
the scan, polar -> Cartesian and the gaps between neighbouring beams. Parameters are the nodes'
files (config/lidar_detector.yaml, config/scan_detector.yaml; the simulated cloud with the
simulator's sensor height). The simulated cases need PyBullet; without it they are left out.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.interleaved import interleaved, pct  # noqa: E402

from aiat_perception.assets import shared_data  # noqa: E402
from aiat_perception.kitti import read_velodyne  # noqa: E402
from aiat_perception.lidar.detector import PARAMETERS, PointCloudDetector  # noqa: E402
from aiat_perception.lidar.params import read_yaml  # noqa: E402
from aiat_perception.lidar.scan import SCAN_PARAMETERS, ScanDetector  # noqa: E402


def cloud_floor(points):
    key = np.floor(points[:, :3] / 0.3).astype(np.int64)
    key -= key.min(axis=0)
    ext = key.max(axis=0) + 1
    np.unique((key[:, 0] * ext[1] + key[:, 1]) * ext[2] + key[:, 2])


def scan_floor(ranges, angles):
    ok = np.isfinite(ranges)
    x, y = ranges[ok] * np.cos(angles[ok]), ranges[ok] * np.sin(angles[ok])
    np.hypot(np.diff(x), np.diff(y))


def run_case(name, call, floor, iterations, warmup=10):
    t = interleaved(call, floor, iterations, warmup)
    totals, floors, cpu, floor_cpu, stages, result = (t['totals'], t['floors'], t['cpu'], t['floor_cpu'],
                                                      t['stages'], t['result'])
    return {'case': name, 'iterations': iterations, 'total': pct(totals),
            'stages': {k: pct(v) for k, v in stages.items()}, 'floor': pct(floors),
            # CPU time of this process: what the call costs without the waiting for a core that a
            # loaded machine adds to the wall time (the code is single-threaded)
            'total_cpu': pct(cpu), 'floor_cpu': pct(floor_cpu),
            'total_over_floor_median': round(float(np.median(totals) / max(np.median(floors), 1e-9)), 1),
            'counts': result.counts, 'detections': len(result.detections)}


def simulated(iterations):
    try:
        from aiat_perception.sim.scenario import parse_scenario
        from aiat_perception.sim.world import SimWorld
    except ImportError as exc:
        return [], f'simulated cases left out: {exc}'
    from tests.unit.test_sim_lidar_detection import street   # the test's street scene
    scenario = street({'model': 'hdl64'})
    scenario['ego']['lidar_2d'] = {'enabled': True, 'beams': 1081, 'pose': {'xyz': [1.0, 0.0, 0.5]}}
    with SimWorld(parse_scenario(scenario)) as world:
        t0 = time.perf_counter()
        cloud = world.scan_3d()
        render_s = time.perf_counter() - t0
        scan = world.scan_2d()
    params = read_yaml(ROOT / 'config' / 'lidar_detector.yaml', 'lidar_detector', PARAMETERS)
    params.update({'sensor_height': 1.9, 'vertical_resolution_deg': 0.43})
    det = PointCloudDetector(params)
    points = cloud.points
    cases = [dict(run_case('sim_hdl64_cloud', lambda: det(points), lambda: cloud_floor(points), iterations),
                  points=int(len(points)), render_s=round(render_s, 2))]
    scan_det = ScanDetector(read_yaml(ROOT / 'config' / 'scan_detector.yaml', 'scan_detector', SCAN_PARAMETERS))
    ranges = scan.ranges
    angles = scan.angle_min + np.arange(len(ranges)) * scan.angle_increment
    cases.append(dict(run_case('laserscan_1081_beams', lambda: scan_det(ranges, angles, scan.range_min, scan.range_max),
                               lambda: scan_floor(ranges, angles), iterations * 5), beams=int(len(ranges))))
    return cases, None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--iterations', type=int, default=200)
    parser.add_argument('--out', help='also write the JSON here')
    args = parser.parse_args(argv)
    if args.iterations < 1:
        parser.error('--iterations must be >= 1')
    load_start = os.getloadavg()[0]
    det = PointCloudDetector(read_yaml(ROOT / 'config' / 'lidar_detector.yaml', 'lidar_detector', PARAMETERS))
    points = read_velodyne(shared_data('kitti_object', 'training', 'velodyne', '000001.bin'))
    cases = [dict(run_case('kitti_000001_full_scan', lambda: det(points), lambda: cloud_floor(points), args.iterations),
                  points=int(len(points)))]
    sim_cases, note = simulated(args.iterations)
    cases += sim_cases
    import scipy
    doc = {'benchmark': 'lidar', 'python': platform.python_version(), 'numpy': np.__version__,
           'scipy': scipy.__version__, 'cpus': os.cpu_count(), 'machine': platform.machine(),
           'load_average_1min': {'start': round(load_start, 2), 'end': round(os.getloadavg()[0], 2)},
           'targets': {'kitti_000001_full_scan total p99_ms': 60.0, 'laserscan_1081_beams total p99_ms': 2.0},
           'cases': cases}
    if note:
        doc['note'] = note
    text = json.dumps(doc, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
