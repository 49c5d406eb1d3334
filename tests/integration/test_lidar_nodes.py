"""lidar_detector and scan_detector as real processes over DDS, fed real data: KITTI velodyne scans
(000134: camera-cropped, 000001: full 360 deg HDL-64E) as PointCloud2 and the leg-tracker bags' Hokuyo
scans as LaserScan. Checked: Detection3DArray and MarkerArray carry the input's header, /diagnostics
has the per-stage latency, malformed messages are counted and the node lives on, target_frame uses
/tf_static."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest

from aiat_perception.assets import shared_data
from tests.conftest import spin_until

LIDAR_STAGES = ('conversion', 'filter', 'ground', 'clustering', 'fitting', 'publish')
SCAN_STAGES = ('conversion', 'filter', 'segmentation', 'fitting', 'publish')


class Outputs:
    """The detector's outputs as the test node receives them."""

    def __init__(self, node, name: str):
        from diagnostic_msgs.msg import DiagnosticArray
        from std_msgs.msg import Float64MultiArray
        from vision_msgs.msg import Detection3DArray
        from visualization_msgs.msg import MarkerArray

        self.detections, self.markers, self.statuses, self.latency = [], [], [], []
        node.create_subscription(Detection3DArray, 'detections', self.detections.append, 50)
        node.create_subscription(MarkerArray, 'detections/markers', self.markers.append, 50)
        node.create_subscription(Float64MultiArray, f'/{name}/latency', self.latency.append, 50)
        node.create_subscription(DiagnosticArray, '/diagnostics', lambda m: self.statuses.extend(
            s for s in m.status if name in s.name), 10)

    def values(self) -> dict:
        from aiat_perception.vision_conversions import diagnostic_values
        return diagnostic_values(self.statuses[-1]) if self.statuses else {}

    def by_stamp(self, msgs):
        return {(m.header.stamp.sec, m.header.stamp.nanosec): m for m in msgs}


def stamp_key(header):
    return header.stamp.sec, header.stamp.nanosec


def kitti_cloud(frame: str, stamp_ns: int, frame_id: str = 'velodyne'):
    from std_msgs.msg import Header

    from aiat_perception.kitti import read_velodyne
    from aiat_perception.msg_conversions import array_to_pointcloud2
    from aiat_perception.nodes.common import ns_to_stamp
    raw = read_velodyne(shared_data('kitti_object', 'training', 'velodyne', f'{frame}.bin'))
    points = np.zeros(len(raw), dtype=[('x', '<f4'), ('y', '<f4'), ('z', '<f4'), ('intensity', '<f4')])
    for i, name in enumerate(('x', 'y', 'z', 'intensity')):
        points[name] = raw[:, i]
    return array_to_pointcloud2(points, Header(stamp=ns_to_stamp(stamp_ns), frame_id=frame_id)), raw


def publish_spaced(node, pub, msgs, gap: float) -> None:
    """One message at a time with ``gap`` seconds between them: the node's input keeps one."""
    for msg in msgs:
        pub.publish(msg)
        spin_until(node, lambda: False, timeout=gap)


def not_processed(values: dict) -> int:
    return sum(int(values.get(f'frames_{k}', 0)) for k in ('malformed', 'dropped', 'lost'))


def send_malformed(node, out, pub, bad, gap: float = 0.3, timeout: float = 20.0) -> dict:
    """Publish ``bad`` one at a time; each must end as malformed, or (on a machine too loaded to keep
    up with ``gap``) as dropped or lost, never processed or failed."""
    spin_until(node, lambda: False, timeout=1.2)       # fresh diagnostics
    before = dict(out.values())
    publish_spaced(node, pub, bad, gap)
    assert spin_until(node, lambda: not_processed(out.values()) >= not_processed(before) + len(bad), timeout), \
        (before, out.values())
    values = out.values()
    assert not_processed(values) == not_processed(before) + len(bad), (before, values)
    assert int(values['frames_malformed']) >= 1 and int(values['frames_failed']) == 0, values
    assert int(values['frames_processed']) == int(before['frames_processed']), (before, values)
    return values


def test_lidar_detector_on_real_kitti_scans(test_node, start_node):
    from sensor_msgs.msg import PointCloud2, PointField

    from aiat_perception.nodes.common import sensor_qos
    out = Outputs(test_node, 'lidar_detector')
    detector = start_node('aiat_perception.nodes.lidar_detector', params={'reliability': 'reliable'})
    pub = test_node.create_publisher(PointCloud2, 'points', sensor_qos('reliable', depth=10))
    assert spin_until(test_node, lambda: pub.get_subscription_count() > 0 and out.statuses, timeout=60), \
        detector.output()
    now = time.time_ns()
    clouds = [kitti_cloud(frame, now + k * 100_000_000)[0] for k, frame in enumerate(['000134', '000001'] * 3)]
    publish_spaced(test_node, pub, clouds, gap=0.6)
    assert spin_until(test_node, lambda: len(out.detections) >= 6 and len(out.latency) >= 6, timeout=60), (
        len(out.detections), detector.output())
    sent = out.by_stamp(clouds)
    for msg in out.detections:
        assert stamp_key(msg.header) in sent and msg.header.frame_id == 'velodyne'
    first = out.by_stamp(out.detections)[stamp_key(clouds[0].header)]   # KITTI 000134
    classes = [d.results[0].hypothesis.class_id for d in first.detections]
    print(f'000134: {len(classes)} detections: ' + ', '.join(f'{c} {classes.count(c)}' for c in sorted(set(classes))))
    assert sum(c in ('car', 'pedestrian', 'cyclist') for c in classes) >= 8, classes   # 15 labelled objects
    car = next(d for d in first.detections if d.results[0].hypothesis.class_id == 'car')
    assert 3.0 < car.bbox.size.x < 6.0 and car.bbox.center.position.x > 5.0
    # markers only while subscribed (the test node is): DELETEALL first, then box + label per detection
    assert spin_until(test_node, lambda: len(out.markers) >= 1, timeout=10)
    marker_msg = out.markers[-1]
    assert marker_msg.markers[0].action == 3   # DELETEALL
    assert {stamp_key(m.header) for m in marker_msg.markers} <= set(sent)
    assert len(marker_msg.markers) == 1 + 2 * len(out.by_stamp(out.detections)[stamp_key(marker_msg.markers[0].header)].detections)
    labels = out.latency[-1].layout.dim[0].label.split(',')
    assert labels[:4] == ['stamp_s', 'pipeline_ms', 'processing_ms', 'waited_ms'] and labels[-1] == 'detections'
    assert [f'{s}_ms' for s in LIDAR_STAGES] == labels[4:-1]

    # malformed clouds: counted, skipped, the node carries on
    good = clouds[0]
    bad = [PointCloud2(height=1, width=10, point_step=0, row_step=0, data=bytes(160), fields=good.fields),
           PointCloud2(height=1, width=1000, point_step=16, row_step=16000, data=bytes(1600), fields=good.fields),
           PointCloud2(height=1, width=10, point_step=16, row_step=160, data=bytes(160),
                       fields=[PointField(name='x', offset=0, datatype=7, count=1)]),           # no y, z
           PointCloud2(height=1, width=10, point_step=16, row_step=160, data=bytes(160),
                       fields=[PointField(name=n, offset=4 * i, datatype=99, count=1)
                               for i, n in enumerate('xyz')])]                                 # datatype 99
    values = send_malformed(test_node, out, pub, bad)
    malformed = int(values['frames_malformed'])
    assert detector.alive(), detector.output()
    assert 'MessageFormatError' in values['last_problem'], values
    # a cloud of NaN points and an empty cloud are valid input: no detections, not malformed
    nan_cloud, _ = kitti_cloud('000134', time.time_ns())
    data = np.frombuffer(bytes(nan_cloud.data), np.float32).copy()
    data[:] = np.nan
    nan_cloud.data = data.view(np.uint8).tobytes()
    empty, _ = kitti_cloud('000134', time.time_ns() + 1)
    empty.width, empty.row_step, empty.data = 0, 0, b''
    before = len(out.detections)
    publish_spaced(test_node, pub, [nan_cloud, empty, clouds[1]], gap=0.5)
    assert spin_until(test_node, lambda: len(out.detections) >= before + 3, timeout=30), detector.output()
    by_stamp = out.by_stamp(out.detections)
    assert len(by_stamp[stamp_key(nan_cloud.header)].detections) == 0
    assert len(by_stamp[stamp_key(empty.header)].detections) == 0
    spin_until(test_node, lambda: False, timeout=1.5)
    values = out.values()
    assert int(values['frames_malformed']) == malformed and int(values['frames_failed']) == 0, values
    assert int(values['non_finite_points_total_last_frame']) == len(data) // 4
    # every cloud sent ends as exactly one of processed, dropped, lost, malformed
    sent = len(clouds) + len(bad) + 3
    ends = sum(int(values[f'frames_{k}']) for k in ('processed', 'dropped', 'lost', 'malformed'))
    assert ends == sent and int(values['frames_received']) + int(values['frames_lost']) == sent, values
    for stage in ('waited', *LIDAR_STAGES):
        assert float(values[f'{stage}_ms_p50']) >= 0.0, (stage, values)
    assert float(values['clustering_ms_max']) > 0 and float(values['processing_ms_p50']) > 0
    print('lidar_detector diagnostics: ' + ', '.join(f'{k} {values[k]}' for k in values if k.endswith('_p50')))
    assert detector.alive(), detector.output()


def test_lidar_detector_publishes_in_target_frame_from_tf_static(test_node, start_node):
    from geometry_msgs.msg import TransformStamped
    from sensor_msgs.msg import PointCloud2
    from tf2_msgs.msg import TFMessage

    from aiat_perception.lidar.detector import PointCloudDetector
    from aiat_perception.lidar.output import yaw_of_quaternion
    from aiat_perception.nodes.common import latched_qos, sensor_qos
    from aiat_perception.node_params.lidar_detector import TABLE
    from aiat_perception.node_params.lidar_common import core_values
    from aiat_perception.lidar.detector import PARAMETERS

    out = Outputs(test_node, 'lidar_detector')
    tf_pub = test_node.create_publisher(TFMessage, '/tf_static', latched_qos())
    yaw = 0.3
    t = TransformStamped(child_frame_id='velodyne')
    t.header.frame_id = 'base_link'
    t.transform.translation.x, t.transform.translation.z = 0.8, 1.73
    t.transform.rotation.z, t.transform.rotation.w = math.sin(yaw / 2), math.cos(yaw / 2)
    tf_pub.publish(TFMessage(transforms=[t]))      # before the node starts: transient local delivers it
    detector = start_node('aiat_perception.nodes.lidar_detector',
                          params={'reliability': 'reliable', 'target_frame': 'base_link'})
    pub = test_node.create_publisher(PointCloud2, 'points', sensor_qos('reliable', depth=10))
    # the node publishes in the sensor frame until the transform arrives; wait until it reports it
    assert spin_until(test_node, lambda: pub.get_subscription_count() > 0
                      and out.values().get('static_transforms') == '1', timeout=60), detector.output()
    cloud, raw = kitti_cloud('000134', time.time_ns())
    pub.publish(cloud)
    assert spin_until(test_node, lambda: out.detections, timeout=30), detector.output()
    msg = out.detections[0]
    assert msg.header.frame_id == 'base_link' and stamp_key(msg.header) == stamp_key(cloud.header)
    local = PointCloudDetector(core_values(TABLE.defaults, PARAMETERS))(raw[:, :3]).detections
    assert len(msg.detections) == len(local)
    c, s = math.cos(yaw), math.sin(yaw)
    for det, ref in zip(msg.detections, local):
        x, y, z = ref.center
        expect = (0.8 + c * x - s * y, s * x + c * y, 1.73 + z)
        got = det.bbox.center.position
        assert np.allclose((got.x, got.y, got.z), expect, atol=1e-3)
        o = det.bbox.center.orientation
        assert abs((yaw_of_quaternion(o.x, o.y, o.z, o.w) - (ref.yaw + yaw) + math.pi) % (2 * math.pi) - math.pi) < 1e-3
    spin_until(test_node, lambda: False, timeout=1.2)
    assert int(out.values()['frames_in_target_frame']) >= 1


def leg_scans(count: int):
    """The first ``count`` LaserScans of a real leg-tracker bag as rclpy messages (bag header kept)."""
    from builtin_interfaces.msg import Time
    from sensor_msgs.msg import LaserScan
    from std_msgs.msg import Header

    from aiat_perception.bag_reading import iterate_messages
    out = []
    path = shared_data('laser_scans', 'leg_tracker_positive_1_extracted.bag')
    for _, _, m in iterate_messages(path, ['/training_scan']):
        stamp = Time(sec=int(m.header.stamp.sec), nanosec=int(m.header.stamp.nanosec))
        out.append(LaserScan(header=Header(stamp=stamp, frame_id=m.header.frame_id),
                             angle_min=float(m.angle_min), angle_max=float(m.angle_max),
                             angle_increment=float(m.angle_increment), time_increment=float(m.time_increment),
                             scan_time=float(m.scan_time), range_min=float(m.range_min),
                             range_max=float(m.range_max), ranges=np.asarray(m.ranges, np.float32).tolist(),
                             intensities=np.asarray(m.intensities, np.float32).tolist()))
        if len(out) >= count:
            break
    return out


def test_scan_detector_on_real_leg_scans(test_node, start_node):
    from sensor_msgs.msg import LaserScan

    from aiat_perception.nodes.common import sensor_qos
    out = Outputs(test_node, 'scan_detector')
    detector = start_node('aiat_perception.nodes.scan_detector',
                          params={'reliability': 'reliable', 'output_other': True})
    pub = test_node.create_publisher(LaserScan, 'scan', sensor_qos('reliable', depth=10))
    assert spin_until(test_node, lambda: pub.get_subscription_count() > 0 and out.statuses, timeout=60), \
        detector.output()
    scans = leg_scans(40)
    publish_spaced(test_node, pub, scans, gap=0.05)
    assert spin_until(test_node, lambda: len(out.detections) >= 30, timeout=60), (len(out.detections), detector.output())
    sent = out.by_stamp(scans)
    assert all(stamp_key(m.header) in sent and m.header.frame_id == scans[0].header.frame_id for m in out.detections)
    classes = [d.results[0].hypothesis.class_id for m in out.detections for d in m.detections]
    assert classes.count('person') >= 20 and classes.count('leg') >= 20 and 'other' in classes, set(classes)
    assert spin_until(test_node, lambda: out.markers, timeout=10)
    assert stamp_key(out.markers[-1].markers[0].header) in sent

    good = scans[0]

    def broken(**fields):
        msg = LaserScan(header=good.header, angle_min=good.angle_min, angle_max=good.angle_max,
                        angle_increment=good.angle_increment, range_min=good.range_min,
                        range_max=good.range_max, ranges=list(good.ranges))
        for key, value in fields.items():
            setattr(msg, key, value)
        return msg
    bad = [broken(angle_increment=float('nan')), broken(ranges=[]), broken(angle_increment=0.0),
           broken(range_max=float('inf')), broken(ranges=[1.0] * 100_001)]
    values = send_malformed(test_node, out, pub, bad)
    malformed = int(values['frames_malformed'])
    # all-NaN beams are a valid scan with nothing in it
    nothing = broken(ranges=[float('nan')] * len(good.ranges))
    nothing.header.stamp.nanosec = (good.header.stamp.nanosec + 1) % 1_000_000_000
    before = len(out.detections)
    publish_spaced(test_node, pub, [nothing], gap=0.3)
    assert spin_until(test_node, lambda: len(out.detections) > before, timeout=20), detector.output()
    assert len(out.detections[-1].detections) == 0
    spin_until(test_node, lambda: False, timeout=1.2)
    values = out.values()
    for stage in SCAN_STAGES:
        assert float(values[f'{stage}_ms_p50']) >= 0.0, (stage, values)
    assert int(values['frames_failed']) == 0 and int(values['frames_malformed']) == malformed, values
    sent = len(scans) + len(bad) + 1
    ends = sum(int(values[f'frames_{k}']) for k in ('processed', 'dropped', 'lost', 'malformed'))
    assert ends == sent, values
    assert values['lost_source'] in ('publication_sequence', 'message_lost_event', 'none'), values
    print('scan_detector diagnostics: ' + ', '.join(f'{k} {values[k]}' for k in values if k.endswith('_p50')))
    assert detector.alive(), detector.output()


@pytest.mark.parametrize('node', ['lidar_detector', 'scan_detector'])
def test_out_of_range_parameters_are_refused(test_node, start_node, node):
    """rclpy refuses a set outside a declared range; the table's cross-field checks refuse the rest."""
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters
    detector = start_node(f'aiat_perception.nodes.{node}')
    client = test_node.create_client(SetParameters, f'/{node}/set_parameters')
    assert spin_until(test_node, client.service_is_ready, timeout=60), detector.output()

    def set_double(name, value):
        request = SetParameters.Request(parameters=[Parameter(name=name, value=ParameterValue(
            type=ParameterType.PARAMETER_DOUBLE, double_value=value))])
        future = client.call_async(request)
        assert spin_until(test_node, future.done, timeout=10)
        return future.result().results[0]
    low, high = (45.0, 40.0) if node == 'lidar_detector' else (9.0, 8.0)
    assert not set_double('range_max', 1e9).successful            # outside the declared range: rclpy
    assert set_double('range_max', high).successful
    refused = set_double('range_min', low)                        # inside its range, but > range_max
    assert not refused.successful and 'range_min: must be < range_max' in refused.reason
    assert set_double('range_min', 0.5).successful
    assert detector.alive()


def test_launch_graphs_start_both_detectors_on_remapped_topics(test_node, tmp_path):
    """`aiat-launch lidar_detector` / `scan_detector` (the graphs behind the ros2 launch files) with
    the input and output topics remapped: a real cloud and a real scan in, detections out."""
    from sensor_msgs.msg import LaserScan, PointCloud2
    from vision_msgs.msg import Detection3DArray

    from aiat_perception.nodes.common import sensor_qos
    from tests.integration.test_launcher import Launcher
    got = {'lidar': [], 'scan': []}
    test_node.create_subscription(Detection3DArray, '/lidar/objects', got['lidar'].append, 10)
    test_node.create_subscription(Detection3DArray, '/scan/persons', got['scan'].append, 10)
    launchers = [Launcher(tmp_path, 'lidar_detector', 'points_topic:=/velodyne_points',
                          'detections_topic:=/lidar/objects', 'reliability:=reliable'),
                 Launcher(tmp_path, 'scan_detector', 'scan_topic:=/front/scan', 'detections_topic:=/scan/persons',
                          'reliability:=reliable')]
    try:
        points = test_node.create_publisher(PointCloud2, '/velodyne_points', sensor_qos('reliable', 10))
        scans = test_node.create_publisher(LaserScan, '/front/scan', sensor_qos('reliable', 10))
        assert spin_until(test_node, lambda: points.get_subscription_count() and scans.get_subscription_count(),
                          timeout=60), [launcher.output() for launcher in launchers]
        cloud, _ = kitti_cloud('000134', time.time_ns())
        points.publish(cloud)
        publish_spaced(test_node, scans, leg_scans(5), gap=0.05)
        assert spin_until(test_node, lambda: got['lidar'] and got['scan'], timeout=30), \
            [launcher.output() for launcher in launchers]
        assert stamp_key(got['lidar'][0].header) == stamp_key(cloud.header)
        assert len(got['lidar'][0].detections) >= 8
        assert test_node.count_publishers('/lidar/objects/markers') == 1
    finally:
        for launcher in launchers:
            launcher.kill()
    for launcher in launchers:
        assert launcher.proc.returncode == 0, launcher.output()
