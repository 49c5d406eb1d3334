"""fusion: camera detections + lidar cloud -> a 3D position for every camera detection, and a
camera-lidar agreement check that needs no ground truth (core: :mod:`aiat_perception.fusion`).

Topics (relative, remap as needed):
  in   detections (vision_msgs/Detection2DArray, the camera detector's; QoS detections_reliability)
       camera_info (sensor_msgs/CameraInfo of that camera; the newest valid one is used)
       points (sensor_msgs/PointCloud2, any layout with float x/y/z; sensor-data QoS, depth 1)
       lidar_detections (vision_msgs/Detection3DArray, the lidar detector's; only with use_lidar_detections)
       /tf_static (tf2_msgs/TFMessage, transient local: camera <- lidar with extrinsic_source tf_static,
                   and target_frame)
  out  fused_detections (vision_msgs/Detection3DArray: the camera's header (stamp), frame = the camera
                   frame or target_frame; per object the 2D detection's id, the camera's class and score,
                   the fused position with its covariance, the lidar box's size and heading when one is
                   associated)
       fused_detections/markers (visualization_msgs/MarkerArray, while subscribed)
       ~/latency (std_msgs/Float64MultiArray, labels in its layout), /diagnostics
Pairing: each Detection2DArray with the cloud (and lidar detections) nearest in stamp within
pair_tolerance_s, lidar stamps shifted by time_offset_s (:class:`NearestStampPairer`); the pairs go
to a one-frame slot and a worker thread fuses the newest (a busy node skips frames, counted as
dropped). Parameters: aiat_perception/node_params/fusion.py, documented in config/fusion.yaml.
"""
from __future__ import annotations

import threading
import time
from typing import Dict, Optional

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, PointCloud2
from std_msgs.msg import Float64MultiArray, Header, MultiArrayDimension
from tf2_msgs.msg import TFMessage
from vision_msgs.msg import Detection2DArray, Detection3DArray
from visualization_msgs.msg import MarkerArray

from aiat_perception.fusion import AgreementMonitor, CameraModel, CameraModelError, FusionConfig, fuse
from aiat_perception.fusion_messages import (camera_detections_from_msg, fused_boxes, fused_detections_msg,
                                             fused_markers, objects_moved)
from aiat_perception.latency_stats import WindowedCount
from aiat_perception.latest_slot import LatestSlot
from aiat_perception.msg_conversions import cloud_xyz
from aiat_perception.node_params.fusion import (AGREEMENT_KEYS, FUSION_KEYS, TABLE, agreement_thresholds,
                                                fusion_settings)
from aiat_perception.nodes.common import declare_table, latched_qos, sensor_qos, stamp_to_ns, run_node
from aiat_perception.pipeline_health import HealthReport, HealthThresholds, PipelineHealth, WARN
from aiat_perception.stamp_pairing import NearestStampPairer
from aiat_perception.static_transforms import StaticTransformBuffer, TransformError, make_transform
from aiat_perception.vision_conversions import diagnostic_array, objects_3d_from_msg

# conversion (messages -> arrays), the fusion core's stages (fuse()'s stage_ms), publish
STAGES = ('conversion', 'points', 'project', 'transform', 'associate', 'boxes', 'publish')
MAX_DETECTIONS = 10_000        # per message, camera or lidar: more is a malformed message
HEALTH_KEYS = ('processing_budget_ms', 'pipeline_budget_ms', 'error_after_violations', 'stale_input_s',
               'no_input_warn_s')


def _check(values) -> list:
    """The core's own validation of the fusion settings (the table checks ranges)."""
    try:
        FusionConfig(**fusion_settings(values))
        agreement_thresholds(values)
    except ValueError as exc:
        return [str(exc)]
    return []


def extrinsic_matrix(values) -> np.ndarray:
    """camera_from_lidar (x y z qx qy qz qw) -> 4x4."""
    return make_transform(values[:3], values[3:7])


class Fusion(Node):
    def __init__(self, node_name: str = 'fusion', **kwargs):
        super().__init__(node_name, **kwargs)
        self.p = p = declare_table(self, TABLE, on_change=self.on_parameters, check=_check)
        self.config = FusionConfig(**fusion_settings(p))
        self.fixed_extrinsic = extrinsic_matrix(p['camera_from_lidar'])
        self.agreement = AgreementMonitor(window_frames=p['agreement_window'], thresholds=agreement_thresholds(p))
        self.agreement_lock = threading.Lock()
        self.health = PipelineHealth(stages=('waited', *STAGES), thresholds=self.health_thresholds(p),
                                     window=p['stats_window'], start_time=time.monotonic(),
                                     problem_window_s=p['problem_window_s'])
        partners = ['points', 'lidar_detections'] if p['use_lidar_detections'] else ['points']
        offset = int(round(p['time_offset_s'] * 1e9))
        self.pairer = NearestStampPairer('detections', partners, int(round(p['pair_tolerance_s'] * 1e9)),
                                         int(round(p['pair_timeout_s'] * 1e9)), {s: offset for s in partners})
        self.camera: Optional[CameraModel] = None
        self.camera_info_key = None
        self.camera_frame = ''
        self.transforms = StaticTransformBuffer()
        self.counts: Dict[str, int] = {k: 0 for k in (
            'camera_info_received', 'camera_info_malformed', 'clouds_received', 'lidar_detections_received',
            'frames_without_camera_info', 'frames_without_extrinsic', 'lidar_detections_unusable',
            'detections_skipped', 'tf_static_problems', 'frames_in_target_frame', 'markers_published')}
        # frames skipped for want of calibration and refused CameraInfos, for the level
        self.input_problems = WindowedCount(p['problem_window_s'])
        self.last_input_problem = ''
        self.last: Dict[str, object] = {}
        self.cloud_cache = (None, None)
        self.slot = LatestSlot()

        det_qos = sensor_qos(p['detections_reliability'], depth=10)
        self.create_subscription(Detection2DArray, 'detections', self.on_detections, det_qos)
        # best effort hears reliable and best-effort camera drivers alike
        self.create_subscription(CameraInfo, 'camera_info', self.on_camera_info, sensor_qos('best_effort', depth=1))
        self.create_subscription(PointCloud2, 'points', self.on_points, sensor_qos(p['reliability'], depth=1))
        if p['use_lidar_detections']:
            self.create_subscription(Detection3DArray, 'lidar_detections', self.on_lidar_detections, det_qos)
        if p['extrinsic_source'] == 'tf_static' or p['target_frame']:
            # static broadcasters publish once, transient local; several may exist: keep each one's
            self.create_subscription(TFMessage, '/tf_static', self.on_tf_static, latched_qos(depth=100))
        self.pub_fused = self.create_publisher(Detection3DArray, 'fused_detections', 10)
        self.pub_markers = self.create_publisher(MarkerArray, 'fused_detections/markers', 10)
        self.pub_latency = self.create_publisher(Float64MultiArray, '~/latency', 10)
        self.pub_diagnostics = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.latency_labels = ('stamp_s', 'pipeline_ms', 'processing_ms', 'waited_ms',
                               *(f'{s}_ms' for s in STAGES), 'objects', 'pair_gap_ms')
        self.latency_msg = Float64MultiArray()
        self.latency_msg.layout.dim = [MultiArrayDimension(label=','.join(self.latency_labels),
                                                           size=len(self.latency_labels),
                                                           stride=len(self.latency_labels))]
        self.diagnostic_name = f'{self.get_fully_qualified_name()}: camera-lidar fusion'
        self.create_timer(p['diagnostics_period_s'], self.publish_diagnostics,
                          callback_group=MutuallyExclusiveCallbackGroup())
        self.worker = threading.Thread(target=self.work, name=f'{node_name}_worker', daemon=True)
        self.worker.start()
        self.get_logger().info(
            f'ready: {self.resolve_topic_name("detections")} + {self.resolve_topic_name("points")} '
            f'({p["reliability"]}) -> {self.pub_fused.topic_name} in {p["target_frame"] or "the camera frame"}; '
            f'extrinsic from {p["extrinsic_source"]}')

    # --- parameters -------------------------------------------------------------------------------
    @staticmethod
    def health_thresholds(p) -> HealthThresholds:
        return HealthThresholds(**{k: p[k] for k in HEALTH_KEYS})

    def on_parameters(self, values, changed) -> None:
        self.health.thresholds = self.health_thresholds(values)
        if changed & set(FUSION_KEYS):
            self.config = FusionConfig(**fusion_settings(values))     # swapped whole: the worker sees one
        if changed & {*AGREEMENT_KEYS, 'agreement_min_detections', 'agreement_min_pairs'}:
            with self.agreement_lock:
                self.agreement.thresholds = agreement_thresholds(values)
        if 'camera_from_lidar' in changed:
            self.fixed_extrinsic = extrinsic_matrix(values['camera_from_lidar'])
        if 'time_offset_s' in changed:
            for stream in self.pairer.partners:
                self.pairer.set_offset(stream, int(round(values['time_offset_s'] * 1e9)))
        if 'pair_tolerance_s' in changed:
            self.pairer.tolerance_ns = int(round(values['pair_tolerance_s'] * 1e9))

    # --- inputs: cheap, in the executor ------------------------------------------------------------
    def on_detections(self, msg):
        now = time.monotonic()
        self.health.record_input(now)
        self.pair('detections', msg.header.stamp, (now, msg))

    def on_points(self, msg):
        self.counts['clouds_received'] += 1
        self.pair('points', msg.header.stamp, msg)

    def on_lidar_detections(self, msg):
        self.counts['lidar_detections_received'] += 1
        self.pair('lidar_detections', msg.header.stamp, msg)

    def pair(self, stream, stamp, item):
        for paired in self.pairer.add(stream, stamp_to_ns(stamp), item):
            if self.slot.put(paired):
                self.health.record_drop(now=time.monotonic())

    def on_camera_info(self, msg):
        self.counts['camera_info_received'] += 1
        rectified = self.p['image_rectified']
        key = (tuple(msg.k), tuple(msg.d), tuple(msg.r), tuple(msg.p), msg.width, msg.height,
               msg.distortion_model, msg.header.frame_id, rectified)
        if key == self.camera_info_key:
            return
        try:
            if rectified == 'auto':
                rectified = not any(float(v) != 0.0 for v in msg.d)
            else:
                rectified = rectified == 'true'
            camera = CameraModel.from_camera_info_fields(msg.k, msg.d, msg.r, msg.p, msg.width, msg.height,
                                                         msg.distortion_model, rectified=rectified)
        except (CameraModelError, ValueError, TypeError) as exc:
            self.input_problem('camera_info_malformed', f'skipping malformed CameraInfo: {exc}'[:300])
            return
        self.camera, self.camera_frame, self.camera_info_key = camera, msg.header.frame_id, key

    def on_tf_static(self, msg):
        try:
            self.transforms.add_message(msg)
        except TransformError as exc:
            self.counts['tf_static_problems'] += 1
            self.get_logger().warn(f'/tf_static: {exc}', throttle_duration_sec=5.0)

    # --- worker: the newest pair only ---------------------------------------------------------------
    def work(self):
        while not self.slot.closed:
            paired = self.slot.take(timeout=0.2)
            if paired is None:
                continue
            try:
                self.process(paired)
            except Exception as exc:  # keep running; the failure is counted and reported
                if not self.context.ok():
                    break  # shutting down: publishers are gone
                self.health.record_failure(f'{type(exc).__name__}: {exc}'[:300], time.monotonic())
                self.get_logger().error(f'frame failed: {exc!r}', throttle_duration_sec=5.0)

    def input_problem(self, counter: str, reason: str) -> None:
        """A frame skipped for want of calibration, or a CameraInfo refused: counted, WARN while recent."""
        self.counts[counter] += 1
        self.input_problems.add(time.monotonic())
        self.last_input_problem = reason
        self.get_logger().warn(reason, throttle_duration_sec=5.0)

    def cloud_points(self, msg) -> np.ndarray:
        """x y z of a cloud, converted once even when it serves several camera frames."""
        cached_msg, xyz = self.cloud_cache
        if cached_msg is msg:
            return xyz
        size = int(msg.width) * int(msg.height)
        if size > self.p['max_input_size']:
            raise ValueError(f'{size} points > max_input_size {self.p["max_input_size"]}')
        xyz, _ = cloud_xyz(msg, nan='drop')
        self.cloud_cache = (msg, xyz)
        return xyz

    def extrinsic(self, camera_frame: str, lidar_frame: str) -> Optional[np.ndarray]:
        if self.p['extrinsic_source'] == 'parameters':
            return self.fixed_extrinsic
        return self.transforms.lookup(camera_frame, lidar_frame, raise_error=False)

    def process(self, paired):
        received, det_msg = paired.items['detections']
        cloud_msg = paired.items['points']
        waited_ms = (time.monotonic() - received) * 1e3
        start = time.perf_counter()
        camera, config = self.camera, self.config
        if camera is None:
            return self.input_problem('frames_without_camera_info', 'no valid CameraInfo yet: frame skipped')
        camera_frame = det_msg.header.frame_id or self.camera_frame
        cam_from_lidar = self.extrinsic(camera_frame, cloud_msg.header.frame_id)
        if cam_from_lidar is None:
            return self.input_problem('frames_without_extrinsic', f'no static transform '
                                      f'{cloud_msg.header.frame_id!r} -> {camera_frame!r} on /tf_static yet: '
                                      'frame skipped')
        try:
            boxes, names, scores, ids, skipped = camera_detections_from_msg(det_msg, MAX_DETECTIONS)
            xyz = self.cloud_points(cloud_msg)
            lidar_objects = self.lidar_objects(paired.items.get('lidar_detections'), cloud_msg.header.frame_id)
        except Exception as exc:  # whatever a malformed message makes the conversion raise
            reason = f'{type(exc).__name__}: {exc}'[:300]
            self.health.record_malformed(reason, time.monotonic())
            self.get_logger().warn(f'skipping malformed input: {reason}', throttle_duration_sec=5.0)
            return
        self.counts['detections_skipped'] += skipped
        conversion_ms = (time.perf_counter() - start) * 1e3
        result = fuse(boxes, names, scores, xyz, cam_from_lidar, camera, config, lidar_objects)
        before_publish = time.perf_counter()
        header, frame_from_camera = self.output_header(det_msg.header, camera_frame)
        fused = fused_boxes(result.objects, ids, frame_from_camera, lidar_objects, cam_from_lidar)
        self.pub_fused.publish(fused_detections_msg(fused, header))
        published_ns = time.time_ns()
        done = time.perf_counter()
        if self.p['publish_markers'] and self.pub_markers.get_subscription_count() > 0:
            self.pub_markers.publish(fused_markers(fused, header))
            self.counts['markers_published'] += 1
        with self.agreement_lock:
            self.agreement.update(result)
        processing_ms = (done - start) * 1e3
        stamp_ns = stamp_to_ns(det_msg.header.stamp)
        pipeline_ms = (published_ns - stamp_ns) / 1e6
        stage_ms = {'waited': waited_ms, 'conversion': conversion_ms, **result.stage_ms,
                    'publish': (done - before_publish) * 1e3}
        self.health.record_output(time.monotonic(), processing_ms, pipeline_ms, stage_ms)
        gap_ms = paired.gaps_ns['points'] / 1e6
        self.last = {'objects': len(fused), 'camera_detections': result.camera_count,
                     'unsupported': len(result.unsupported), 'points_in_image': result.points_in_image,
                     'lidar_detections': -1 if lidar_objects is None else len(lidar_objects),
                     'pair_gap_ms': f'{gap_ms:.1f}'}
        self.latency_msg.data = [stamp_ns / 1e9, pipeline_ms, processing_ms, waited_ms,
                                 *(float(stage_ms.get(s, float('nan'))) for s in STAGES),
                                 float(len(fused)), gap_ms]
        self.pub_latency.publish(self.latency_msg)

    def lidar_objects(self, msg, cloud_frame: str):
        """The lidar detector's boxes in the cloud's frame (None: not used, or not usable this frame)."""
        if msg is None:
            return None
        if len(msg.detections) > MAX_DETECTIONS:
            raise ValueError(f'lidar_detections: {len(msg.detections)} detections > {MAX_DETECTIONS}')
        objects = objects_3d_from_msg(msg)
        frame = msg.header.frame_id
        if frame.lstrip('/') == cloud_frame.lstrip('/'):
            return objects
        T = self.transforms.lookup(cloud_frame, frame, raise_error=False)
        if T is None:
            self.counts['lidar_detections_unusable'] += 1
            self.get_logger().warn(f'lidar detections in {frame!r}, cloud in {cloud_frame!r} and no static '
                                   'transform between them: fusing without them', throttle_duration_sec=5.0)
            return None
        return objects_moved(objects, T)

    def output_header(self, header, camera_frame: str):
        """The camera's stamp with the output frame: target_frame once its static transform from the
        camera frame is known (with that transform), else the camera frame (with None)."""
        target = self.p['target_frame']
        if target and target.lstrip('/') != camera_frame.lstrip('/'):
            T = self.transforms.lookup(target, camera_frame, raise_error=False)
            if T is not None:
                self.counts['frames_in_target_frame'] += 1
                return Header(stamp=header.stamp, frame_id=target), T
            self.get_logger().warn(f'no static transform {camera_frame!r} -> {target!r} yet: publishing in '
                                   f'{camera_frame!r}', throttle_duration_sec=5.0)
        return Header(stamp=header.stamp, frame_id=camera_frame), None

    # --- diagnostics ----------------------------------------------------------------------------------
    def publish_diagnostics(self):
        now = time.monotonic()
        report = self.health.report(now)
        with self.agreement_lock:
            agreement = self.agreement.status()
        level, messages = report.level, [report.message] if report.message != 'ok' else []
        problems = self.input_problems.count(now)
        if problems:
            level = max(level, WARN)
            messages.append(f'{problems} calibration problem(s) in the last {self.p["problem_window_s"]:g} s; '
                            f'last: {self.last_input_problem}')
        if agreement.level:
            level = max(level, int(agreement.level))
        messages.append(agreement.message)
        unpaired = self.pairer.unpaired
        values = list(report.values)
        values += [(f'agreement_{k}', v) for k, v in agreement.values()]
        values += [('agreement_level', agreement.level.name),
                   ('frames_unpaired', str(unpaired['detections'])),
                   ('clouds_unpaired', str(unpaired['points'])),
                   *((f'{k}_last_frame', str(v)) for k, v in self.last.items()),
                   *((k, str(v)) for k, v in self.counts.items()),
                   ('calibration_problems_in_window', str(problems)),
                   ('last_calibration_problem', self.last_input_problem),
                   ('extrinsic_source', self.p['extrinsic_source']),
                   ('camera_frame', self.camera_frame or '(no CameraInfo yet)'),
                   ('static_transforms', str(len(self.transforms))),
                   ('target_frame', self.p['target_frame'] or '(camera frame)')]
        if 'lidar_detections' in unpaired:
            values.append(('lidar_detections_unpaired', str(unpaired['lidar_detections'])))
        status = HealthReport(level, '; '.join(messages), values)
        self.pub_diagnostics.publish(diagnostic_array(
            [(self.diagnostic_name, 'aiat_perception', status)], self.get_clock().now().to_msg()))

    def close(self):
        self.slot.close()
        self.worker.join(timeout=5.0)


def main(args=None):
    raise SystemExit(run_node(Fusion, args))


if __name__ == '__main__':
    main()
