"""The sim node (lockstep and real-time) and the IoU monitor as real processes over DDS."""
from __future__ import annotations

import time

import numpy as np
import pytest

from tests.conftest import spin_until

FRAMES = 6


def test_lockstep_sim_with_iou_monitor(test_node, start_node):
    from aiat_perception.nodes.common import sensor_qos, stamp_to_ns
    from diagnostic_msgs.msg import DiagnosticArray
    from rosgraph_msgs.msg import Clock
    from std_msgs.msg import Float64MultiArray
    from vision_msgs.msg import Detection2DArray, Detection3DArray

    truth, truth3d, metrics, diagnostics, clock = {}, {}, {}, [], []
    qos = sensor_qos('reliable', 50)
    test_node.create_subscription(Detection2DArray, 'ground_truth/detections_2d',
                                  lambda m: truth.setdefault(stamp_to_ns(m.header.stamp), m), qos)
    test_node.create_subscription(Detection3DArray, 'ground_truth/detections_3d',
                                  lambda m: truth3d.setdefault(stamp_to_ns(m.header.stamp), m), qos)
    test_node.create_subscription(Float64MultiArray, 'metrics', lambda m: metrics.setdefault(
        round(m.data[0] * 1e9), dict(zip(m.layout.dim[0].label.split(','), m.data))), qos)
    test_node.create_subscription(DiagnosticArray, '/diagnostics', diagnostics.append, qos)
    test_node.create_subscription(Clock, '/clock', lambda m: clock.append(stamp_to_ns(m.clock)), qos)
    monitor = start_node('aiat_perception.nodes.iou_monitor', params={'iou_threshold': 0.5})
    echo = start_node('tests.integration.peers.sim_ground_truth_echo', params={'shift': 2.0, 'drop': ['bicycle']})
    # the monitor must hear the first frame's ground truth: start the simulator once it and the echo listen
    assert spin_until(test_node, lambda: test_node.count_subscribers('/ground_truth/detections_2d') >= 3
                      and test_node.count_publishers('/detections') >= 1, timeout=30), monitor.output()
    sim = start_node('aiat_perception.nodes.sim_node', params={
        'scenario': 'photo_actors', 'mode': 'lockstep', 'max_frames': FRAMES, 'publish_lidar_3d': False,
        # the monitor, the echo and this test listen to ground truth; this test to /clock
        'wait_for_subscribers': ['ground_truth/detections_2d:3', 'ground_truth/detections_3d:1', '/clock:1'],
        'lockstep_timeout_s': 20.0})
    assert spin_until(test_node, lambda: len(metrics) >= FRAMES, timeout=120), (sorted(metrics), sim.output(), monitor.output())
    assert sim.wait(timeout=30) == 0, sim.output()
    assert 'timeouts' in sim.output() and '(0 timeouts)' in sim.output(), sim.output()
    # lockstep stamps: clock_start (1 s) + k / 10 Hz, every frame evaluated
    stamps = sorted(metrics)
    assert stamps == [1_000_000_000 + k * 100_000_000 for k in range(FRAMES)]
    # callbacks of different topics run in no particular order: let the rest arrive too
    assert spin_until(test_node, lambda: set(stamps) <= set(clock) and set(stamps) <= set(truth)
                      and set(stamps) <= set(truth3d) and len(diagnostics) >= FRAMES, timeout=10), (
        sorted(clock), sorted(truth), len(diagnostics))
    for stamp in stamps:
        gt = truth[stamp]
        assert len(truth3d[stamp].detections) == 7  # all actors, visible or not
        classes = [d.results[0].hypothesis.class_id for d in gt.detections]
        kept = [d for d in gt.detections if d.results[0].hypothesis.class_id != 'bicycle']
        widths = np.array([d.bbox.size_x for d in kept])
        m = metrics[stamp]
        assert m['frame_recall'] == pytest.approx(len(kept) / len(classes))
        assert m['frame_precision'] == 1.0
        assert m['frame_mean_iou'] == pytest.approx(np.mean((widths - 2) / (widths + 2)), abs=1e-9)
    assert metrics[stamps[-1]]['frames'] == FRAMES
    status = diagnostics[-1].status[0]
    values = {kv.key: kv.value for kv in status.values}
    assert float(values['window_recall']) == pytest.approx(metrics[stamps[-1]]['window_recall'], rel=1e-5)
    assert status.name.startswith('iou_monitor')
    assert echo.alive() and monitor.alive()


def test_realtime_sim_publishes_every_sensor_with_matching_stamps(test_node, start_node):
    from aiat_perception.msg_conversions import pointcloud2_to_array
    from aiat_perception.nodes.common import sensor_qos, stamp_to_ns
    from sensor_msgs.msg import CameraInfo, Image, LaserScan, PointCloud2
    from tf2_msgs.msg import TFMessage
    from vision_msgs.msg import Detection2DArray

    got = {name: [] for name in ('image', 'camera_info', 'scan', 'points', 'gt', 'tf', 'tf_static')}
    arrival = {}
    qos = sensor_qos('reliable', 20)

    def keep(name):
        def callback(msg):
            got[name].append(msg)
            if name == 'image':
                arrival[stamp_to_ns(msg.header.stamp)] = time.time_ns()
        return callback
    from aiat_perception.nodes.common import latched_qos
    for name, topic, typ, q in (('image', 'image', Image, qos), ('camera_info', 'camera_info', CameraInfo, qos),
                                ('scan', 'scan', LaserScan, qos), ('points', 'points', PointCloud2, qos),
                                ('gt', 'ground_truth/detections_2d', Detection2DArray, qos),
                                ('tf', '/tf', TFMessage, qos), ('tf_static', '/tf_static', TFMessage, latched_qos())):
        test_node.create_subscription(typ, topic, keep(name), q)
    sim = start_node('aiat_perception.nodes.sim_node', params={'scenario': 'street_mixed', 'mode': 'realtime'})
    assert spin_until(test_node, lambda: len(got['image']) >= 4 and len(got['points']) >= 2
                      and len(got['tf_static']) >= 1, timeout=90), sim.output()
    image = got['image'][-1]
    assert (image.width, image.height, image.encoding) == (640, 480, 'rgb8')
    image_stamps = {stamp_to_ns(m.header.stamp) for m in got['image']}
    # ground truth and camera info carry the image's stamp (callbacks may lag a little: spin on)
    assert spin_until(test_node, lambda: len(image_stamps & {stamp_to_ns(m.header.stamp) for m in got['gt']}) >= 3
                      and len(image_stamps & {stamp_to_ns(m.header.stamp) for m in got['camera_info']}) >= 3,
                      timeout=10)
    # stamps are system time: delivered within a second of being stamped
    assert all(0 <= arrival[s] - s < 1e9 for s in image_stamps)
    scan = got['scan'][-1]
    assert len(scan.ranges) == 1081 and scan.header.frame_id == 'laser'
    cloud = pointcloud2_to_array(got['points'][-1])
    assert set(cloud.dtype.names) == {'x', 'y', 'z', 'intensity', 'ring'} and len(cloud) > 1000
    static = {(t.header.frame_id, t.child_frame_id) for t in got['tf_static'][0].transforms}
    assert ('base_link', 'camera_link') in static and ('camera_link', 'camera_optical_frame') in static
    assert any(t.child_frame_id == 'base_link' for m in got['tf'] for t in m.transforms)


def test_bad_parameters_stop_the_nodes_with_a_message(start_node):
    sim = start_node('aiat_perception.nodes.sim_node', params={'scenario': 'no_such_scenario'})
    assert sim.wait(timeout=60) == 2
    assert 'scenario' in sim.output() and 'no_such_scenario' in sim.output()
    sim = start_node('aiat_perception.nodes.sim_node', params={'mode': 'turbo'})
    assert sim.wait(timeout=60) == 2 and 'mode: must be one of' in sim.output()
    monitor = start_node('aiat_perception.nodes.iou_monitor', params={'iou_threshold': 1.5})
    assert monitor.wait(timeout=60) == 2 and 'iou_threshold' in monitor.output()
    monitor = start_node('aiat_perception.nodes.iou_monitor', params={'class_aliases': ['truck']})
    assert monitor.wait(timeout=60) == 2 and 'class_aliases' in monitor.output()
