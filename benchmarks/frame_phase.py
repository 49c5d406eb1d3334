"""Is a run slower when it starts right as a frame arrives? One rclpy process, the camera_detector's
arrangement (subscription callback -> LatestSlot -> worker thread running the Detector), 1280x720 rgb8
frames at 5 Hz from image_publisher; session.run time (Detector stage 'inference') per mode,
interleaved in rounds:

  self_paced        the worker runs every 0.2 s on its own, no frames arriving
  frame_triggered   the worker runs each frame as it arrives (what the node does)
  random_phase      frames arrive but the worker runs on its own 0.2 s clock (any phase)
  delay_3ms/15ms    frame-triggered, the worker waits 3 / 15 ms before running
  static_image      frame-triggered, but the run uses an image prepared at start (not the message's)
  in_callback       the subscription callback runs the frame itself (the executor's thread, no hand-off)

    .venv310/bin/python benchmarks/frame_phase.py [--rounds 4]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import camera_pipeline as cp  # noqa: E402
from benchmarks.json_out import emit_json  # noqa: E402

MODES = ('self_paced', 'frame_triggered', 'random_phase', 'delay_3ms', 'delay_15ms', 'static_image',
         'in_callback')
TRIGGERED = {'frame_triggered': 0.0, 'delay_3ms': 0.003, 'delay_15ms': 0.015, 'static_image': 0.0}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=4)
    parser.add_argument('--seconds', type=float, default=4.0, help='per mode and round')
    parser.add_argument('--out', type=Path)
    args = parser.parse_args()

    from aiat_perception.assets import cache_dir, darknet_image
    from aiat_perception.latest_slot import LatestSlot
    from aiat_perception.msg_conversions import image_to_numpy
    from aiat_perception.nodes.common import configure_dds, sensor_qos
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST', ROS_DOMAIN_ID=str(os.getpid() % 90 + 5))
    os.environ.update(env)
    configure_dds()
    env.update({k: os.environ[k] for k in ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE')
                if k in os.environ})
    import cv2
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import Image

    raw = cp.RawSession(cache_dir('bundles') / 'nanodet-coco-416', {})   # the node's session options
    detector = raw.detector
    image = cv2.resize(cv2.imread(str(darknet_image('dog.jpg'))), cp.FRAME_SIZE)
    path = str(Path(tempfile.mkdtemp()) / 'frame.png')
    cv2.imwrite(path, image)
    static = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    for _ in range(3):
        detector.detect_one(static, 'rgb8')

    rclpy.init()
    node = rclpy.create_node('frame_phase_benchmark')
    slot, mode, times = LatestSlot(), ['idle'], {m: [] for m in MODES}
    def on_frame(msg):
        if mode[0] in TRIGGERED:
            slot.put(image_to_numpy(msg))
        elif mode[0] == 'in_callback':
            detector.detect_one(image_to_numpy(msg), 'rgb8')
            times['in_callback'].append(detector.last_times.inference * 1e3)
    node.create_subscription(Image, 'image', on_frame, sensor_qos('best_effort'))

    def work():
        while not slot.closed:
            current = mode[0]
            if current in ('self_paced', 'random_phase'):
                time.sleep(0.2)
                frame = static
            elif current in TRIGGERED:
                frame = slot.take(0.2)
                if frame is None:
                    continue
                if TRIGGERED[current]:
                    time.sleep(TRIGGERED[current])
                if current == 'static_image':
                    frame = static
            else:
                time.sleep(0.05)
                continue
            detector.detect_one(frame, 'rgb8')
            if mode[0] == current:
                times[current].append(detector.last_times.inference * 1e3)

    threading.Thread(target=work, daemon=True).start()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    loads = [cp.load_average()]
    for _ in range(args.rounds):
        for current in MODES:
            mode[0] = current
            if current == 'self_paced':
                end = time.monotonic() + args.seconds
                while time.monotonic() < end:
                    executor.spin_once(timeout_sec=0.1)
            else:
                publisher = cp.publish(5.0, args.seconds, path, env)
                while publisher.poll() is None:
                    executor.spin_once(timeout_sec=0.1)
        loads.append(cp.load_average())
    mode[0] = 'idle'
    slot.close()
    node.destroy_node()
    rclpy.try_shutdown()
    emit_json({'benchmark': 'frame_phase', 'rate_hz': 5.0, 'network_input_hw': list(raw.input_hw),
               'session_options': raw.session_options, 'load_averages': loads,
               'inference_ms': {m: dict(cp.stats(v[1:]), p25=round(float(np.percentile(v[1:], 25)), 2))
                                for m, v in times.items() if len(v) > 1}}, args.out)


if __name__ == '__main__':
    main()
