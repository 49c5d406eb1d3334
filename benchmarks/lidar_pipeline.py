"""End-to-end latency of the lidar nodes across processes: a publisher process -> lidar_detector /
scan_detector -> this process, against the core's own time and the bare transport, in the same run.

Per case (the full 120k-point KITTI scan 000001 as PointCloud2 at 5 Hz; a real 768-beam Hokuyo scan of
the leg-tracker bag as LaserScan at 20 Hz; both below the nodes' capacity on 2 cores), measured:
  - bare transport: the same messages from the publisher process to this process, no detector running
  - end-to-end: receipt here of the Detection3DArray minus its header.stamp (= the input's, stamped by
    the publisher just before publishing)
  - core: the ROS-free detector on the same input in this process, paced at the same rate (an idle CPU
    between frames makes each run slower than back-to-back runs), and the node's own per-stage times
    (its ~/latency topic: conversion + the core's stages)

    .venv/bin/python benchmarks/lidar_pipeline.py [--seconds 20] [--out docs/benchmarks/lidar_pipeline.json]

Target (issue 13): end-to-end p50 <= core p50 + bare transport p50 + 3 ms, checked two ways: against
the core paced in this process (a separate phase, so it sees other machine load), and per frame:
end-to-end minus the core's own stage times as the node measured them for that frame (conversion,
message building, publishing, hand-over and both transports are what is left) <= transport p50 + 3 ms.
On this shared 2-core machine (load average ~25 from other sessions) every wall-clock figure is
stretched by waiting for a core, so the node's own work beyond the core (conversion, message building,
publishing) is also measured as CPU time on the same message: check_node_cpu_beyond_core_p50_within_3ms.
The publisher mode (``--publish points|scan``) is what the benchmark starts as its publisher process.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.json_out import emit_json  # noqa: E402

CASES = {'points': {'node': 'lidar_detector', 'rate': 5.0, 'params': 'lidar_detector.yaml'},
         'scan': {'node': 'scan_detector', 'rate': 20.0, 'params': 'scan_detector.yaml'}}


def stats(values) -> dict:
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return {'n': 0}
    return {'n': int(values.size), 'p50': round(float(np.median(values)), 3),
            'p99': round(float(np.percentile(values, 99)), 3), 'max': round(float(values.max()), 3)}


def kitti_points():
    from aiat_perception.assets import shared_data
    from aiat_perception.kitti import read_velodyne
    return read_velodyne(shared_data('kitti_object', 'training', 'velodyne', '000001.bin'))


def leg_scan():
    from aiat_perception.assets import shared_data
    from aiat_perception.bag_reading import iterate_messages
    path = shared_data('laser_scans', 'leg_tracker_positive_1_extracted.bag')
    return next(m for _, _, m in iterate_messages(path, ['/training_scan']))


def make_message(kind: str):
    from sensor_msgs.msg import LaserScan
    from std_msgs.msg import Header

    from aiat_perception.msg_conversions import array_to_pointcloud2
    if kind == 'points':
        raw = kitti_points()
        points = np.zeros(len(raw), dtype=[('x', '<f4'), ('y', '<f4'), ('z', '<f4'), ('intensity', '<f4')])
        for i, name in enumerate(('x', 'y', 'z', 'intensity')):
            points[name] = raw[:, i]
        return array_to_pointcloud2(points, Header(frame_id='velodyne'))
    m = leg_scan()
    return LaserScan(header=Header(frame_id=m.header.frame_id), angle_min=float(m.angle_min),
                     angle_max=float(m.angle_max), angle_increment=float(m.angle_increment),
                     range_min=float(m.range_min), range_max=float(m.range_max),
                     ranges=np.asarray(m.ranges, np.float32).tolist())


def publisher_main(kind: str, rate: float, seconds: float) -> int:
    """The publisher process: waits for one subscriber, then publishes the message at ``rate``."""
    from aiat_perception.nodes.common import configure_dds, ns_to_stamp, sensor_qos
    configure_dds()
    import rclpy
    from sensor_msgs.msg import LaserScan, PointCloud2
    rclpy.init()
    node = rclpy.create_node(f'bench_{kind}_publisher')
    msg = make_message(kind)
    pub = node.create_publisher(PointCloud2 if kind == 'points' else LaserScan, kind, sensor_qos('reliable', 1))
    deadline = time.monotonic() + 30
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    time.sleep(0.5)
    next_t = time.monotonic()
    for _ in range(int(rate * seconds)):
        next_t += 1.0 / rate
        msg.header.stamp = ns_to_stamp(time.time_ns())
        pub.publish(msg)
        time.sleep(max(0.0, next_t - time.monotonic()))
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


def core_times(kind: str, rate: float, count: int) -> list:
    """The ROS-free core on the same input in this process, paced at ``rate``."""
    from aiat_perception.lidar.detector import PARAMETERS, PointCloudDetector
    from aiat_perception.lidar.params import read_yaml
    from aiat_perception.lidar.scan import SCAN_PARAMETERS, ScanDetector
    if kind == 'points':
        core = PointCloudDetector(read_yaml(ROOT / 'config' / 'lidar_detector.yaml', 'lidar_detector', PARAMETERS))
        xyz = kitti_points()[:, :3].copy()
        run = lambda: core(xyz)  # noqa: E731
    else:
        core = ScanDetector(read_yaml(ROOT / 'config' / 'scan_detector.yaml', 'scan_detector', SCAN_PARAMETERS))
        m = leg_scan()
        ranges = np.asarray(m.ranges, np.float32)
        angles = m.angle_min + np.arange(len(ranges)) * m.angle_increment
        run = lambda: core(ranges, angles, m.range_min, m.range_max)  # noqa: E731
    times = []
    for k in range(count + 3):
        time.sleep(1.0 / rate)
        t = time.perf_counter()
        run()
        if k >= 3:
            times.append((time.perf_counter() - t) * 1e3)
    return times


def node_overhead_cpu(node, kind: str, count: int = 100) -> dict:
    """CPU time (this thread's, so not stretched by other processes' load) of the node's own work
    beyond the core, on the same message: conversion, and Detection3DArray building + publishing."""
    from vision_msgs.msg import Detection3DArray

    from aiat_perception.lidar.detector import PARAMETERS, PointCloudDetector
    from aiat_perception.lidar.params import read_yaml
    from aiat_perception.lidar.scan import SCAN_PARAMETERS, ScanDetector
    from aiat_perception.msg_conversions import cloud_xyz
    from aiat_perception.nodes.scan_detector import scan_arrays
    from aiat_perception.vision_conversions import detections_3d_to_msg
    msg = make_message(kind)
    if kind == 'points':
        convert = lambda m: cloud_xyz(m)[0]  # noqa: E731
        core = PointCloudDetector(read_yaml(ROOT / 'config' / 'lidar_detector.yaml', 'lidar_detector', PARAMETERS))
        detections = core(convert(msg)).detections
    else:
        convert = scan_arrays
        core = ScanDetector(read_yaml(ROOT / 'config' / 'scan_detector.yaml', 'scan_detector', SCAN_PARAMETERS))
        detections = core(*convert(msg)).detections
    pub = node.create_publisher(Detection3DArray, 'bench_overhead_detections', 10)
    conversion, publish = [], []
    for _ in range(count + 5):
        t0 = time.thread_time()
        convert(msg)
        t1 = time.thread_time()
        pub.publish(detections_3d_to_msg(detections, msg.header))
        t2 = time.thread_time()
        conversion.append((t1 - t0) * 1e3)
        publish.append((t2 - t1) * 1e3)
    node.destroy_publisher(pub)
    total = np.array(conversion[5:]) + np.array(publish[5:])
    return {'detections': len(detections), 'conversion': stats(conversion[5:]),
            'build_and_publish': stats(publish[5:]), 'total': stats(total)}


def spin_while(node, proc, extra_s: float = 1.0):
    import rclpy
    while proc.poll() is None:
        rclpy.spin_once(node, timeout_sec=0.05)
    end = time.monotonic() + extra_s
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.05)


def run_case(node, kind: str, seconds: float, env: dict) -> dict:
    import rclpy
    from sensor_msgs.msg import LaserScan, PointCloud2
    from std_msgs.msg import Float64MultiArray
    from vision_msgs.msg import Detection3DArray

    from aiat_perception.nodes.common import sensor_qos, stamp_to_ns
    case = CASES[kind]
    publisher = [sys.executable, str(Path(__file__).resolve()), '--publish', kind, '--rate', str(case['rate']),
                 '--seconds', str(seconds)]
    # bare transport: publisher -> here
    transport = []
    sub = node.create_subscription(PointCloud2 if kind == 'points' else LaserScan, kind, lambda m: transport.append(
        (time.time_ns() - stamp_to_ns(m.header.stamp)) / 1e6), sensor_qos('reliable', 1))
    spin_while(node, subprocess.Popen(publisher, env=env, cwd=ROOT))
    node.destroy_subscription(sub)
    # end to end: publisher -> node -> here
    detector = subprocess.Popen([sys.executable, '-m', f'aiat_perception.nodes.{case["node"]}', '--ros-args',
                                 '--params-file', str(ROOT / 'config' / case['params']),
                                 '-p', 'reliability:=reliable', '--log-level', 'warn'], env=env, cwd=ROOT)
    e2e, node_times = [], []
    subs = [node.create_subscription(Detection3DArray, 'detections', lambda m: e2e.append(
                (stamp_to_ns(m.header.stamp), (time.time_ns() - stamp_to_ns(m.header.stamp)) / 1e6)), 50),
            node.create_subscription(Float64MultiArray, f'/{case["node"]}/latency',
                                     lambda m: node_times.append(dict(zip(m.layout.dim[0].label.split(','), m.data))), 50)]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and node.count_publishers('/detections') == 0:
        rclpy.spin_once(node, timeout_sec=0.1)
    spin_while(node, subprocess.Popen(publisher, env=env, cwd=ROOT), extra_s=2.0)
    detector.terminate()
    detector.wait(timeout=20)
    for s in subs:
        node.destroy_subscription(s)
    core = core_times(kind, case['rate'], max(20, min(200, int(case['rate'] * seconds))))
    stages = {k: stats([t[k] for t in node_times[3:]]) for k in (node_times[0] if node_times else {})
              if k.endswith('_ms')}
    # per frame: end to end minus the core's own stages as the node timed them (same frame, same run)
    core_stages = [k for k in (node_times[0] if node_times else {})
                   if k.endswith('_ms') and k not in ('pipeline_ms', 'processing_ms', 'waited_ms', 'conversion_ms', 'publish_ms')]
    # ~/latency carries the stamp as float seconds (sub-microsecond rounding): pair by millisecond
    core_by_stamp = {round(t['stamp_s'] * 1e3): sum(t[k] for k in core_stages) for t in node_times}
    e2e = [(round(stamp / 1e6), lag) for stamp, lag in e2e]
    overhead = [lag - core_by_stamp[stamp] for stamp, lag in e2e[3:] if stamp in core_by_stamp]
    result = {'node': case['node'], 'rate_hz': case['rate'], 'sent': int(case['rate'] * seconds),
              'end_to_end_ms': stats([lag for _, lag in e2e[3:]]), 'bare_transport_ms': stats(transport[3:]),
              'core_ms_paced_in_process': stats(core), 'node_stage_ms': stages,
              'core_ms_in_node': stats([core_by_stamp[s] for s, _ in e2e[3:] if s in core_by_stamp]),
              'end_to_end_minus_core_in_node_ms': stats(overhead)}
    transport_p50 = result['bare_transport_ms'].get('p50', np.nan)
    budget = result['core_ms_paced_in_process'].get('p50', np.nan) + transport_p50 + 3.0
    got = result['end_to_end_ms'].get('p50', np.nan)
    result['check_e2e_p50_within_core_plus_transport_plus_3ms'] = {
        'end_to_end_p50': got, 'budget': round(float(budget), 3), 'ok': bool(got <= budget)}
    result['node_overhead_cpu_ms'] = node_overhead_cpu(node, kind)
    cpu = result['node_overhead_cpu_ms']['total']['p50']
    result['check_node_cpu_beyond_core_p50_within_3ms'] = {'cpu_p50': cpu, 'budget': 3.0, 'ok': bool(cpu <= 3.0)}
    extra = result['end_to_end_minus_core_in_node_ms'].get('p50', np.nan)
    result['check_per_frame_overhead_p50_within_transport_plus_3ms'] = {
        'overhead_p50': extra, 'budget': round(float(transport_p50 + 3.0), 3), 'ok': bool(extra <= transport_p50 + 3.0)}
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--seconds', type=float, default=20.0, help='seconds of input per phase and case')
    parser.add_argument('--cases', nargs='+', default=list(CASES), choices=list(CASES))
    parser.add_argument('--out', type=Path, help='also write the JSON here')
    parser.add_argument('--publish', choices=list(CASES), help=argparse.SUPPRESS)
    parser.add_argument('--rate', type=float, default=5.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.publish:
        return publisher_main(args.publish, args.rate, args.seconds)
    from aiat_perception.nodes.common import configure_dds
    configure_dds()
    import rclpy
    env = dict(os.environ)
    rclpy.init()
    node = rclpy.create_node('bench_lidar_pipeline')
    try:
        cases = {kind: run_case(node, kind, args.seconds, env) for kind in args.cases}
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    doc = {'benchmark': 'lidar_pipeline', 'python': platform.python_version(), 'numpy': np.__version__,
           'cpus': os.cpu_count(), 'load_average_1min': round(os.getloadavg()[0], 2),
           'rmw': os.environ.get('RMW_IMPLEMENTATION'), 'cases': cases}
    emit_json(doc, args.out)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
