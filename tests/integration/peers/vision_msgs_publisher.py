"""Peer process: publishes one fully populated Detection2DArray and Detection3DArray per 100 ms."""
from __future__ import annotations

import math
import sys


def _stamped(msg, *how):
    """An array message given (sec, nanosec, frame_id), or a detection given (header, id)."""
    if len(how) == 3:
        msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id = how
    else:
        msg.header, msg.id = how
    return msg


def make_detection2d_array():
    from vision_msgs.msg import (Detection2D, Detection2DArray, ObjectHypothesisWithPose)
    msg = _stamped(Detection2DArray(), 1_700_000_000, 123_456_789, 'camera_optical_frame')
    for i in range(3):
        det = _stamped(Detection2D(), msg.header, f'track-{i}')
        det.bbox.center.position.x = 100.25 + i
        det.bbox.center.position.y = 200.5 - i
        det.bbox.center.theta = 0.1 * i
        det.bbox.size_x, det.bbox.size_y = 40.0 + i, 80.0 + 2 * i
        for j, name in enumerate(('car', 'truck')):
            hyp = ObjectHypothesisWithPose()
            hyp.hypothesis.class_id = name
            hyp.hypothesis.score = 0.9 - 0.3 * j - 0.01 * i
            hyp.pose.pose.position.x = float(i)
            hyp.pose.pose.orientation.w = 1.0
            hyp.pose.covariance = [float(k) * 0.5 for k in range(36)]
            det.results.append(hyp)
        msg.detections.append(det)
    return msg


def make_detection3d_array():
    from vision_msgs.msg import Detection3D, Detection3DArray, ObjectHypothesisWithPose
    msg = _stamped(Detection3DArray(), 1_700_000_001, 987_654_321, 'map')
    for i in range(2):
        det = _stamped(Detection3D(), msg.header, f'actor-{i}')
        det.bbox.center.position.x, det.bbox.center.position.y = 5.0 + i, -1.5 * i
        det.bbox.center.position.z = 0.75
        det.bbox.center.orientation.z = math.sin(0.25 * i)
        det.bbox.center.orientation.w = math.cos(0.25 * i)
        det.bbox.size.x, det.bbox.size.y, det.bbox.size.z = 4.2, 1.8, 1.5
        hyp = ObjectHypothesisWithPose()
        hyp.hypothesis.class_id = 'pedestrian' if i else 'car'
        hyp.hypothesis.score = 1.0
        hyp.pose.pose = det.bbox.center
        det.results.append(hyp)
        msg.detections.append(det)
    return msg


def main():
    from aiat_perception.nodes.common import configure_dds, latched_qos
    configure_dds()
    import rclpy
    from vision_msgs.msg import Detection2DArray, Detection3DArray

    rclpy.init(args=sys.argv)
    node = rclpy.create_node('vision_msgs_publisher')
    pub2d = node.create_publisher(Detection2DArray, 'detections_2d', latched_qos())
    pub3d = node.create_publisher(Detection3DArray, 'detections_3d', latched_qos())
    msg2d, msg3d = make_detection2d_array(), make_detection3d_array()

    def publish():
        pub2d.publish(msg2d)
        pub3d.publish(msg3d)

    node.create_timer(0.1, publish)
    try:
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
