"""Test peer standing in for a detector in lockstep runs: answers each image with the simulator's
own ground truth for that stamp, every box shifted right by ``shift`` pixels and boxes of the
classes in ``drop`` left out, so the IoU monitor's numbers are known exactly."""
from __future__ import annotations

import copy

from rclpy.node import Node
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2DArray

from aiat_perception.nodes.common import run_node, sensor_qos, stamp_to_ns
from aiat_perception.stamp_pairing import StampPairer


class Echo(Node):
    def __init__(self, node_name: str = 'ground_truth_echo', **kwargs):
        super().__init__(node_name, **kwargs)
        self.shift = float(self.declare_parameter('shift', 2.0).value)
        self.drop = set(self.declare_parameter('drop', ['']).value) - {''}
        self.pairer = StampPairer(('image', 'truth'), timeout_ns=60 * 10**9)
        self.pub = self.create_publisher(Detection2DArray, 'detections', sensor_qos('reliable', 10))
        self.create_subscription(Image, 'image', lambda msg: self.add('image', msg, None),
                                 sensor_qos('reliable', 10))
        self.create_subscription(Detection2DArray, 'ground_truth/detections_2d',
                                 lambda msg: self.add('truth', msg, msg), sensor_qos('reliable', 50))

    def add(self, stream, msg, item):
        pair = self.pairer.add(stream, stamp_to_ns(msg.header.stamp), item)
        if pair is None:
            return
        out = copy.deepcopy(pair['truth'])
        out.detections = [d for d in out.detections if d.results[0].hypothesis.class_id not in self.drop]
        for det in out.detections:
            det.bbox.center.position.x += self.shift
            det.results[0].hypothesis.score = 0.9
        self.pub.publish(out)


def main(args=None):
    raise SystemExit(run_node(Echo, args))


if __name__ == '__main__':
    main()
