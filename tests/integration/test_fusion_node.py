"""The fusion node as a real process over DDS, fed from the real KITTI files in ../shared/data: the
replay converter (aiat_perception/replay/kitti_bag.py) turns frame 000134 into the messages a vehicle
would carry (Image, CameraInfo with P = P2, PointCloud2, /tf_static velodyne -> camera_rect); the
image goes through the real camera_detector (pretrained COCO NanoDet) and the cloud through the real
lidar_detector; the fusion node publishes a Detection3DArray with the camera's header, whose distances
are checked against the KITTI labels. A second test feeds the node directly (the labels' 2D boxes as
detections, the cloud stamped later than the camera, the extrinsic from parameters, target_frame) and
sends it malformed input."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest

from aiat_perception.assets import shared_data
from tests.conftest import spin_until

KITTI = shared_data('kitti_object', 'training')
FRAME = '000134'


def stamp_key(header):
    return header.stamp.sec, header.stamp.nanosec


class KittiMessages:
    """KITTI frame 000134 as the replay converter writes it; ``[topic]`` gives a fresh rclpy message."""

    def __init__(self, bag):
        from aiat_perception.replay import topics
        from aiat_perception.replay.player import load
        wanted = [topics.IMAGE, topics.CAMERA_INFO, topics.POINTS, topics.TF_STATIC]
        self.loaded = {m.topic: m for m in load(bag, wanted)}

    def __getitem__(self, topic):
        from rclpy.serialization import deserialize_message

        from aiat_perception.replay.player import rclpy_class
        m = self.loaded[topic]
        return deserialize_message(m.raw, rclpy_class(m.msgtype))


@pytest.fixture(scope='module')
def kitti_messages(tmp_path_factory):
    from aiat_perception.replay.kitti_bag import convert_kitti
    bag = tmp_path_factory.mktemp('kitti') / 'bag'
    convert_kitti(KITTI, bag, frames=[FRAME])
    return KittiMessages(bag)


def restamped(msg, stamp_ns: int):
    from aiat_perception.nodes.common import ns_to_stamp
    ns_to_stamp(stamp_ns, msg.header.stamp)
    return msg


def send_until_counted(node, out, pub, msg, key: str, at_least: int = 1, tries: int = 5) -> dict:
    """Publish ``msg`` until the node's diagnostics count ``key`` >= ``at_least``: the node hears
    CameraInfo best-effort (as camera drivers publish it), and a sample sent right after discovery
    may not arrive."""
    for _ in range(tries):
        pub.publish(msg)
        if spin_until(node, lambda: int(out.values().get(key, 0)) >= at_least, timeout=2.5):
            return out.values()
    raise AssertionError(f'{key} did not reach {at_least}: {out.values()}')


class FusionOutputs:
    def __init__(self, node, fused_topic='fused_detections', name='fusion'):
        from diagnostic_msgs.msg import DiagnosticArray
        from std_msgs.msg import Float64MultiArray
        from vision_msgs.msg import Detection2DArray, Detection3DArray
        from visualization_msgs.msg import MarkerArray

        self.fused, self.camera, self.markers, self.statuses, self.latency = [], [], [], [], []
        node.create_subscription(Detection3DArray, fused_topic, self.fused.append, 50)
        node.create_subscription(MarkerArray, f'{fused_topic}/markers', self.markers.append, 50)
        node.create_subscription(Detection2DArray, 'detections', self.camera.append, 50)
        node.create_subscription(Float64MultiArray, f'/{name}/latency', self.latency.append, 50)
        node.create_subscription(DiagnosticArray, '/diagnostics', lambda m: self.statuses.extend(
            s for s in m.status if s.name.startswith(f'/{name}: ')), 10)

    def values(self) -> dict:
        from aiat_perception.vision_conversions import diagnostic_values
        return diagnostic_values(self.statuses[-1]) if self.statuses else {}


def label_distances(fused_msg, camera_msg):
    """(KITTI type, true distance, fused distance) for each fused object whose camera box the
    real-camera rule matches to a label (fused positions are in camera_rect, the labels' frame)."""
    from aiat_perception.kitti import read_label
    from aiat_perception.metrics.kitti_camera import kitti_camera_recall
    from aiat_perception.vision_conversions import labeled_boxes_from_msg
    labels = read_label(KITTI / 'label_2' / f'{FRAME}.txt')
    boxes = labeled_boxes_from_msg(camera_msg)
    recall = kitti_camera_recall(boxes, labels)
    fused = {d.id: d for d in fused_msg.detections}
    out = []
    for obj, det in zip(recall.objects, recall.matched_by):
        key = camera_msg.detections[det].id or str(det) if det >= 0 else None
        if key in fused:
            p = fused[key].bbox.center.position
            center = np.array(obj.location) - [0.0, obj.dimensions[0] / 2.0, 0.0]
            out.append((obj.type, float(np.linalg.norm(center)), math.sqrt(p.x ** 2 + p.y ** 2 + p.z ** 2)))
    return out


def test_fusion_node_fed_from_kitti_through_the_detector_nodes(test_node, start_node, kitti_messages):
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2
    from tf2_msgs.msg import TFMessage

    from aiat_perception.nodes.common import latched_qos, sensor_qos
    from aiat_perception.replay import topics
    from tests.integration.sim_loop import pretrained_bundle
    out = FusionOutputs(test_node)
    tf_pub = test_node.create_publisher(TFMessage, '/tf_static', latched_qos())
    tf_pub.publish(kitti_messages[topics.TF_STATIC])        # transient local: nodes started later get it
    camera = start_node('aiat_perception.nodes.camera_detector',
                        params={'bundle_path': str(pretrained_bundle()), 'reliability': 'reliable'})
    lidar = start_node('aiat_perception.nodes.lidar_detector', params={'reliability': 'reliable'},
                       remap={'detections': 'lidar_detections', 'detections/markers': 'lidar_detections/markers'})
    fusion = start_node('aiat_perception.nodes.fusion', params={'reliability': 'reliable',
                                                                 'use_lidar_detections': True})
    images = test_node.create_publisher(Image, 'image', sensor_qos('reliable', depth=5))
    infos = test_node.create_publisher(CameraInfo, 'camera_info', sensor_qos('reliable', depth=5))
    clouds = test_node.create_publisher(PointCloud2, 'points', sensor_qos('reliable', depth=5))
    assert spin_until(test_node, lambda: images.get_subscription_count() and clouds.get_subscription_count() >= 2
                      and infos.get_subscription_count() and out.statuses, timeout=60), \
        (camera.output(), lidar.output(), fusion.output())
    sent = []
    # the frame again and again with new stamps, each once the previous one came out fused (a busy
    # camera_detector keeps only the newest image: a frame sent while it works may be dropped)
    for k in range(8):
        if len(out.fused) >= 3:
            break
        stamp = time.time_ns()
        msgs = [restamped(kitti_messages[t], stamp) for t in (topics.CAMERA_INFO, topics.POINTS, topics.IMAGE)]
        infos.publish(msgs[0])
        clouds.publish(msgs[1])
        images.publish(msgs[2])
        sent.append((stamp // 10**9, stamp % 10**9))
        before = len(out.fused)
        spin_until(test_node, lambda: len(out.fused) > before, timeout=20)
    assert len(out.fused) >= 3, (len(sent), fusion.output(), camera.output())
    # the camera's detections and the fused objects reach this node on two topics: either may come first
    spin_until(test_node, lambda: {stamp_key(m.header) for m in out.fused}
               <= {stamp_key(m.header) for m in out.camera}, timeout=10)
    camera_by_stamp = {stamp_key(m.header): m for m in out.camera}
    for msg in out.fused:
        assert stamp_key(msg.header) in sent and msg.header.frame_id == 'camera_rect'   # the camera's header
        cam = camera_by_stamp[stamp_key(msg.header)]
        assert cam.header.frame_id == msg.header.frame_id
        classes = {d.id or str(i): d.results[0].hypothesis.class_id for i, d in enumerate(cam.detections)}
        for det in msg.detections:                  # the 2D detection's id and the camera's class
            assert classes[det.id] == det.results[0].hypothesis.class_id
            assert det.results[0].hypothesis.score > 0 and det.bbox.size.z > 0
            assert np.isfinite(det.results[0].pose.covariance[:3]).all() and det.results[0].pose.covariance[0] > 0
    last = out.fused[-1]
    errors = label_distances(last, camera_by_stamp[stamp_key(last.header)])
    abs_errors = sorted(abs(f - t) for _, t, f in errors)
    print(f'\nKITTI {FRAME} over DDS: {len(last.detections)} fused objects of '
          f'{len(camera_by_stamp[stamp_key(last.header)].detections)} camera detections; {len(errors)} matched to '
          'labels: ' + ', '.join(f'{k} {t:.1f} m -> {f:.1f} m' for k, t, f in errors))
    assert len(errors) >= 5
    assert abs_errors[len(abs_errors) // 2] <= 0.5
    assert all(abs(f - t) <= 0.1 * t for _, t, f in errors), errors
    spin_until(test_node, lambda: False, timeout=1.5)
    values = out.values()
    print('fusion diagnostics: ' + ', '.join(f'{k} {values[k]}' for k in values
                                             if k.startswith('agreement_') or k.endswith('_p50')))
    assert int(values['frames_processed']) == len(out.fused) and int(values['frames_failed']) == 0, values
    assert int(values['lidar_detections_received']) >= 3 and values['camera_frame'] == 'camera_rect'
    assert int(values['agreement_camera_detections']) >= 3 * len(errors), values
    assert float(values['agreement_confirm_rate']) > 0.3 and float(values['agreement_mean_iou']) > 0.3, values
    labels = out.latency[-1].layout.dim[0].label.split(',')
    assert labels[:4] == ['stamp_s', 'pipeline_ms', 'processing_ms', 'waited_ms'], labels
    assert float(values['processing_ms_p50']) > 0 and float(values['project_ms_p50']) >= 0
    assert out.markers and out.markers[-1].markers[0].action == 3     # DELETEALL, then the boxes
    assert fusion.alive() and camera.alive() and lidar.alive()


def test_fusion_node_pairs_within_tolerance_uses_parameter_extrinsic_and_counts_bad_input(
        test_node, start_node, kitti_messages):
    from geometry_msgs.msg import TransformStamped
    from sensor_msgs.msg import CameraInfo, PointCloud2
    from tf2_msgs.msg import TFMessage
    from vision_msgs.msg import Detection2DArray

    from aiat_perception.kitti import KittiCalibration, read_label
    from aiat_perception.nodes.common import latched_qos, sensor_qos
    from aiat_perception.replay import topics
    from aiat_perception.static_transforms import matrix_to_quaternion
    from aiat_perception.vision_conversions import detections_to_msg
    calib = KittiCalibration.read(KITTI / 'calib' / f'{FRAME}.txt')
    rect_from_velo = calib.rect_from_velo
    labels = [o for o in read_label(KITTI / 'label_2' / f'{FRAME}.txt') if o.type != 'DontCare']
    # base_link: 2 m behind and 1.5 m below the camera, axes as the camera's (enough for a frame change)
    t = TransformStamped(child_frame_id='camera_rect')
    t.header.frame_id = 'base_link'
    t.transform.translation.z, t.transform.translation.y = -2.0, 1.5
    t.transform.rotation.w = 1.0
    test_node.create_publisher(TFMessage, '/tf_static', latched_qos()).publish(TFMessage(transforms=[t]))
    extrinsic = [*rect_from_velo[:3, 3].tolist(), *matrix_to_quaternion(rect_from_velo[:3, :3])]
    out = FusionOutputs(test_node, name='fusion')
    fusion = start_node('aiat_perception.nodes.fusion', params={
        'reliability': 'reliable', 'extrinsic_source': 'parameters', 'camera_from_lidar': extrinsic,
        'target_frame': 'base_link', 'time_offset_s': -0.03, 'pair_tolerance_s': 0.01})
    dets = test_node.create_publisher(Detection2DArray, 'detections', sensor_qos('reliable', depth=10))
    infos = test_node.create_publisher(CameraInfo, 'camera_info', sensor_qos('reliable', depth=5))
    clouds = test_node.create_publisher(PointCloud2, 'points', sensor_qos('reliable', depth=5))
    # until the base_link link arrives (transient local, after discovery) output stays in the camera frame
    assert spin_until(test_node, lambda: dets.get_subscription_count() and clouds.get_subscription_count()
                      and infos.get_subscription_count()
                      and out.values().get('static_transforms') == '1', timeout=60), fusion.output()
    boxes = np.array([o.bbox for o in labels])
    stamp = time.time_ns()
    info = restamped(kitti_messages[topics.CAMERA_INFO], stamp)
    send_until_counted(test_node, out, infos, info, 'camera_info_received')
    camera_msg = detections_to_msg(boxes, np.ones(len(labels)), [o.type.lower() for o in labels], info.header,
                                   ids=[f'label{i}' for i in range(len(labels))])
    # the lidar stamps the same instant 30 ms later than the camera (time_offset_s -0.03)
    clouds.publish(restamped(kitti_messages[topics.POINTS], stamp + 30_000_000))
    dets.publish(camera_msg)
    assert spin_until(test_node, lambda: out.fused, timeout=20), fusion.output()
    fused = out.fused[0]
    assert stamp_key(fused.header) == stamp_key(camera_msg.header) and fused.header.frame_id == 'base_link'
    by_id = {d.id: d for d in fused.detections}
    assert len(by_id) >= 10, len(by_id)
    for i, obj in enumerate(labels):
        if f'label{i}' in by_id and obj.occluded <= 1:    # a heavily occluded one shows its occluder's points
            d = by_id[f'label{i}']
            assert d.results[0].hypothesis.class_id == obj.type.lower()
            center = np.array(obj.location) - [0.0, obj.dimensions[0] / 2.0, 0.0] + [0.0, 1.5, -2.0]   # base_link
            p = d.bbox.center.position
            assert np.linalg.norm(np.array([p.x, p.y, p.z]) - center) < 0.15 * np.linalg.norm(center), (obj, p)
    # a cloud 30 ms off the corrected stamp is outside the 10 ms tolerance: the frame waits, unpaired
    clouds.publish(restamped(kitti_messages[topics.POINTS], stamp + 10**8))
    dets.publish(detections_to_msg(boxes, np.ones(len(labels)), [o.type.lower() for o in labels],
                                   restamped(camera_msg, stamp + 10**8 + 60_000_000).header))
    # malformed: a CameraInfo with a zero P, detections with a NaN box, a cloud whose fields lie
    bad_info = restamped(kitti_messages[topics.CAMERA_INFO], stamp)
    bad_info.p = [0.0] * 12
    send_until_counted(test_node, out, infos, bad_info, 'camera_info_malformed')
    later = stamp + 2 * 10**9
    bad_cloud = restamped(kitti_messages[topics.POINTS], later + 30_000_000)
    bad_cloud.point_step = 0
    nan_boxes = boxes.copy()
    nan_boxes[0, 0] = np.nan
    clouds.publish(bad_cloud)
    dets.publish(detections_to_msg(nan_boxes, np.ones(len(labels)), [o.type.lower() for o in labels],
                                   restamped(camera_msg, later).header))
    spin_until(test_node, lambda: False, timeout=1.0)   # the worker takes it before the next frame comes
    good = stamp + 4 * 10**9
    clouds.publish(restamped(kitti_messages[topics.POINTS], good + 30_000_000))
    dets.publish(detections_to_msg(nan_boxes, np.ones(len(labels)), [o.type.lower() for o in labels],
                                   restamped(camera_msg, good).header))
    assert spin_until(test_node, lambda: len(out.fused) >= 2, timeout=20), fusion.output()
    assert stamp_key(out.fused[-1].header) == (good // 10**9, good % 10**9)
    assert 'label0' not in {d.id for d in out.fused[-1].detections}          # the NaN box was skipped
    spin_until(test_node, lambda: False, timeout=1.5)
    values = out.values()
    print('fusion diagnostics: ' + ', '.join(f'{k} {v}' for k, v in values.items()
                                             if k.startswith(('frames_', 'camera_info', 'detections_', 'clouds'))))
    assert int(values['frames_processed']) == 2 and int(values['frames_malformed']) == 1, values
    assert int(values['camera_info_malformed']) >= 1 and int(values['detections_skipped']) == 1, values
    assert int(values['frames_unpaired']) == 1, values          # the frame 90 ms from its cloud
    ends = sum(int(values[k]) for k in ('frames_processed', 'frames_dropped', 'frames_malformed', 'frames_unpaired',
                                        'frames_without_camera_info', 'frames_without_extrinsic'))
    assert ends == int(values['frames_received']) == 4, values  # every camera frame ends in exactly one
    assert int(values['frames_in_target_frame']) == 2 and values['last_problem'].startswith('MessageFormatError'), values
    assert values['extrinsic_source'] == 'parameters' and fusion.alive()
    # run-time parameters: the table's rules refuse, a good value is taken
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    from tests.conftest import call_service

    def set_one(name, **value):
        kind = {'double_value': ParameterType.PARAMETER_DOUBLE,
                'string_array_value': ParameterType.PARAMETER_STRING_ARRAY}[next(iter(value))]
        request = SetParameters.Request(parameters=[Parameter(name=name, value=ParameterValue(type=kind, **value))])
        return call_service(test_node, SetParameters, '/fusion/set_parameters', request).results[0]
    refused = set_one('class_depth', string_array_value=['car:lots'])
    assert not refused.successful and 'class_depth' in refused.reason
    refused = set_one('min_range', double_value=500.0)
    assert not refused.successful and 'min_range: must be < max_range' in refused.reason
    assert set_one('time_offset_s', double_value=0.02).successful and fusion.alive()


def test_launch_graph_starts_the_fusion_node_on_remapped_topics(test_node, tmp_path, kitti_messages):
    """`aiat-launch fusion` (the graph behind fusion.launch.py) with every topic remapped: the
    labels' boxes, CameraInfo, a cloud and /tf_static in, fused detections and markers out."""
    from sensor_msgs.msg import CameraInfo, PointCloud2
    from tf2_msgs.msg import TFMessage
    from vision_msgs.msg import Detection2DArray, Detection3DArray

    from aiat_perception.kitti import read_label
    from aiat_perception.nodes.common import latched_qos, sensor_qos
    from aiat_perception.replay import topics
    from aiat_perception.vision_conversions import detections_to_msg
    from tests.integration.test_launcher import Launcher
    test_node.create_publisher(TFMessage, '/tf_static', latched_qos()).publish(kitti_messages[topics.TF_STATIC])
    got = []
    test_node.create_subscription(Detection3DArray, '/fused/objects', got.append, 10)
    out = FusionOutputs(test_node, fused_topic='/fused/objects')
    launcher = Launcher(tmp_path, 'fusion', 'detections_topic:=/front/detections', 'camera_info_topic:=/front/info',
                        'points_topic:=/top/points', 'fused_topic:=/fused/objects', 'target_frame:=velodyne')
    try:
        dets = test_node.create_publisher(Detection2DArray, '/front/detections', 10)
        infos = test_node.create_publisher(CameraInfo, '/front/info', sensor_qos('reliable', 5))
        clouds = test_node.create_publisher(PointCloud2, '/top/points', sensor_qos('reliable', 5))
        assert spin_until(test_node, lambda: dets.get_subscription_count() and infos.get_subscription_count()
                          and clouds.get_subscription_count()
                          and out.values().get('static_transforms', '0') != '0', timeout=60), launcher.output()
        stamp = time.time_ns()
        info = restamped(kitti_messages[topics.CAMERA_INFO], stamp)
        send_until_counted(test_node, out, infos, info, 'camera_info_received')
        clouds.publish(restamped(kitti_messages[topics.POINTS], stamp))
        labels = [o for o in read_label(KITTI / 'label_2' / f'{FRAME}.txt') if o.type != 'DontCare']
        dets.publish(detections_to_msg(np.array([o.bbox for o in labels]), np.ones(len(labels)),
                                       [o.type.lower() for o in labels], info.header))
        assert spin_until(test_node, lambda: got, timeout=30), launcher.output()
        assert stamp_key(got[0].header) == stamp_key(info.header) and got[0].header.frame_id == 'velodyne'
        assert len(got[0].detections) >= 10
        assert test_node.count_publishers('/fused/objects/markers') == 1
    finally:
        launcher.kill()
    assert launcher.proc.returncode == 0, launcher.output()
