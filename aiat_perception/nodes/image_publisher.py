"""Replays photos or a video as ``sensor_msgs/Image`` at a fixed rate (a stand-in camera driver).

Each frame is stamped with the system clock when it is published, so subscribers can measure
pipeline latency as (receive time - header.stamp).
"""
from __future__ import annotations

import itertools

import numpy as np

from aiat_perception.nodes.common import finish, ParameterError, run_node, sensor_qos


def load_frames(paths, video: str, max_video_frames: int, width: int, height: int) -> list:
    """BGR frames from image files and/or a video file, optionally resized to width x height."""
    import cv2

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


def make_node():
    import cv2
    from rclpy.node import Node
    from sensor_msgs.msg import Image

    from aiat_perception.msg_conversions import numpy_to_image

    class ImagePublisher(Node):
        def __init__(self):
            super().__init__('image_publisher')
            images = self.declare_parameter('images', ['']).value
            video = self.declare_parameter('video', '').value
            self.rate_hz = float(self.declare_parameter('rate_hz', 5.0).value)
            self.count = int(self.declare_parameter('count', 0).value)
            self.frame_id = self.declare_parameter('frame_id', 'camera_optical_frame').value
            self.encoding = self.declare_parameter('encoding', 'rgb8').value
            reliability = self.declare_parameter('reliability', 'best_effort').value
            width = int(self.declare_parameter('width', 0).value)
            height = int(self.declare_parameter('height', 0).value)
            max_video_frames = int(self.declare_parameter('max_video_frames', 300).value)
            # Hold the first frame until this many subscribers matched (benchmarks: no frame is sent
            # into discovery).
            self.wait_for_subscribers = int(self.declare_parameter('wait_for_subscribers', 0).value)
            if self.rate_hz <= 0:
                raise ParameterError(f'rate_hz must be > 0, got {self.rate_hz}')
            if self.encoding not in ('rgb8', 'bgr8', 'mono8'):
                raise ParameterError(f"encoding must be rgb8, bgr8 or mono8, not {self.encoding!r}")
            paths = [p for p in images if p] or ([] if video else default_images())
            frames = load_frames(paths, video, max_video_frames, width, height)
            if self.encoding == 'rgb8':
                frames = [np.ascontiguousarray(cv2.cvtColor(f, cv2.COLOR_BGR2RGB)) for f in frames]
            elif self.encoding == 'mono8':
                frames = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames]
            # Messages are built once; publishing only updates the stamp.
            self.messages = [numpy_to_image(f, self.encoding) for f in frames]
            for msg in self.messages:
                msg.header.frame_id = self.frame_id
            self.cycle = itertools.cycle(self.messages)
            self.sent = 0
            self.publisher = self.create_publisher(Image, 'image', sensor_qos(reliability))
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
                self.get_logger().info(f'published {self.sent} frames, done')
                finish(self)
                return
            msg = next(self.cycle)
            msg.header.stamp = self.get_clock().now().to_msg()
            self.publisher.publish(msg)
            self.sent += 1

    return ImagePublisher()


def main(args=None):
    raise SystemExit(run_node(make_node, args))


if __name__ == '__main__':
    main()
