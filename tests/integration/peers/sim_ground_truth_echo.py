"""Test peer standing in for a detector in lockstep runs: answers each image with the simulator's
own ground truth for that stamp, every box shifted right by ``shift`` pixels and boxes of the
classes in ``drop`` left out, so the IoU monitor's numbers are known exactly."""
from __future__ import annotations

import copy

from aiat_perception.nodes.common import run_node, sensor_qos, stamp_to_ns


def make_node():
    from rclpy.node import Node
    from sensor_msgs.msg import Image
    from vision_msgs.msg import Detection2DArray

    class Echo(Node):
        def __init__(self):
            super().__init__('ground_truth_echo')
            self.shift = float(self.declare_parameter('shift', 2.0).value)
            self.drop = set(self.declare_parameter('drop', ['']).value) - {''}
            self.images, self.truth = set(), {}
            self.pub = self.create_publisher(Detection2DArray, 'detections', sensor_qos('reliable', 10))
            self.create_subscription(Image, 'image', self.on_image, sensor_qos('reliable', 10))
            self.create_subscription(Detection2DArray, 'ground_truth/detections_2d', self.on_truth,
                                     sensor_qos('reliable', 50))

        def on_image(self, msg):
            self.images.add(stamp_to_ns(msg.header.stamp))
            self.answer()

        def on_truth(self, msg):
            self.truth[stamp_to_ns(msg.header.stamp)] = msg
            self.answer()

        def answer(self):
            for stamp in sorted(self.images & set(self.truth)):
                msg = copy.deepcopy(self.truth.pop(stamp))
                self.images.discard(stamp)
                msg.detections = [d for d in msg.detections if d.results[0].hypothesis.class_id not in self.drop]
                for det in msg.detections:
                    det.bbox.center.position.x += self.shift
                    det.results[0].hypothesis.score = 0.9
                self.pub.publish(msg)

    return Echo()


def main(args=None):
    raise SystemExit(run_node(make_node, args))


if __name__ == '__main__':
    main()
