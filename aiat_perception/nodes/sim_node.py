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
Parameters: aiat_perception/node_params/sim.py, documented in config/sim.yaml. Timing (the
multi-rate scheduler, the lockstep handshake): :mod:`aiat_perception.sim.scheduler`.
"""
from __future__ import annotations

import threading
import time

from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, LaserScan, PointCloud2
from std_msgs.msg import Header
from tf2_msgs.msg import TFMessage
from vision_msgs.msg import Detection2DArray, Detection3DArray

from aiat_perception.msg_conversions import numpy_to_image
from aiat_perception.node_params.sim import TABLE, parse_waits
from aiat_perception.nodes.common import (ParameterError, declare_table, finish, latched_qos, ns_to_stamp,
                                          run_node, sensor_qos, stamp_to_ns)
from aiat_perception.sensor_conversions import (camera_info_msg, ground_truth_2d_msg, ground_truth_3d_msg,
                                                laser_scan_msg, point_cloud_msg, transform_stamped)
from aiat_perception.sim.scenario import ScenarioError, load_scenario, resolve_scenario
from aiat_perception.sim.scheduler import LockstepHandshake, SensorScheduler
from aiat_perception.sim.world import SimWorld


def _apply_overrides(scenario, p) -> None:
    """Parameter overrides of the scenario's sensors (negative noise values keep the scenario's)."""
    ego = scenario.ego
    if p['camera_rate_hz'] > 0:
        ego.camera.rate_hz = p['camera_rate_hz']
    for lidar, prefix in ((ego.lidar_2d, 'lidar_2d'), (ego.lidar_3d, 'lidar_3d')):
        if p[f'{prefix}_range_std'] >= 0:
            lidar.noise.range_std = p[f'{prefix}_range_std']
        if p[f'{prefix}_dropout'] >= 0:
            lidar.noise.dropout = p[f'{prefix}_dropout']


class SimNode(Node):
    def __init__(self, node_name: str = 'sim', **kwargs):
        super().__init__(node_name, **kwargs)
        p = self.p = declare_table(self, TABLE)
        self.lockstep = p['mode'] == 'lockstep'
        self.lockstep_sensor = p['lockstep_sensor'] if self.lockstep else 'camera'
        self.wait_for_subscribers = parse_waits(p['wait_for_subscribers'])
        try:
            scenario = load_scenario(resolve_scenario(p['scenario']))
        except ScenarioError as exc:
            raise ParameterError(f'scenario: {exc}') from exc
        _apply_overrides(scenario, p)
        ego = scenario.ego
        valid_frames = ('map', ego.frame_id, ego.camera.optical_frame_id)
        if p['ground_truth_3d_frame'] not in valid_frames:
            raise ParameterError(f'ground_truth_3d_frame: must be one of {valid_frames}, '
                                 f'not {p["ground_truth_3d_frame"]!r}')
        if self.lockstep_sensor == 'lidar_3d' and not (p['publish_lidar_3d'] and ego.lidar_3d.enabled):
            raise ParameterError('lockstep_sensor: lidar_3d, but the 3D lidar is disabled (publish_lidar_3d '
                                 'or the scenario)')
        self.scenario = scenario
        self.world = SimWorld(scenario, seed=p['seed'])
        qos = sensor_qos(p['reliability'], depth=5)
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
        self.handshake = LockstepHandshake(p['lockstep_timeout_s'])
        self.sub_detections = None
        if self.lockstep:
            self.sub_detections = self.create_subscription(
                Detection3DArray if self.lockstep_sensor == 'lidar_3d' else Detection2DArray, p['detections_topic'],
                lambda msg: self.handshake.answer(stamp_to_ns(msg.header.stamp)), sensor_qos('reliable', depth=10))
        self.frames = 0
        self.timeouts = 0
        self._static_sent = False
        self.thread = threading.Thread(target=self._run, name='sim_loop', daemon=True)
        self.thread.start()
        self.get_logger().info(
            f'scenario {scenario.name} ({len(scenario.actors)} actors) from {scenario.source}, mode {p["mode"]}, '
            f'camera {ego.camera.width}x{ego.camera.height} at {ego.camera.rate_hz} Hz')

    # -------------------------------------------------------- lockstep start

    def _matched(self, topic: str) -> int:
        name = self.resolve_topic_name(topic)
        for pub in self.publishers:
            if pub.topic_name == name:
                return pub.get_subscription_count()  # matched with our publisher, not just discovered
        return self.count_subscribers(name)

    def _wait_for_peers(self) -> bool:
        deadline = time.monotonic() + self.p['wait_for_detector_s']
        while not self.handshake.stopped and time.monotonic() < deadline:
            sensor = self.pub_points if self.lockstep_sensor == 'lidar_3d' else self.pub_image
            ready = (sensor.get_subscription_count() > 0
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
            if self.handshake.stopped or not self.context.ok():
                return  # shutting down: publishers may already be gone
            # a crash in the loop must be visible, not a silent thread death
            self.get_logger().error(f'simulation loop stopped: {type(exc).__name__}: {exc}')
            finish(self, 1)
            raise

    def _loop(self):
        ego, p = self.scenario.ego, self.p
        # a disabled camera is not rendered when another sensor paces the lockstep
        rates = {'camera': ego.camera.rate_hz} if ego.camera.enabled or self.lockstep_sensor == 'camera' else {}
        if p['publish_lidar_2d'] and ego.lidar_2d.enabled:
            rates['lidar_2d'] = ego.lidar_2d.rate_hz
        if p['publish_lidar_3d'] and ego.lidar_3d.enabled:
            rates['lidar_3d'] = ego.lidar_3d.rate_hz
        schedule = SensorScheduler(rates)
        if self.lockstep:
            sensor = self.pub_points if self.lockstep_sensor == 'lidar_3d' else self.pub_image
            self.get_logger().info(f'lockstep: waiting for a subscriber on {sensor.topic_name} and a '
                                   f'publisher on {p["detections_topic"]}')
            if not self._wait_for_peers():
                self.get_logger().warn('lockstep: no detector appeared; running on with timeouts')
        wall_start = time.monotonic()
        while not self.handshake.stopped:
            name, due = schedule.next()
            if self.lockstep:
                stamp_ns = int(round((p['clock_start_s'] + due) * 1e9))
                self.world.step(due - self.world.time)
                self.pub_clock.publish(Clock(clock=ns_to_stamp(stamp_ns)))
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
            elif name == 'lidar_2d':
                scan = self.world.scan_2d()
                stamp = ns_to_stamp(stamp_of())
                self._publish_tf(stamp)
                self.pub_scan.publish(laser_scan_msg(scan, Header(stamp=stamp, frame_id=ego.lidar_2d.frame_id)))
            else:
                stamp_ns = self._publish_lidar_3d(stamp_of)
            if name == self.lockstep_sensor:
                self.frames += 1
                if self.lockstep and not self.handshake.wait(stamp_ns):
                    if self.handshake.stopped:
                        return
                    self.timeouts += 1
                    self.get_logger().warn(f'lockstep: no detections for frame {self.frames} '
                                           f'(stamp {stamp_ns}) within {p["lockstep_timeout_s"]} s')
                if p['max_frames'] and self.frames >= p['max_frames']:
                    self.get_logger().info(f'published {self.frames} frames ({self.timeouts} timeouts), done')
                    finish(self)
                    return
            schedule.served(name, None if self.lockstep else time.monotonic() - wall_start)

    def _publish_tf(self, stamp):
        transforms = self.world.transforms()
        if not self._static_sent:
            self.pub_tf_static.publish(TFMessage(transforms=[
                transform_stamped(p, c, T, stamp) for p, c, T, static in transforms if static]))
            self._static_sent = True
        self.pub_tf.publish(TFMessage(transforms=[
            transform_stamped(p, c, T, stamp) for p, c, T, static in transforms if not static]))

    def _publish_lidar_3d(self, stamp_of) -> int:
        p, lidar = self.p, self.scenario.ego.lidar_3d
        cloud = self.world.scan_3d()
        with_truth = p['publish_ground_truth'] and self.lockstep_sensor == 'lidar_3d'
        boxes3d = self.world.ground_truth_3d(p['ground_truth_3d_frame']) if with_truth else None
        stamp_ns = stamp_of()
        stamp = ns_to_stamp(stamp_ns)
        self._publish_tf(stamp)
        if boxes3d is not None:  # ground truth first: a consumer pairing by stamp then never waits for it
            self.pub_gt3d.publish(ground_truth_3d_msg(boxes3d, Header(stamp=stamp, frame_id=p['ground_truth_3d_frame'])))
        self.pub_points.publish(point_cloud_msg(cloud, Header(stamp=stamp, frame_id=lidar.frame_id)))
        return stamp_ns

    def _publish_camera(self, stamp_of) -> int:
        cam, p = self.scenario.ego.camera, self.p
        frame = self.world.render_camera()
        boxes2d = boxes3d = None
        if p['publish_ground_truth']:
            boxes2d = self.world.ground_truth_2d(frame, exact_occlusion=p['exact_occlusion'])
            boxes3d = self.world.ground_truth_3d(p['ground_truth_3d_frame'])
        stamp_ns = stamp_of()
        stamp = ns_to_stamp(stamp_ns)
        self._publish_tf(stamp)
        header = Header(stamp=stamp, frame_id=cam.optical_frame_id)
        if boxes2d is not None:
            # ground truth first: a consumer pairing by stamp then never waits for it
            self.pub_gt2d.publish(ground_truth_2d_msg(boxes2d, header))
            if self.lockstep_sensor == 'camera':  # else it comes with each cloud
                self.pub_gt3d.publish(ground_truth_3d_msg(
                    boxes3d, Header(stamp=stamp, frame_id=p['ground_truth_3d_frame'])))
        self.pub_info.publish(camera_info_msg(frame.K, cam.width, cam.height, header))
        self.pub_image.publish(numpy_to_image(frame.rgb, 'rgb8', header))
        return stamp_ns

    def close(self):
        self.handshake.stop()
        if self.thread.is_alive() and threading.current_thread() is not self.thread:
            self.thread.join(timeout=5.0)
        self.world.close()


def main(args=None):
    raise SystemExit(run_node(SimNode, args))


if __name__ == '__main__':
    main()
