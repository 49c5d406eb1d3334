"""``sim``: the PyBullet world as a ROS 2 node publishing camera, lidars, TF and ground truth.

Modes (parameter ``mode``):
- ``realtime``: free-running; simulation time follows the wall clock, every message is stamped with
  the system clock when its data is ready (the scene is the one at the start of rendering, up to one
  render time earlier), frames the CPU cannot render in time are skipped.
- ``lockstep``: simulation time advances in fixed sensor periods and is published on ``/clock``;
  after each camera frame the node waits for a ``Detection2DArray`` with that frame's stamp on
  ``detections_topic`` (or ``lockstep_timeout_s``) before it renders the next one, so no frame is
  dropped and a run is repeatable.

Publishes (relative names, remappable): ``image`` (rgb8) + ``camera_info``, ``scan`` (LaserScan),
``points`` (PointCloud2: x, y, z, intensity, ring), ``ground_truth/detections_2d``
(Detection2DArray: visible actors, boxes from the segmentation mask; class_id = class name, id = actor
name), ``ground_truth/detections_3d`` (Detection3DArray: all actors), ``/tf`` and ``/tf_static``
(map -> base_link -> sensors). Camera, its ground truth and map -> base_link share one stamp.
Parameters: see config/sim.yaml.
"""
from __future__ import annotations

import math
import threading
import time
from typing import Dict

import numpy as np

from aiat_perception.nodes.common import ParameterError, latched_qos, ns_to_stamp, run_node, sensor_qos, stamp_to_ns
from aiat_perception.sim.transforms import quaternion_xyzw
from aiat_perception.vision_conversions import detections_to_msg

MODES = ('realtime', 'lockstep')


# ---------------------------------------------------------------- data -> messages (no graph needed)

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


def _pose_msg(T: np.ndarray, pose=None):
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
        _pose_msg(b.pose, det.bbox.center)
        det.bbox.size.x, det.bbox.size.y, det.bbox.size.z = (float(v) for v in b.size)
        hyp = ObjectHypothesisWithPose()
        hyp.hypothesis.class_id = b.class_name
        hyp.hypothesis.score = 1.0
        _pose_msg(b.pose, hyp.pose.pose)
        det.results = [hyp]
        msg.detections.append(det)
    return msg


# ---------------------------------------------------------------- the node

def make_node():
    from rclpy.node import Node
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import CameraInfo, Image, LaserScan, PointCloud2
    from std_msgs.msg import Header
    from tf2_msgs.msg import TFMessage
    from vision_msgs.msg import Detection2DArray, Detection3DArray

    from aiat_perception.msg_conversions import numpy_to_image
    from aiat_perception.sim.scenario import ScenarioError, load_scenario, resolve_scenario
    from aiat_perception.sim.world import SimWorld

    class SimNode(Node):
        def __init__(self):
            super().__init__('sim')
            declare = lambda name, default: self.declare_parameter(name, default).value  # noqa: E731
            scenario_name = declare('scenario', 'photo_actors')
            seed = int(declare('seed', 0))
            self.mode = declare('mode', 'realtime')
            self.detections_topic = declare('detections_topic', 'detections')
            self.lockstep_timeout_s = float(declare('lockstep_timeout_s', 5.0))
            self.wait_for_detector_s = float(declare('wait_for_detector_s', 60.0))
            self.wait_for_subscribers = self._parse_waits(declare('wait_for_subscribers', ['']))
            self.max_frames = int(declare('max_frames', 0))
            self.clock_start_s = float(declare('clock_start_s', 1.0))
            self.publish_lidar_2d = bool(declare('publish_lidar_2d', True))
            self.publish_lidar_3d = bool(declare('publish_lidar_3d', True))
            self.publish_ground_truth = bool(declare('publish_ground_truth', True))
            self.exact_occlusion = bool(declare('exact_occlusion', True))
            self.ground_truth_3d_frame = declare('ground_truth_3d_frame', 'base_link')
            reliability = declare('reliability', 'reliable')
            camera_rate = float(declare('camera_rate_hz', 0.0))
            range_std_2d = float(declare('lidar_2d_range_std', -1.0))
            dropout_2d = float(declare('lidar_2d_dropout', -1.0))
            range_std_3d = float(declare('lidar_3d_range_std', -1.0))
            dropout_3d = float(declare('lidar_3d_dropout', -1.0))
            if self.mode not in MODES:
                raise ParameterError(f'mode must be one of {MODES}, not {self.mode!r}')
            if self.lockstep_timeout_s <= 0:
                raise ParameterError(f'lockstep_timeout_s must be > 0, got {self.lockstep_timeout_s}')
            try:
                scenario = load_scenario(resolve_scenario(scenario_name))
            except ScenarioError as exc:
                raise ParameterError(f'scenario: {exc}') from exc
            ego = scenario.ego
            if camera_rate > 0:
                ego.camera.rate_hz = camera_rate
            for value, name in ((dropout_2d, 'lidar_2d_dropout'), (dropout_3d, 'lidar_3d_dropout')):
                if value > 1.0:
                    raise ParameterError(f'{name} must be <= 1, got {value}')
            # negative noise parameters keep the scenario's own values
            if range_std_2d >= 0:
                ego.lidar_2d.noise.range_std = range_std_2d
            if dropout_2d >= 0:
                ego.lidar_2d.noise.dropout = dropout_2d
            if range_std_3d >= 0:
                ego.lidar_3d.noise.range_std = range_std_3d
            if dropout_3d >= 0:
                ego.lidar_3d.noise.dropout = dropout_3d
            valid_frames = ('map', ego.frame_id, ego.camera.optical_frame_id)
            if self.ground_truth_3d_frame not in valid_frames:
                raise ParameterError(f'ground_truth_3d_frame must be one of {valid_frames}, '
                                     f'not {self.ground_truth_3d_frame!r}')
            self.scenario = scenario
            self.world = SimWorld(scenario, seed=seed)
            qos = sensor_qos(reliability, depth=5)
            self.pub_image = self.create_publisher(Image, 'image', qos)
            self.pub_info = self.create_publisher(CameraInfo, 'camera_info', qos)
            self.pub_scan = self.create_publisher(LaserScan, 'scan', qos)
            self.pub_points = self.create_publisher(PointCloud2, 'points', qos)
            gt_qos = sensor_qos('reliable', depth=50)
            self.pub_gt2d = self.create_publisher(Detection2DArray, 'ground_truth/detections_2d', gt_qos)
            self.pub_gt3d = self.create_publisher(Detection3DArray, 'ground_truth/detections_3d', gt_qos)
            self.pub_tf = self.create_publisher(TFMessage, '/tf', sensor_qos('reliable', depth=100))
            self.pub_tf_static = self.create_publisher(TFMessage, '/tf_static', latched_qos())
            self.pub_clock = self.create_publisher(Clock, '/clock', sensor_qos('reliable', depth=10))
            self._answered = threading.Condition()
            self._answer_stamps: set = set()
            self.sub_detections = None
            if self.mode == 'lockstep':
                self.sub_detections = self.create_subscription(
                    Detection2DArray, self.detections_topic, self.on_detections, sensor_qos('reliable', depth=10))
            self.Header, self.Clock, self.TFMessage = Header, Clock, TFMessage
            self.numpy_to_image = numpy_to_image
            self.frames = 0
            self.timeouts = 0
            self._stop = threading.Event()
            self._static_sent = False
            self.thread = threading.Thread(target=self._run, name='sim_loop', daemon=True)
            self.thread.start()
            self.get_logger().info(
                f'scenario {scenario.name} ({len(scenario.actors)} actors) from {scenario.source}, mode {self.mode}, '
                f'camera {ego.camera.width}x{ego.camera.height} at {ego.camera.rate_hz} Hz')

        # -------------------------------------------------------- lockstep handshake

        def on_detections(self, msg):
            with self._answered:
                self._answer_stamps.add(stamp_to_ns(msg.header.stamp))
                self._answered.notify_all()

        def _wait_answer(self, stamp_ns: int) -> bool:
            deadline = time.monotonic() + self.lockstep_timeout_s
            with self._answered:
                while stamp_ns not in self._answer_stamps:
                    left = deadline - time.monotonic()
                    if left <= 0 or self._stop.is_set():
                        return False
                    self._answered.wait(min(left, 0.1))
                self._answer_stamps = {s for s in self._answer_stamps if s > stamp_ns}
            return True

        @staticmethod
        def _parse_waits(items) -> Dict[str, int]:
            waits = {}
            for item in items:
                if not item:
                    continue
                topic, sep, count = item.rpartition(':')
                if not sep or not topic or not count.isdigit():
                    raise ParameterError(f"wait_for_subscribers: expected 'topic:count', got {item!r}")
                waits[topic] = int(count)
            return waits

        def _matched(self, topic: str) -> int:
            name = self.resolve_topic_name(topic)
            for pub in self.publishers:
                if pub.topic_name == name:
                    return pub.get_subscription_count()  # matched with our publisher, not just discovered
            return self.count_subscribers(name)

        def _wait_for_peers(self) -> bool:
            deadline = time.monotonic() + self.wait_for_detector_s
            while not self._stop.is_set() and time.monotonic() < deadline:
                ready = (self.pub_image.get_subscription_count() > 0
                         and self.sub_detections.get_publisher_count() > 0
                         and all(self._matched(t) >= n for t, n in self.wait_for_subscribers.items()))
                if ready:
                    time.sleep(0.2)  # the peers' side of the matching completes about now too
                    return True
                time.sleep(0.05)
            return False

        # -------------------------------------------------------- main loop

        def _run(self):
            try:
                self._loop()
            except Exception as exc:
                if self._stop.is_set() or not self.context.ok():
                    return  # shutting down: publishers may already be gone
                # a crash in the loop must be visible, not a silent thread death
                self.get_logger().error(f'simulation loop stopped: {type(exc).__name__}: {exc}')
                raise

        def _loop(self):
            ego = self.scenario.ego
            periods: Dict[str, float] = {'camera': 1.0 / ego.camera.rate_hz}
            if self.publish_lidar_2d and ego.lidar_2d.enabled:
                periods['lidar_2d'] = 1.0 / ego.lidar_2d.rate_hz
            if self.publish_lidar_3d and ego.lidar_3d.enabled:
                periods['lidar_3d'] = 1.0 / ego.lidar_3d.rate_hz
            ticks = {name: 0 for name in periods}
            lockstep = self.mode == 'lockstep'
            if lockstep:
                self.get_logger().info(f'lockstep: waiting for a subscriber on {self.pub_image.topic_name} and a '
                                       f'publisher on {self.detections_topic}')
                if not self._wait_for_peers():
                    self.get_logger().warn('lockstep: no detector appeared; running on with timeouts')
            wall_start = time.monotonic()
            while not self._stop.is_set():
                name = min(periods, key=lambda n: (ticks[n] * periods[n], n != 'camera'))
                due = ticks[name] * periods[name]
                if lockstep:
                    stamp_ns = int(round((self.clock_start_s + due) * 1e9))
                    self.world.step(due - self.world.time)
                    self.pub_clock.publish(self.Clock(clock=ns_to_stamp(stamp_ns)))
                    stamp_of = lambda value=stamp_ns: value  # noqa: E731
                else:
                    now = time.monotonic() - wall_start
                    if due > now:
                        time.sleep(min(due - now, 0.05))
                        continue
                    self.world.step(max(0.0, now - self.world.time))
                    # stamped when the data is ready (after rendering/ray casting), like a driver
                    # publishing a frame, so receive time - stamp is the downstream latency
                    stamp_of = time.time_ns
                if name == 'camera':
                    stamp_ns = self._publish_camera(stamp_of)
                    self.frames += 1
                    if lockstep and not self._wait_answer(stamp_ns):
                        if self._stop.is_set():
                            return
                        self.timeouts += 1
                        self.get_logger().warn(f'lockstep: no detections for frame {self.frames} '
                                               f'(stamp {stamp_ns}) within {self.lockstep_timeout_s} s')
                    if self.max_frames and self.frames >= self.max_frames:
                        self.get_logger().info(f'published {self.frames} frames ({self.timeouts} timeouts), done')
                        self.context.try_shutdown()
                        return
                elif name == 'lidar_2d':
                    scan = self.world.scan_2d()
                    stamp = ns_to_stamp(stamp_of())
                    self._publish_tf(stamp)
                    self.pub_scan.publish(laser_scan_msg(scan, self._header(stamp, ego.lidar_2d.frame_id)))
                else:
                    cloud = self.world.scan_3d()
                    stamp = ns_to_stamp(stamp_of())
                    self._publish_tf(stamp)
                    self.pub_points.publish(point_cloud_msg(cloud, self._header(stamp, ego.lidar_3d.frame_id)))
                if lockstep:
                    ticks[name] += 1
                else:  # skip ticks the CPU could not keep up with
                    now = time.monotonic() - wall_start
                    ticks[name] = max(ticks[name] + 1, int(math.floor(now / periods[name])))

        def _header(self, stamp, frame_id):
            return self.Header(stamp=stamp, frame_id=frame_id)

        def _publish_tf(self, stamp):
            transforms = self.world.transforms()
            if not self._static_sent:
                self.pub_tf_static.publish(self.TFMessage(transforms=[
                    transform_stamped(p, c, T, stamp) for p, c, T, static in transforms if static]))
                self._static_sent = True
            self.pub_tf.publish(self.TFMessage(transforms=[
                transform_stamped(p, c, T, stamp) for p, c, T, static in transforms if not static]))

        def _publish_camera(self, stamp_of) -> int:
            cam = self.scenario.ego.camera
            frame = self.world.render_camera()
            boxes2d = boxes3d = None
            if self.publish_ground_truth:
                boxes2d = self.world.ground_truth_2d(frame, exact_occlusion=self.exact_occlusion)
                boxes3d = self.world.ground_truth_3d(self.ground_truth_3d_frame)
            stamp_ns = stamp_of()
            stamp = ns_to_stamp(stamp_ns)
            self._publish_tf(stamp)
            header = self._header(stamp, cam.optical_frame_id)
            if boxes2d is not None:
                # ground truth first: a consumer pairing by stamp then never waits for it
                self.pub_gt2d.publish(ground_truth_2d_msg(boxes2d, header))
                self.pub_gt3d.publish(ground_truth_3d_msg(boxes3d, self._header(stamp, self.ground_truth_3d_frame)))
            self.pub_info.publish(camera_info_msg(frame.K, cam.width, cam.height, header))
            self.pub_image.publish(self.numpy_to_image(frame.rgb, 'rgb8', header))
            return stamp_ns

        def close(self):
            self._stop.set()
            with self._answered:
                self._answered.notify_all()
            if self.thread.is_alive() and threading.current_thread() is not self.thread:
                self.thread.join(timeout=5.0)
            self.world.close()

    return SimNode()


def main(args=None):
    raise SystemExit(run_node(make_node, args))


if __name__ == '__main__':
    main()
