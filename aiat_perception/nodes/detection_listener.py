"""Prints the ``vision_msgs/Detection2DArray`` it receives, with each message's latency, and can save
annotated frames (the detector's ``detections/image``) to a folder.

Useful to watch a detector from a terminal (``ros2 topic echo`` needs ros2cli, which pip-only machines
lack), and used by the demo. Exits after ``max_messages`` messages when that is > 0. Latency is
measured on the node's clock (the system clock, or simulation time with use_sim_time).
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
from rclpy.node import Node
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2DArray

from aiat_perception.msg_conversions import MessageFormatError, image_to_numpy
from aiat_perception.node_params.detection_listener import TABLE
from aiat_perception.nodes.common import declare_table, finish, run_node, sensor_qos, stamp_to_ns


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


class DetectionListener(Node):
    def __init__(self, node_name: str = 'detection_listener', **kwargs):
        super().__init__(node_name, **kwargs)
        p = declare_table(self, TABLE)
        self.max_messages, self.as_json, self.quiet = p['max_messages'], p['json'], p['quiet']
        self.save_every, self.save_max = p['save_every'], p['save_max']
        reliability, save_dir = p['reliability'], p['save_dir']
        self.received = 0
        self.saved = 0
        self.annotated_seen = 0
        if save_dir:
            self.save_dir = Path(save_dir)
            self.save_dir.mkdir(parents=True, exist_ok=True)
            self.create_subscription(Image, 'annotated_image', self.on_annotated,
                                     sensor_qos('reliable', depth=2))
        self.create_subscription(Detection2DArray, 'detections', self.on_detections,
                                 sensor_qos(reliability, depth=10))

    def on_annotated(self, msg):
        self.annotated_seen += 1
        if self.saved >= self.save_max or (self.annotated_seen - 1) % self.save_every:
            return
        try:
            image = image_to_numpy(msg)
        except MessageFormatError as exc:
            self.get_logger().warn(f'cannot save annotated frame: {exc}')
            return
        if msg.encoding == 'rgb8':
            image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        path = self.save_dir / f'frame_{stamp_to_ns(msg.header.stamp)}.png'
        cv2.imwrite(str(path), image)
        self.saved += 1
        print(f'saved annotated frame {path}', flush=True)

    def on_detections(self, msg):
        latency_ms = (self.get_clock().now().nanoseconds - stamp_to_ns(msg.header.stamp)) / 1e6
        self.received += 1
        if self.quiet:
            pass
        elif self.as_json:
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


def main(args=None):
    raise SystemExit(run_node(DetectionListener, args))


if __name__ == '__main__':
    main()
