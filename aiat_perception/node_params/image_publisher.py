"""Parameters of the image_publisher node."""
from __future__ import annotations

import math

from aiat_perception.parameters import INT64_MAX, Param, ParameterTable

NON_NEGATIVE = (0, INT64_MAX)


def _check(p) -> list:
    if (p['width'] > 0) != (p['height'] > 0):
        return [f"width, height: give both or neither, got {p['width']}x{p['height']}"]
    return []


TABLE = ParameterTable('image_publisher', [
    Param('images', [''], 'image files to publish in turn; none (and no video) = three sample photos'),
    Param('video', '', 'video file to publish (its first max_video_frames frames)'),
    Param('rate_hz', 5.0, 'publishing rate in Hz', range=(0.0, math.inf), open_low=True),
    Param('count', 0, 'stop after publishing this many frames; 0 = run until stopped', range=NON_NEGATIVE),
    Param('frame_id', 'camera_optical_frame', 'header.frame_id of the images'),
    Param('encoding', 'rgb8', 'image encoding: rgb8, bgr8 or mono8', choices=('rgb8', 'bgr8', 'mono8')),
    Param('reliability', 'best_effort', 'QoS reliability: best_effort or reliable',
          choices=('best_effort', 'reliable')),
    Param('depth', 1, 'QoS history depth of the publisher (keep last); a reliable driver that must not '
          'drop a frame a slow subscriber has not yet acknowledged needs more than 1 (ROS default: 10)',
          range=(1, 1000)),
    Param('ack_timeout_s', 5.0, 'with count > 0 and reliable QoS: how long to wait at the end for every '
          'subscriber to acknowledge the last frames before exiting', range=(0.0, 600.0)),
    Param('width', 0, 'resize to this width (with height); 0 = keep the size', range=NON_NEGATIVE),
    Param('height', 0, 'resize to this height (with width); 0 = keep the size', range=NON_NEGATIVE),
    Param('max_video_frames', 300, 'frames read from the video; 0 = all', range=NON_NEGATIVE),
    Param('wait_for_subscribers', 0, 'hold the first frame until this many subscribers matched',
          range=NON_NEGATIVE),
], check=_check)
