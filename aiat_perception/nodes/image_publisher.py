"""Replays photos or a video as ``sensor_msgs/Image`` at a fixed rate (a stand-in camera driver).

Parameters: aiat_perception/node_params/image_publisher.py. Each frame is stamped with the system clock when it is published, so subscribers can measure
pipeline latency as (receive time - header.stamp).
"""
from __future__ import annotations

import itertools

import cv2
import numpy as np
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import ReliabilityPolicy
from sensor_msgs.msg import Image

from aiat_perception.msg_conversions import numpy_to_image
from aiat_perception.node_params.image_publisher import TABLE
from aiat_perception.nodes.common import ParameterError, declare_table, finish, run_node, sensor_qos
from aiat_perception.parameters import non_empty


def load_frames(paths, video: str, max_video_frames: int, width: int, height: int) -> list:
    """BGR frames from image files and/or a video file, optionally resized to width x height."""
    frames = []
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise ParameterError(f'images: cannot read image file {path}')
        frames.append(image)
    if video:
        capture = cv2.VideoCapture(str(video))
        if not capture.isOpened():
            raise ParameterError(f'video: cannot open {video}')
        while len(frames) < max_video_frames or max_video_frames <= 0:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(frame)
        capture.release()
    if not frames:
        raise ParameterError('images/video: nothing to publish (give image files or a video)')
    if width > 0 and height > 0:
        frames = [cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in frames]
    return frames


def default_images() -> list:
    from aiat_perception import assets
    return [str(assets.darknet_image(name)) for name in ('dog.jpg', 'horses.jpg', 'person.jpg')]


class ImagePublisher(Node):
    def __init__(self, node_name: str = 'image_publisher', **kwargs):
        super().__init__(node_name, **kwargs)
        p = declare_table(self, TABLE)
        self.rate_hz, self.count, self.encoding = p['rate_hz'], p['count'], p['encoding']
        # benchmarks hold the first frame until the subscribers matched (none is sent into discovery)
        self.wait_for_subscribers = p['wait_for_subscribers']
        paths = non_empty(p['images']) or ([] if p['video'] else default_images())
        frames = load_frames(paths, p['video'], p['max_video_frames'], p['width'], p['height'])
        if self.encoding == 'rgb8':
            frames = [np.ascontiguousarray(cv2.cvtColor(f, cv2.COLOR_BGR2RGB)) for f in frames]
        elif self.encoding == 'mono8':
            frames = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames]
        # Messages are built once; publishing only updates the stamp.
        self.messages = [numpy_to_image(f, self.encoding) for f in frames]
        for msg in self.messages:
            msg.header.frame_id = p['frame_id']
        self.cycle = itertools.cycle(self.messages)
        self.sent = 0
        self.ack_timeout_s = p['ack_timeout_s']
        self.publisher = self.create_publisher(Image, 'image', sensor_qos(p['reliability'], p['depth']))
        self.timer = self.create_timer(1.0 / self.rate_hz, self.publish_next)
        self.get_logger().info(
            f'publishing {len(self.messages)} frame(s) {self.messages[0].width}x'
            f'{self.messages[0].height} {self.encoding} at {self.rate_hz} Hz on '
            f'{self.publisher.topic_name}')

    def publish_next(self):
        if self.sent == 0 and self.publisher.get_subscription_count() < self.wait_for_subscribers:
            return
        if self.count and self.sent >= self.count:
            self.timer.cancel()
            # a reliable writer that exits first takes its unacknowledged frames with it
            reliable = self.publisher.qos_profile.reliability == ReliabilityPolicy.RELIABLE
            if reliable and not self.publisher.wait_for_all_acked(
                    Duration(seconds=self.ack_timeout_s)):
                self.get_logger().warning(
                    f'not every subscriber acknowledged the last frames within {self.ack_timeout_s} s')
            self.get_logger().info(f'published {self.sent} frames, done')
            finish(self)
            return
        msg = next(self.cycle)
        msg.header.stamp = self.get_clock().now().to_msg()
        self.publisher.publish(msg)
        self.sent += 1


def main(args=None):
    raise SystemExit(run_node(ImagePublisher, args))


if __name__ == '__main__':
    main()
