"""Soak: a perception node at 3x its measured capacity for a long time (default 10 minutes).

In one run:
  1. capacity: the node's raw processing rate on the soak's frame, measured in this process first
     (the node's own pipeline, back to back, same thread setting);
  2. the node in its own process, fed from here at ``--overload`` x that rate (best effort, like a
     camera driver), for ``--duration`` seconds;
  3. every frame accounted for: sent = processed + dropped + lost + malformed + failed, from the
     node's /diagnostics totals (differences over the soak, after a warm-up and a drain), with
     processed cross-checked against the per-frame latency topic;
  4. latency over time: stamp -> detections published (the node's ~/latency) per ``--bucket-s``
     bucket: p50 / p99 / max;
  5. memory: the node's RSS (/proc/<pid>/status) every ``--rss-period-s`` seconds, with a least-squares
     slope in MB/hour over the whole run and after the first bucket (start-up allocations).

    .venv/bin/python benchmarks/soak.py [--node camera] [--duration 600] [--out docs/benchmarks/soak.json]

Targets are a table (TARGETS): a node module, its input topic, a frame factory and its capacity
probe; the lidar node joins by adding a row.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


# --- targets ------------------------------------------------------------------------------------
def camera_frame(args):
    """A real photo at the soak's size, as a bgr8 sensor_msgs/Image built once (publishing only
    restamps it)."""
    import cv2

    from aiat_perception.assets import darknet_image
    from aiat_perception.msg_conversions import numpy_to_image
    image = cv2.resize(cv2.imread(str(darknet_image('dog.jpg'))), (args.width, args.height))
    msg = numpy_to_image(image, 'bgr8')
    msg.header.frame_id = 'soak_camera'
    return msg


def camera_capacity(args, msg) -> Dict[str, float]:
    """Raw processing rate: the node's conversion + detector on the soak frame, back to back."""
    from aiat_perception.inference import Detector
    from aiat_perception.msg_conversions import image_to_numpy
    from aiat_perception.nodes.camera_detector import resolve_bundle_path
    options = {'intra_op_threads': args.num_threads} if args.num_threads else {}
    detector = Detector(resolve_bundle_path(''), backend='onnxruntime', **options)
    for _ in range(5):
        detector.detect_one(image_to_numpy(msg), msg.encoding)
    times = []
    deadline = time.monotonic() + args.capacity_s
    while time.monotonic() < deadline or len(times) < 20:
        start = time.perf_counter()
        detector.detect_one(image_to_numpy(msg), msg.encoding)
        times.append((time.perf_counter() - start) * 1e3)
    detector.close()
    median = float(np.median(times))
    return {'frames': len(times), 'processing_ms_p50': round(median, 2),
            'processing_ms_p99': round(float(np.percentile(times, 99)), 2),
            'rate_hz': round(1000.0 / median, 2)}


@dataclass
class Target:
    module: str                       # the node, run as ``python -m module``
    input_topic: str
    message_type: Callable            # () -> the message class
    frame: Callable                   # (args) -> the message to publish, built once
    capacity: Callable                # (args, frame) -> {'rate_hz': ..., ...}
    params: Callable                  # (args) -> node parameters for the soak
    latency_topic: str                # per-frame Float64MultiArray: [stamp_s, pipeline_ms, processing_ms, ...]
    status_name: str                  # DiagnosticStatus.name prefix


def _image_type():
    from sensor_msgs.msg import Image
    return Image


TARGETS = {
    'camera': Target(
        module='aiat_perception.nodes.camera_detector', input_topic='image',
        message_type=_image_type, frame=camera_frame, capacity=camera_capacity,
        params=lambda args: {'num_threads': args.num_threads, 'debug_image': False,
                             'reliability': 'best_effort', 'lost_source': 'auto'},
        latency_topic='/camera_detector/latency', status_name='/camera_detector: '),
    # 'lidar': Target(module='aiat_perception.nodes.lidar_detector', input_topic='points', ...)
}


# --- measurements -------------------------------------------------------------------------------
def rss_mb(pid: int) -> float:
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024.0
    return float('nan')


def slope_mb_per_hour(samples: List[List[float]]) -> float:
    if len(samples) < 3:
        return float('nan')
    t, mb = np.array(samples, dtype=np.float64).T
    return round(float(np.polyfit(t, mb, 1)[0]) * 3600.0, 2)


def latency_buckets(records: List[tuple], bucket_s: float) -> List[dict]:
    """records: (seconds since soak start, pipeline_ms, processing_ms) -> per-bucket statistics."""
    if not records:
        return []
    data = np.array(records, dtype=np.float64)
    out = []
    for index in range(int(data[:, 0].max() // bucket_s) + 1):
        rows = data[(data[:, 0] >= index * bucket_s) & (data[:, 0] < (index + 1) * bucket_s)]
        if not len(rows):
            continue
        out.append({'from_s': round(index * bucket_s, 1), 'frames': int(len(rows)),
                    'latency_ms_p50': round(float(np.median(rows[:, 1])), 2),
                    'latency_ms_p99': round(float(np.percentile(rows[:, 1], 99)), 2),
                    'latency_ms_max': round(float(rows[:, 1].max()), 2),
                    'processing_ms_p99': round(float(np.percentile(rows[:, 2], 99)), 2)})
    return out


class Publisher(threading.Thread):
    """Publishes ``msg`` at ``rate`` Hz on a fixed schedule (no catch-up bursts when late)."""

    def __init__(self, publisher, msg, rate: float, clock):
        super().__init__(daemon=True)
        self.publisher, self.msg, self.period, self.clock = publisher, msg, 1.0 / rate, clock
        self.sent = 0
        self.stop_event = threading.Event()

    def run(self):
        next_time = time.perf_counter()
        while not self.stop_event.is_set():
            self.msg.header.stamp = self.clock.now().to_msg()
            self.publisher.publish(self.msg)
            self.sent += 1
            next_time += self.period
            delay = next_time - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            elif delay < -self.period:
                next_time = time.perf_counter()


def claim_ros_domain() -> str:
    """A ROS domain id no test session or benchmark on this machine holds (the flock files that
    tests/conftest.py uses), held until this process exits."""
    import fcntl
    for domain in range(101, 0, -1):
        handle = open(f'/tmp/aiat-ros-domain-{domain}.lock', 'w')
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        claim_ros_domain.handle = handle
        return str(domain)
    raise SystemExit('no free ROS domain id')


COUNTERS = ('frames_received', 'frames_processed', 'frames_dropped', 'frames_lost',
            'frames_malformed', 'frames_failed')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--node', default='camera', choices=sorted(TARGETS))
    parser.add_argument('--duration', type=float, default=600.0, help='seconds at overload')
    parser.add_argument('--overload', type=float, default=3.0, help='input rate / measured capacity')
    parser.add_argument('--bucket-s', type=float, default=60.0, help='latency statistics per bucket')
    parser.add_argument('--rss-period-s', type=float, default=5.0)
    parser.add_argument('--capacity-s', type=float, default=8.0, help='seconds of capacity probe')
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--height', type=int, default=480)
    parser.add_argument('--num-threads', type=int, default=0, help="the node's num_threads (0 = ORT default)")
    parser.add_argument('--notes', default='', help='free text stored in the JSON (machine load, ...)')
    parser.add_argument('--out', type=Path, help='also write the JSON here')
    args = parser.parse_args()
    target = TARGETS[args.node]

    from aiat_perception.nodes.common import configure_dds
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
               ROS_DOMAIN_ID=os.environ.get('ROS_DOMAIN_ID') or claim_ros_domain())
    os.environ.update(env)
    configure_dds()
    env['FASTDDS_DEFAULT_PROFILES_FILE'] = os.environ['FASTDDS_DEFAULT_PROFILES_FILE']
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from std_msgs.msg import Float64MultiArray

    from aiat_perception.nodes.common import sensor_qos
    from aiat_perception.vision_conversions import diagnostic_values

    load_start = os.getloadavg()
    frame = target.frame(args)
    capacity = target.capacity(args, frame)
    rate = args.overload * capacity['rate_hz']

    cmd = [sys.executable, '-m', target.module, '--ros-args', '--log-level', 'warn']
    for key, value in target.params(args).items():
        value = str(value).lower() if isinstance(value, bool) else value
        cmd += ['-p', f'{key}:={value}']
    node_proc = subprocess.Popen(cmd, env=env, cwd=ROOT)

    rclpy.init()
    node = rclpy.create_node('soak_benchmark')
    latest: Dict[str, str] = {}
    diag_count = [0]
    latencies: List[tuple] = []
    t0 = [None]

    def on_diagnostics(msg):
        for status in msg.status:
            if status.name.startswith(target.status_name):
                latest.clear()
                latest.update(diagnostic_values(status))
                latest['level'] = str(status.level[0] if isinstance(status.level, bytes) else status.level)
                latest['message'] = status.message
                diag_count[0] += 1

    def on_latency(msg):
        if t0[0] is not None:
            latencies.append((time.monotonic() - t0[0], msg.data[1], msg.data[2]))

    node.create_subscription(DiagnosticArray, '/diagnostics', on_diagnostics, 10)
    node.create_subscription(Float64MultiArray, target.latency_topic, on_latency, 100)
    pub = node.create_publisher(target.message_type(), target.input_topic, sensor_qos('best_effort'))

    def spin_for(seconds: float, until=None) -> bool:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.05)
            if until is not None and until():
                return True
        return until is None

    def counters_after_quiet(expected_received: int, timeout: float = 30.0) -> Dict[str, int]:
        """The node's totals once it has taken every frame sent so far and published a fresh status."""
        def settled():
            return latest and int(latest.get('frames_received', -1)) + int(latest.get('frames_lost', 0)) \
                >= expected_received
        spin_for(timeout, settled)
        seen = diag_count[0]
        spin_for(5.0, lambda: diag_count[0] >= seen + 2)   # one full status period after the last frame
        return {key: int(latest.get(key, -1)) for key in COUNTERS}

    try:
        if not spin_for(60.0, lambda: pub.get_subscription_count() > 0 and diag_count[0] > 0):
            raise SystemExit('the node did not come up within 60 s')
        # warm-up: a slow trickle until the node has a baseline in every counter (lost frames are
        # gaps after the first frame it sees)
        warm = Publisher(pub, frame, 5.0, node.get_clock())
        warm.start()
        spin_for(30.0, lambda: int(latest.get('frames_processed', 0)) >= 3)
        warm.stop_event.set()
        warm.join()
        before = counters_after_quiet(warm.sent)
        sent_before = warm.sent

        rss: List[List[float]] = []
        soak = Publisher(pub, frame, rate, node.get_clock())
        t0[0] = time.monotonic()
        soak.start()
        next_rss = t0[0]
        while time.monotonic() - t0[0] < args.duration:
            if time.monotonic() >= next_rss:
                rss.append([time.monotonic() - t0[0], rss_mb(node_proc.pid)])
                next_rss += args.rss_period_s
            rclpy.spin_once(node, timeout_sec=0.05)
            if node_proc.poll() is not None:
                raise SystemExit(f'the node exited with {node_proc.returncode} during the soak')
        soak.stop_event.set()
        soak.join()
        elapsed = time.monotonic() - t0[0]
        # tail: a few slow frames reveal any loss at the end of the soak as a sequence gap
        tail = Publisher(pub, frame, 4.0, node.get_clock())
        tail.start()
        spin_for(1.5)
        tail.stop_event.set()
        tail.join()
        sent = soak.sent + tail.sent
        after = counters_after_quiet(sent_before + sent)
        rss.append([time.monotonic() - t0[0], rss_mb(node_proc.pid)])
        final_level, final_message = latest.get('level'), latest.get('message')
    finally:
        node_proc.terminate()
        try:
            node_proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            node_proc.kill()
        node.destroy_node()
        rclpy.try_shutdown()

    delta = {key: after[key] - before[key] for key in COUNTERS}
    accounted = sum(delta[k] for k in ('frames_processed', 'frames_dropped', 'frames_lost',
                                       'frames_malformed', 'frames_failed'))
    buckets = latency_buckets([r for r in latencies if r[0] <= elapsed], args.bucket_s)
    p99s = [b['latency_ms_p99'] for b in buckets]
    after_first = [s for s in rss if s[0] >= args.bucket_s]
    result = {
        'benchmark': 'soak', 'node': args.node, 'module': target.module,
        'frame': f'{args.width}x{args.height} bgr8', 'qos': 'best_effort, keep last 1',
        'capacity': capacity, 'overload': args.overload, 'input_rate_hz_target': round(rate, 2),
        'duration_s': round(elapsed, 1),
        'input_rate_hz_achieved': round(soak.sent / elapsed, 2),
        'output_rate_hz': round(delta['frames_processed'] / elapsed, 2),
        'accounting': {
            'sent': sent, **{k.replace('frames_', ''): v for k, v in delta.items()},
            'processed_on_latency_topic': len(latencies),
            'unaccounted': sent - accounted,
            'ok': sent == accounted},
        'latency_over_time': buckets,
        'latency_p99_ms': {'min_bucket': min(p99s) if p99s else None,
                           'max_bucket': max(p99s) if p99s else None,
                           'first_bucket': p99s[0] if p99s else None,
                           'last_bucket': p99s[-1] if p99s else None},
        'rss_mb': {'first': round(rss[0][1], 1), 'last': round(rss[-1][1], 1),
                   'max': round(max(s[1] for s in rss), 1), 'samples': len(rss),
                   'slope_mb_per_hour': slope_mb_per_hour(rss),
                   'slope_mb_per_hour_after_first_bucket': slope_mb_per_hour(after_first)},
        'rss_samples': [[round(t, 1), round(mb, 2)] for t, mb in rss],
        'final_diagnostics': {'level': final_level, 'message': final_message},
        'machine': {'cpus': os.cpu_count(), 'python': platform.python_version(),
                    'loadavg_start': [round(x, 2) for x in load_start],
                    'loadavg_end': [round(x, 2) for x in os.getloadavg()],
                    'nice': os.nice(0)},
        'notes': args.notes,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + '\n')


if __name__ == '__main__':
    main()
