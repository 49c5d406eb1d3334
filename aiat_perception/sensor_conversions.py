"""Simulator data -> ROS messages: CameraInfo, LaserScan, PointCloud2, TF, and ground truth as
Detection2DArray / Detection3DArray. Message classes are imported inside the functions, so the module
loads without ROS (as :mod:`aiat_perception.vision_conversions`)."""
from __future__ import annotations

import numpy as np

from aiat_perception.sim.transforms import quaternion_xyzw
from aiat_perception.vision_conversions import detections_to_msg


def camera_info_msg(K: np.ndarray, width: int, height: int, header):
    from sensor_msgs.msg import CameraInfo
    msg = CameraInfo()
    msg.header = header
    msg.width, msg.height = int(width), int(height)
    msg.distortion_model = 'plumb_bob'
    msg.d = [0.0] * 5
    msg.k = [float(v) for v in K.ravel()]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [float(v) for v in np.hstack([K, np.zeros((3, 1))]).ravel()]
    return msg


def laser_scan_msg(scan, header):
    from sensor_msgs.msg import LaserScan
    msg = LaserScan()
    msg.header = header
    msg.angle_min, msg.angle_max = scan.angle_min, scan.angle_max
    msg.angle_increment, msg.time_increment = scan.angle_increment, scan.time_increment
    msg.scan_time = scan.scan_time
    msg.range_min, msg.range_max = float(scan.range_min), float(scan.range_max)
    msg.ranges = scan.ranges.astype(np.float32)
    return msg


CLOUD_DTYPE = np.dtype([('x', '<f4'), ('y', '<f4'), ('z', '<f4'), ('intensity', '<f4'), ('ring', '<u2')])


def point_cloud_msg(cloud, header):
    from aiat_perception.msg_conversions import array_to_pointcloud2
    points = np.zeros(len(cloud.points), dtype=CLOUD_DTYPE)
    points['x'], points['y'], points['z'] = cloud.points[:, 0], cloud.points[:, 1], cloud.points[:, 2]
    points['intensity'], points['ring'] = cloud.intensity, cloud.ring
    return array_to_pointcloud2(points, header)


def pose_msg(T: np.ndarray, pose=None):
    from geometry_msgs.msg import Pose
    pose = pose or Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in T[:3, 3])
    q = quaternion_xyzw(T[:3, :3])
    pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = (float(v) for v in q)
    return pose


def transform_stamped(parent: str, child: str, T: np.ndarray, stamp):
    from geometry_msgs.msg import TransformStamped
    msg = TransformStamped()
    msg.header.stamp = stamp
    msg.header.frame_id, msg.child_frame_id = parent, child
    msg.transform.translation.x, msg.transform.translation.y, msg.transform.translation.z = (
        float(v) for v in T[:3, 3])
    q = quaternion_xyzw(T[:3, :3])
    r = msg.transform.rotation
    r.x, r.y, r.z, r.w = (float(v) for v in q)
    return msg


def ground_truth_2d_msg(boxes, header):
    # b.bbox holds pixel edges: the box covers pixels x0 .. x1-1
    return detections_to_msg(np.array([b.bbox for b in boxes], dtype=np.float64).reshape(-1, 4),
                             np.ones(len(boxes)), [b.class_name for b in boxes], header,
                             ids=[b.actor for b in boxes])


def ground_truth_3d_msg(boxes, header):
    from vision_msgs.msg import Detection3D, Detection3DArray, ObjectHypothesisWithPose
    msg = Detection3DArray()
    msg.header = header
    for b in boxes:
        det = Detection3D()
        det.header = header
        det.id = b.actor
        pose_msg(b.pose, det.bbox.center)
        det.bbox.size.x, det.bbox.size.y, det.bbox.size.z = (float(v) for v in b.size)
        hyp = ObjectHypothesisWithPose()
        hyp.hypothesis.class_id = b.class_name
        hyp.hypothesis.score = 1.0
        pose_msg(b.pose, hyp.pose.pose)
        det.results = [hyp]
        msg.detections.append(det)
    return msg
