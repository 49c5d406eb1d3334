"""Image transport latency between two processes: our Fast DDS profile vs Fast DDS defaults.

A publisher process (the image_publisher node) sends 1280x720 rgb8 frames at 30 Hz; a subscriber
process measures latency = receive time - header.stamp (both on the system clock of this host).
Each transport setting is measured with reliable and best-effort QoS in the same run.

    .venv/bin/python benchmarks/transport.py [--seconds 10] [--rate 30]

Prints JSON: per setting, delivered/sent, median, p99 and max latency in ms.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def subscriber(out: Path, reliability: str, seconds: float) -> None:
    from aiat_perception.nodes.common import configure_dds, sensor_qos, stamp_to_ns
    configure_dds()
    import rclpy
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node('transport_benchmark_subscriber')
    latencies = []

    def on_image(msg):
        latencies.append((time.time_ns() - stamp_to_ns(msg.header.stamp)) / 1e6)

    # depth 10: count what the transport delivers, not what a busy subscriber had time to take
    node.create_subscription(Image, 'image', on_image, sensor_qos(reliability, depth=10))
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))  # sent once the publisher is done
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not stop:
        rclpy.spin_once(node, timeout_sec=0.05)
    out.write_text(json.dumps(latencies))
    node.destroy_node()
    rclpy.try_shutdown()


def measure(profile: bool, reliability: str, seconds: float, rate: float) -> dict:
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
               ROS_DOMAIN_ID=str(os.getpid() % 90 + 5))
    env.pop('FASTDDS_DEFAULT_PROFILES_FILE', None)
    env.pop('FASTRTPS_DEFAULT_PROFILES_FILE', None)
    if not profile:
        env['AIAT_FASTDDS_PROFILE'] = '0'
    count = int(seconds * rate)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / 'latencies.json'
        sub = subprocess.Popen([sys.executable, __file__, '--role', 'sub', '--out', str(out),
                                '--reliability', reliability, '--seconds', str(seconds + 40)],
                               env=env, cwd=ROOT)
        time.sleep(2.0)  # the subscriber is up and discovered before the first frame
        image = str(Path(tmp) / 'frame.png')
        rng = np.random.default_rng(0)
        import cv2
        cv2.imwrite(image, rng.integers(0, 255, (720, 1280, 3), dtype=np.uint8))
        pub = subprocess.run(
            [sys.executable, '-m', 'aiat_perception.nodes.image_publisher', '--ros-args',
             '-p', f'images:=[{image!r}]', '-p', f'rate_hz:={rate}', '-p', f'count:={count}',
             '-p', f'reliability:={reliability}', '-p', 'wait_for_subscribers:=1',
             '--log-level', 'warn'],
            env=env, cwd=ROOT, capture_output=True, text=True)
        time.sleep(1.0)  # the last frames are in flight
        sub.terminate()
        sub.wait(timeout=30)
        latencies = np.array(json.loads(out.read_text()) if out.exists() else [])
    result = {'transport': 'aiat profile (SHM 16 MiB + UDPv4)' if profile else 'Fast DDS default',
              'reliability': reliability, 'sent': count, 'delivered': int(latencies.size)}
    if latencies.size:
        result.update(median_ms=round(float(np.median(latencies)), 2),
                      p99_ms=round(float(np.percentile(latencies, 99)), 2),
                      max_ms=round(float(latencies.max()), 2))
    if pub.returncode != 0:
        result['publisher_error'] = pub.stderr[-500:]
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--role', default='main', choices=['main', 'sub'])
    parser.add_argument('--out', type=Path)
    parser.add_argument('--reliability', default='reliable')
    parser.add_argument('--seconds', type=float, default=10.0)
    parser.add_argument('--rate', type=float, default=30.0)
    args = parser.parse_args()
    if args.role == 'sub':
        subscriber(args.out, args.reliability, args.seconds)
        return
    results = [measure(profile, reliability, args.seconds, args.rate)
               for profile in (True, False) for reliability in ('reliable', 'best_effort')]
    print(json.dumps({'benchmark': 'transport', 'image': '1280x720 rgb8', 'rate_hz': args.rate,
                      'seconds': args.seconds, 'results': results}, indent=2))


if __name__ == '__main__':
    main()
