"""Simulation in the loop for the 3D lidar: sim (lockstep on the 3D lidar) + lidar_detector as real
processes over DDS, scored against the simulator's 3D ground truth with the 16- and 64-ring lidars.

The scene and the scoring are those of the core's test (tests/unit/test_sim_lidar_detection.py): a
street of parked and driving cars and pedestrians; an object counts when within 30 m of the lidar
and at least 20 of the cloud's points fall in its box. The sim publishes each cloud with its ground
truth (base_link) and waits for the detector's Detection3DArray with the cloud's stamp; the detector
publishes in base_link through the sim's /tf_static (target_frame)."""
from __future__ import annotations

import math

import pytest
import yaml

from aiat_perception.metrics.matching_3d import Evaluation3D, Object3D
from tests.conftest import spin_until
from tests.unit.test_sim_lidar_detection import CLASS, SENSORS, street

FRAMES = {16: 3, 64: 2}     # the 64-ring cast takes seconds per frame here


def grown(obj: Object3D, margin: float) -> Object3D:
    return Object3D(obj.class_name, obj.center, tuple(s + 2 * margin for s in obj.size), obj.yaw)


@pytest.mark.parametrize('rings', [16, 64])
def test_lidar_detector_in_lockstep_against_simulated_ground_truth(rings, test_node, start_node, tmp_path):
    from sensor_msgs.msg import PointCloud2
    from std_msgs.msg import Float64MultiArray
    from tf2_msgs.msg import TFMessage
    from vision_msgs.msg import Detection3DArray

    from aiat_perception.metrics.kitti_rules import points_in_box
    from aiat_perception.msg_conversions import cloud_xyz
    from aiat_perception.nodes.common import latched_qos, sensor_qos
    from aiat_perception.static_transforms import StaticTransformBuffer, apply
    from aiat_perception.vision_conversions import objects_3d_from_msg

    lidar, sensor = SENSORS[rings]
    scenario = tmp_path / f'street_{rings}.yaml'
    scenario.write_text(yaml.safe_dump(dict(street(lidar), name=f'lidar_street_{rings}')))
    frames = FRAMES[rings]
    got = {'gt': {}, 'det': {}, 'points': {}}
    tf = StaticTransformBuffer()
    key = lambda m: (m.header.stamp.sec, m.header.stamp.nanosec)  # noqa: E731
    test_node.create_subscription(Detection3DArray, 'ground_truth/detections_3d',
                                  lambda m: got['gt'].__setitem__(key(m), m), sensor_qos('reliable', 50))
    test_node.create_subscription(Detection3DArray, 'detections', lambda m: got['det'].__setitem__(key(m), m),
                                  sensor_qos('reliable', 50))
    test_node.create_subscription(PointCloud2, 'points', lambda m: got['points'].__setitem__(key(m), m),
                                  sensor_qos('reliable', 10))
    test_node.create_subscription(TFMessage, '/tf_static', tf.add_message, latched_qos(10))
    metrics = []
    test_node.create_subscription(Float64MultiArray, 'metrics', lambda m: metrics.append(
        dict(zip(m.layout.dim[0].label.split(','), m.data))), sensor_qos('reliable', 50))
    monitor = start_node('aiat_perception.nodes.iou_monitor', params={
        'detections_type': '3d', 'classes': ['car', 'pedestrian'], 'class_aliases': ['person:pedestrian'],
        'iou_threshold': 0.5, 'class_iou_thresholds': ['pedestrian:0.3'], 'max_range_m': 30.0, 'window': frames})
    detector = start_node('aiat_perception.nodes.lidar_detector', params={
        'reliability': 'reliable', 'target_frame': 'base_link', **sensor})
    assert spin_until(test_node, lambda: test_node.count_publishers('/detections') >= 1, timeout=60), detector.output()
    sim = start_node('aiat_perception.nodes.sim_node', params={
        'scenario': str(scenario), 'mode': 'lockstep', 'lockstep_sensor': 'lidar_3d', 'max_frames': frames,
        'publish_lidar_2d': False, 'lockstep_timeout_s': 60.0,
        'wait_for_subscribers': ['ground_truth/detections_3d:2']})   # the test node and the monitor
    assert spin_until(test_node, lambda: len(got['det']) >= frames and len(got['points']) >= frames
                      and len(metrics) >= frames, timeout=240), (len(got['det']), len(metrics), sim.output(),
                                                                 detector.output(), monitor.output())
    assert sim.wait(timeout=60) == 0, sim.output()
    assert f'published {frames} frames (0 timeouts)' in sim.output(), sim.output()   # every cloud answered

    base_from_lidar = tf.lookup('base_link', 'velodyne')
    lidar_xy = base_from_lidar[:2, 3]
    cars, peds, confusion = Evaluation3D('iou', 0.5), Evaluation3D('iou', 0.3), Evaluation3D('iou', 0.3)
    in_base = 0
    for stamp, det_msg in sorted(got['det'].items()):
        points = apply(base_from_lidar, cloud_xyz(got['points'][stamp])[0])
        gts = []
        for g in objects_3d_from_msg(got['gt'][stamp]):
            g = Object3D(CLASS[g.class_name], g.center, g.size, g.yaw)
            if math.dist(g.center[:2], lidar_xy) <= 30.0 and points_in_box(points, grown(g, 0.1)) >= 20:
                gts.append(g)
        dets = objects_3d_from_msg(det_msg)
        if det_msg.header.frame_id == 'velodyne':   # the cloud came before /tf_static reached the node
            dets = [Object3D(d.class_name, tuple(apply(base_from_lidar, [d.center])[0]), d.size,
                             d.yaw + math.atan2(base_from_lidar[1, 0], base_from_lidar[0, 0]), d.score) for d in dets]
        else:
            assert det_msg.header.frame_id == 'base_link'
            in_base += 1
        dets = [d for d in dets if math.dist(d.center[:2], lidar_xy) <= 32.0]
        cars.add([d for d in dets if d.class_name == 'car'], [g for g in gts if g.class_name == 'car'])
        peds.add([d for d in dets if d.class_name == 'pedestrian'], [g for g in gts if g.class_name == 'pedestrian'])
        confusion.add(dets, gts)
    car, ped = cars.summary()['per_class']['car/all'], peds.summary()['per_class']['pedestrian/all']
    print(f'\n{rings} rings, {frames} lockstep frames over DDS: car recall (BEV IoU >= 0.5) {car["recall"]:.2f} '
          f'of {car["ground_truth"]}, pedestrian recall (BEV IoU >= 0.3) {ped["recall"]:.2f} of {ped["ground_truth"]}; '
          f'car heading error {cars.summary()["mean_heading_error_deg"]:.1f} deg; {in_base}/{frames} frames '
          f'published in base_link')
    print(confusion.confusion_markdown())
    total = metrics[-1]
    print(f"iou_monitor (3d, BEV IoU, all ground truth within 30 m, occluded included): recall "
          f"{total['total_recall']:.2f}, precision {total['total_precision']:.2f}, mean BEV IoU "
          f"{total['total_mean_iou']:.2f} over {total['frames']:.0f} frames")
    assert total['frames'] == frames
    # the monitor matches what this test matches; it also counts the occluded actors as missed
    assert total['total_recall'] > 0.5 and total['total_mean_iou'] > 0.5
    assert in_base >= frames - 1
    assert car['ground_truth'] >= 8 * frames and ped['ground_truth'] >= 5 * frames
    assert car['recall'] >= 0.8
    assert ped['recall'] >= 0.6
