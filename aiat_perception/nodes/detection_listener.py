"""Prints the ``vision_msgs/Detection2DArray`` it receives, with each message's latency.

Useful to watch a detector from a terminal (``ros2 topic echo`` needs ros2cli, which pip-only machines
lack), and used by the demo. Exits after ``max_messages`` messages when that is > 0.
"""
from __future__ import annotations

import json
import time

from aiat_perception.nodes.common import finish, run_node, sensor_qos, stamp_to_ns


def format_detections(msg, latency_ms: float) -> str:
    parts = []
    for det in msg.detections:
        hyp = det.results[0].hypothesis if det.results else None
        cx, cy = det.bbox.center.position.x, det.bbox.center.position.y
        w, h = det.bbox.size_x, det.bbox.size_y
        parts.append(f'{hyp.class_id if hyp else "?"} {hyp.score if hyp else 0:.2f} '
                     f'[{cx - w / 2:.0f},{cy - h / 2:.0f},{cx + w / 2:.0f},{cy + h / 2:.0f}]')
    stamp = msg.header.stamp
    return (f'{stamp.sec}.{stamp.nanosec:09d} {msg.header.frame_id} latency {latency_ms:.1f} ms: '
            f'{len(msg.detections)} detection(s) ' + '; '.join(parts))


def make_node():
    from rclpy.node import Node
    from vision_msgs.msg import Detection2DArray

    class DetectionListener(Node):
        def __init__(self):
            super().__init__('detection_listener')
            self.max_messages = int(self.declare_parameter('max_messages', 0).value)
            self.as_json = bool(self.declare_parameter('json', False).value)
            reliability = self.declare_parameter('reliability', 'reliable').value
            self.received = 0
            self.create_subscription(Detection2DArray, 'detections', self.on_detections,
                                     sensor_qos(reliability, depth=10))

        def on_detections(self, msg):
            latency_ms = (time.time_ns() - stamp_to_ns(msg.header.stamp)) / 1e6
            self.received += 1
            if self.as_json:
                print(json.dumps({
                    'stamp_ns': stamp_to_ns(msg.header.stamp), 'frame_id': msg.header.frame_id,
                    'latency_ms': round(latency_ms, 3),
                    'detections': [{'class_id': d.results[0].hypothesis.class_id if d.results else '',
                                    'score': d.results[0].hypothesis.score if d.results else 0.0,
                                    'center': [d.bbox.center.position.x, d.bbox.center.position.y],
                                    'size': [d.bbox.size_x, d.bbox.size_y]}
                                   for d in msg.detections]}), flush=True)
            else:
                print(format_detections(msg, latency_ms), flush=True)
            if self.max_messages and self.received >= self.max_messages:
                finish(self)

    return DetectionListener()


def main(args=None):
    raise SystemExit(run_node(make_node, args))


if __name__ == '__main__':
    main()
