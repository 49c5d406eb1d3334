"""What lidar_detector and scan_detector share: a sensor message in, Detection3DArray and MarkerArray
out, newest-frame-only processing, static transforms for ``target_frame``, /diagnostics and ~/latency.

Always fresh, as camera_detector: the subscription (sensor-data QoS, depth 1) only drops each message
into a one-frame slot; a worker thread converts it and runs the core on the newest one, so a slow
frame makes the node skip frames (counted as dropped) instead of queueing them, and the executor stays
free for /tf_static, parameter changes and the diagnostics timer. Converting in the worker keeps the
callback at microseconds and makes conversion a timed stage; any exception from it counts the message
as malformed, never a crash. A node whose core takes about a millisecond (``PROCESS_IN_CALLBACK``:
scan_detector) processes in the subscription callback instead: the hand-over to a worker thread costs
a thread wake-up, several milliseconds on a loaded 2-core machine, more than the work itself, and the
depth-1 input already keeps only the newest message while the callback runs.
"""
from __future__ import annotations

import threading
import time
from typing import Dict, Sequence

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.subscription import Subscription
from std_msgs.msg import Float64MultiArray, Header, MultiArrayDimension
from tf2_msgs.msg import TFMessage
from vision_msgs.msg import Detection3DArray
from visualization_msgs.msg import MarkerArray

from aiat_perception.latest_slot import LatestSlot
from aiat_perception.node_params.lidar_common import THRESHOLD_KEYS, core_values
from aiat_perception.nodes.common import declare_table, latched_qos, sensor_qos, stamp_to_ns
from aiat_perception.pipeline_health import HealthThresholds, PipelineHealth, SequenceGaps
from aiat_perception.static_transforms import StaticTransformBuffer, TransformError
from aiat_perception.vision_conversions import detections_3d_markers, detections_3d_to_msg, diagnostic_array


class LidarDetectorBase(Node):
    """Subclasses set ``MESSAGE`` (input type), ``INPUT_TOPIC``, ``STAGES`` (the core's stage names,
    ``conversion`` first), ``TABLE``, ``CORE_TABLE``, ``DESCRIPTION`` and implement :meth:`make_core`,
    :meth:`convert` (message -> core input; raise on a malformed message) and :meth:`detect`."""

    MESSAGE = None
    INPUT_TOPIC = ''
    STAGES: Sequence[str] = ()
    TABLE = None
    CORE_TABLE: Dict = {}
    DESCRIPTION = ''
    PROCESS_IN_CALLBACK = False

    def __init__(self, node_name: str, **kwargs):
        super().__init__(node_name, **kwargs)
        self.p = declare_table(self, self.TABLE, on_change=self.on_parameters)
        p = self.p
        self.core = self.make_core(core_values(p, self.CORE_TABLE), None)
        self.stages = (*self.STAGES, 'publish')
        self.health = PipelineHealth(stages=('waited', *self.stages), thresholds=self.thresholds(p),
                                     window=p['stats_window'], start_time=time.monotonic(),
                                     problem_window_s=p['problem_window_s'])
        self.latency_labels = ('stamp_s', 'pipeline_ms', 'processing_ms', 'waited_ms',
                               *(f'{s}_ms' for s in self.stages), 'detections')
        self.latency_msg = Float64MultiArray()
        self.latency_msg.layout.dim = [MultiArrayDimension(label=','.join(self.latency_labels),
                                                           size=len(self.latency_labels),
                                                           stride=len(self.latency_labels))]
        self.transforms = StaticTransformBuffer()
        self.transform_problems = 0
        self.output_in_target = 0
        self.last_counts: Dict[str, int] = {}
        self.last_detections = 0
        self.markers_published = 0
        self.slot = LatestSlot()
        self.subscribe_input(p)
        if p['target_frame']:
            # static broadcasters publish once, transient local; several may exist: keep each one's
            self.create_subscription(TFMessage, '/tf_static', self.on_tf_static, latched_qos(depth=100))
        self.pub_detections = self.create_publisher(Detection3DArray, 'detections', 10)
        self.pub_markers = self.create_publisher(MarkerArray, 'detections/markers', 10)
        self.pub_latency = self.create_publisher(Float64MultiArray, '~/latency', 10)
        self.pub_diagnostics = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.diagnostic_name = f'{self.get_fully_qualified_name()}: {self.DESCRIPTION}'
        self.create_timer(p['diagnostics_period_s'], self.publish_diagnostics,
                          callback_group=MutuallyExclusiveCallbackGroup())
        self.worker = None
        if not self.PROCESS_IN_CALLBACK:
            self.worker = threading.Thread(target=self.work, name=f'{node_name}_worker', daemon=True)
            self.worker.start()
        self.get_logger().info(f'ready: {self.resolve_topic_name(self.INPUT_TOPIC)} ({p["reliability"]}) -> '
                               f'{self.pub_detections.topic_name} in '
                               f'{p["target_frame"] or "the sensor frame"}')

    def subscribe_input(self, p):
        """The input subscription with lost-frame counting as ``lost_source`` asks (as camera_detector):
        gaps in each publisher's DDS sequence numbers (rclpy >= Iron passes them to two-argument
        callbacks), else the RMW's message-lost event."""
        try:
            from rclpy import event_handler as events
        except ImportError:  # rclpy before Iron (Humble)
            from rclpy import qos_event as events
        self.sequence_gaps = SequenceGaps()
        self.lost_counting = 'none'
        callback = self.on_message
        if p['lost_source'] in ('auto', 'publication_sequence') and hasattr(Subscription, 'CallbackType'):
            callback = self.on_message_with_info
        event_callbacks = None
        if p['lost_source'] in ('auto', 'message_lost_event'):
            try:
                event_callbacks = events.SubscriptionEventCallbacks(message_lost=self.on_message_lost)
            except TypeError:  # an rclpy without the message-lost event
                pass
        qos = sensor_qos(p['reliability'], depth=1)
        try:
            self.create_subscription(self.MESSAGE, self.INPUT_TOPIC, callback, qos, event_callbacks=event_callbacks)
        except getattr(events, 'UnsupportedEventTypeError', ()):  # an RMW without the event
            self.create_subscription(self.MESSAGE, self.INPUT_TOPIC, callback, qos)

    # --- parameters ---------------------------------------------------------------------------
    @staticmethod
    def thresholds(p) -> HealthThresholds:
        return HealthThresholds(**{k: p[k] for k in THRESHOLD_KEYS})

    def on_parameters(self, values, changed) -> None:
        self.health.thresholds = self.thresholds(values)
        if changed & set(self.CORE_TABLE):
            # a new core object, swapped in whole: the worker uses either the old or the new one
            self.core = self.make_core(core_values(values, self.CORE_TABLE), self.core)

    def make_core(self, params, previous):
        raise NotImplementedError

    def convert(self, msg):
        raise NotImplementedError

    def detect(self, core, data):
        raise NotImplementedError

    def input_size(self, msg) -> int:
        raise NotImplementedError

    # --- input: cheap, never blocks on the core ---------------------------------------------------
    def on_message_with_info(self, msg, info):
        number = info.get('publication_sequence_number') if isinstance(info, dict) else None
        if isinstance(number, int) and 0 < number < 2 ** 63:  # None/0: the RMW gives none
            self.lost_counting = 'publication_sequence'
            gid = info.get('publisher_gid')
            data = gid.get('data') if isinstance(gid, dict) else None
            self.health.record_lost(self.sequence_gaps.observe(bytes(data) if data is not None else None, number),
                                    time.monotonic())
        self.on_message(msg)

    def on_message_lost(self, info):
        if self.lost_counting != 'publication_sequence' or self.p['lost_source'] == 'message_lost_event':
            self.lost_counting = 'message_lost_event'
            self.health.record_lost(int(info.total_count_change), time.monotonic())

    def on_message(self, msg):
        now = time.monotonic()
        self.health.record_input(now)
        if self.PROCESS_IN_CALLBACK:
            self.process_safely((now, msg))
        elif self.slot.put((now, msg)):
            self.health.record_drop(now=now)

    def on_tf_static(self, msg):
        try:
            self.transforms.add_message(msg)
        except TransformError as exc:
            self.transform_problems += 1
            self.get_logger().warn(f'/tf_static: {exc}', throttle_duration_sec=5.0)

    # --- worker: newest message only ---------------------------------------------------------------
    def work(self):
        while not self.slot.closed:
            item = self.slot.take(timeout=0.2)
            if item is not None and not self.process_safely(item):
                break

    def process_safely(self, item) -> bool:
        """:meth:`process`, any failure counted and reported; False when shutting down."""
        try:
            self.process(*item)
        except Exception as exc:  # keep running; the failure is counted and reported
            if not self.context.ok():
                return False  # shutting down: publishers are gone
            self.health.record_failure(f'{type(exc).__name__}: {exc}'[:300], time.monotonic())
            self.get_logger().error(f'frame failed: {exc!r}', throttle_duration_sec=5.0)
        return True

    def process(self, received: float, msg):
        """``received``: time.monotonic() when the message came out of the executor."""
        waited_ms = (time.monotonic() - received) * 1e3
        start = time.perf_counter()
        try:
            size = self.input_size(msg)
            if size > self.p['max_input_size']:
                raise ValueError(f'{size} points/beams > max_input_size {self.p["max_input_size"]}')
            data = self.convert(msg)
        except Exception as exc:  # whatever a malformed message makes the conversion raise
            reason = f'{type(exc).__name__}: {exc}'[:300]
            self.health.record_malformed(reason, time.monotonic())
            self.get_logger().warn(f'skipping malformed {self.MESSAGE.__name__}: {reason}', throttle_duration_sec=5.0)
            return
        conversion_ms = (time.perf_counter() - start) * 1e3
        result = self.detect(self.core, data)
        before_publish = time.perf_counter()
        header, frame_from_sensor = self.output_header(msg.header)
        self.pub_detections.publish(detections_3d_to_msg(result.detections, header, frame_from_sensor))
        published_ns = time.time_ns()
        done = time.perf_counter()
        processing_ms = (done - start) * 1e3
        if self.p['publish_markers'] and self.pub_markers.get_subscription_count() > 0:
            self.pub_markers.publish(detections_3d_markers(result.detections, header, frame_from_sensor))
            self.markers_published += 1
        stamp_ns = stamp_to_ns(msg.header.stamp)
        pipeline_ms = (published_ns - stamp_ns) / 1e6
        stage_ms = {'waited': waited_ms, 'conversion': conversion_ms, **result.stage_ms,
                    'publish': (done - before_publish) * 1e3}
        self.health.record_output(time.monotonic(), processing_ms, pipeline_ms, stage_ms)
        self.last_counts, self.last_detections = result.counts, len(result.detections)
        self.latency_msg.data = [stamp_ns / 1e9, pipeline_ms, processing_ms, waited_ms,
                                 *(float(stage_ms.get(s, float('nan'))) for s in self.stages),
                                 float(len(result.detections))]
        self.pub_latency.publish(self.latency_msg)

    def output_header(self, header):
        """The input's header, its frame replaced by ``target_frame`` when that static transform is
        known (with the transform to apply), else the input's frame unchanged (with None)."""
        target = self.p['target_frame']
        if target and target.lstrip('/') != header.frame_id.lstrip('/'):
            T = self.transforms.lookup(target, header.frame_id, raise_error=False)
            if T is not None:
                self.output_in_target += 1
                return Header(stamp=header.stamp, frame_id=target), T
            self.get_logger().warn(f'no static transform {header.frame_id!r} -> {target!r} yet: publishing in '
                                   f'{header.frame_id!r}', throttle_duration_sec=5.0)
        return Header(stamp=header.stamp, frame_id=header.frame_id), None

    def publish_diagnostics(self):
        report = self.health.report(time.monotonic())
        report.values += [('detections_last_frame', str(self.last_detections)),
                          *((f'{k}_last_frame', str(v)) for k, v in self.last_counts.items()),
                          ('markers_published', str(self.markers_published)),
                          ('lost_source', self.lost_counting),
                          ('target_frame', self.p['target_frame'] or '(sensor frame)'),
                          ('frames_in_target_frame', str(self.output_in_target)),
                          ('static_transforms', str(len(self.transforms))),
                          ('tf_static_problems', str(self.transform_problems))]
        self.pub_diagnostics.publish(diagnostic_array(
            [(self.diagnostic_name, 'aiat_perception', report)], self.get_clock().now().to_msg()))

    def close(self):
        self.slot.close()
        if self.worker is not None:
            self.worker.join(timeout=5.0)
