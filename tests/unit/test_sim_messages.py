"""Simulator data -> ROS messages (sensor_conversions) and messages -> boxes (IoU monitor), without a graph."""
from __future__ import annotations

import math

import numpy as np
import pytest

from aiat_perception import sensor_conversions as sim_node
from aiat_perception.node_params import iou_monitor
from aiat_perception.vision_conversions import labeled_boxes_from_msg
from aiat_perception.sim.scenario import parse_scenario
from aiat_perception.sim.world import SimWorld


ACTORS = [{'type': 'photo', 'photo': 'person_blue_jacket', 'motion': {'type': 'static', 'position': [8, 0.5]}},
          {'type': 'mesh', 'asset': 'racecar', 'motion': {'type': 'static', 'position': [14, -2], 'yaw_deg': 40}},
          {'type': 'mesh', 'asset': 'cube', 'motion': {'type': 'static', 'position': [-5, 0]}}]


@pytest.fixture(scope='module')
def world():
    with SimWorld(parse_scenario({'ego': {'camera': {'width': 320, 'height': 240},
                                          'lidar_3d': {'horizontal_resolution_deg': 2.0}},
                                  'actors': ACTORS})) as w:
        yield w


def header(frame_id='camera_optical_frame'):
    from std_msgs.msg import Header
    h = Header(frame_id=frame_id)
    h.stamp.sec, h.stamp.nanosec = 12, 500
    return h


def test_ground_truth_2d_round_trip(world):
    frame = world.render_camera()
    boxes = world.ground_truth_2d(frame)
    msg = sim_node.ground_truth_2d_msg(boxes, header())
    assert len(msg.detections) == len(boxes) == 2  # the cube behind the camera is not visible
    back = labeled_boxes_from_msg(msg)
    for b, lb in zip(boxes, back):
        assert lb.box == pytest.approx(b.bbox) and lb.class_id == b.class_name and lb.id == b.actor
    assert msg.detections[0].header.stamp.sec == 12


def test_ground_truth_3d_msg(world):
    boxes = world.ground_truth_3d('base_link')
    msg = sim_node.ground_truth_3d_msg(boxes, header('base_link'))
    assert len(msg.detections) == 3
    for b, det in zip(boxes, msg.detections):
        c = det.bbox.center
        assert [c.position.x, c.position.y, c.position.z] == pytest.approx(b.center.tolist())
        yaw = 2 * math.atan2(c.orientation.z, c.orientation.w)
        assert math.remainder(yaw - b.yaw, 2 * math.pi) == pytest.approx(0.0, abs=1e-9)
        assert [det.bbox.size.x, det.bbox.size.y, det.bbox.size.z] == pytest.approx(b.size.tolist())
        assert det.results[0].hypothesis.class_id == b.class_name


def test_camera_info_scan_cloud_and_tf(world):
    from aiat_perception.msg_conversions import pointcloud2_to_array
    frame = world.render_camera()
    info = sim_node.camera_info_msg(frame.K, 320, 240, header())
    assert np.array(info.k).reshape(3, 3) == pytest.approx(frame.K)
    assert np.array(info.p).reshape(3, 4)[:, :3] == pytest.approx(frame.K)
    scan = world.scan_2d()
    scan_msg = sim_node.laser_scan_msg(scan, header('laser'))
    np.testing.assert_array_equal(np.array(scan_msg.ranges, dtype=np.float32), scan.ranges)
    cloud = world.scan_3d()
    back = pointcloud2_to_array(sim_node.point_cloud_msg(cloud, header('velodyne')))
    np.testing.assert_array_equal(back['x'], cloud.points[:, 0])
    np.testing.assert_array_equal(back['ring'], cloud.ring)
    for parent, child, T, _ in world.transforms():
        t = sim_node.transform_stamped(parent, child, T, header().stamp)
        q = t.transform.rotation
        x, y, z, w = q.x, q.y, q.z, q.w
        R = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                      [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                      [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
        assert R == pytest.approx(T[:3, :3], abs=1e-9), (parent, child)


def test_monitor_helpers():
    from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose
    msg = Detection2DArray()
    for values in ((50.0, 40.0, 20.0, 10.0, 0.9), (1.0, 1.0, -5.0, 2.0, 0.9), (float('nan'), 1.0, 2.0, 2.0, 0.9),
                   (10.0, 10.0, 4.0, 4.0, 0.1)):
        det = Detection2D()
        det.bbox.center.position.x, det.bbox.center.position.y, det.bbox.size_x, det.bbox.size_y = values[:4]
        hyp = ObjectHypothesisWithPose()
        hyp.hypothesis.class_id, hyp.hypothesis.score = 'person', values[4]
        det.results = [hyp]
        msg.detections.append(det)
    msg.detections.append(Detection2D())  # no hypothesis
    boxes = labeled_boxes_from_msg(msg, min_score=0.5)
    assert [b.box for b in boxes] == [(40.0, 35.0, 60.0, 45.0)]
    assert iou_monitor.parse_aliases(['truck:car', '', 'bus=car']) == {'truck': 'car', 'bus': 'car'}
    with pytest.raises(ValueError, match='class_aliases'):
        iou_monitor.parse_aliases(['truck'])
    th = {'warn_recall': 0.5, 'error_recall': 0.2, 'warn_mean_iou': 0.5, 'error_mean_iou': 0.3,
          'warn_precision': 0.5, 'error_precision': 0.2}
    ok = {'recall': 0.9, 'mean_iou': 0.8, 'precision': 0.9, 'tp': 9, 'fn': 1}
    assert iou_monitor.level_for(ok, th) == 0
    assert iou_monitor.level_for(dict(ok, recall=0.4), th) == 1
    assert iou_monitor.level_for(dict(ok, mean_iou=0.1), th) == 2
    assert iou_monitor.level_for(dict(ok, mean_iou=float('nan'), tp=0, fn=3), th) == 2
