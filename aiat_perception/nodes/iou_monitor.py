"""``iou_monitor``: compares a detector's ``Detection2DArray`` with the simulator's ground truth, or
(``detections_type: 3d``) a lidar detector's ``Detection3DArray`` with the simulator's 3D ground truth
by bird's-eye-view rotated IoU (:func:`aiat_perception.metrics.matching_3d.match_frame_bev`; both
sides must be in one frame: run the detector with ``target_frame`` = the ground truth's frame).

Detections and ground truth are paired by ``header.stamp`` (:mod:`aiat_perception.stamp_pairing`);
each pair is matched per class (:mod:`aiat_perception.metrics.matching`), and the node publishes
- ``/diagnostics`` (diagnostic_msgs/DiagnosticArray): one status with the frame's and the running
  (last ``window`` frames, and whole run) mean IoU, precision and recall; level WARN/ERROR when the
  windowed recall or mean IoU falls below the thresholds;
- ``metrics`` (std_msgs/Float64MultiArray): the same numbers in the order of ``METRIC_NAMES``
  (``layout.dim[0].label`` lists them), one message per paired frame.
``latency_ms`` is detection arrival minus stamp, reported only for system-clock stamps (real-time
mode; NaN otherwise). Unpaired messages older than ``pair_timeout_s`` (by stamp, against the newest
stamp seen) are dropped and counted. Parameters: aiat_perception/node_params/iou_monitor.py,
documented in config/iou_monitor.yaml.
"""
from __future__ import annotations

import time
from typing import Optional

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from std_msgs.msg import Float64MultiArray, MultiArrayDimension
from vision_msgs.msg import Detection2DArray, Detection3DArray

from aiat_perception.metrics.matching import RunningMetrics, filter_classes, match_frame
from aiat_perception.metrics.matching_3d import Object3D, match_frame_bev
from aiat_perception.node_params.iou_monitor import (TABLE, level_for, parse_aliases, parse_class_thresholds,
                                                     thresholds)
from aiat_perception.nodes.common import declare_table, run_node, sensor_qos, stamp_to_ns
from aiat_perception.parameters import non_empty
from aiat_perception.pipeline_health import HealthReport
from aiat_perception.stamp_pairing import StampPairer
from aiat_perception.vision_conversions import diagnostic_array, labeled_boxes_from_msg, objects_3d_from_msg

METRIC_NAMES = ('stamp_s', 'frame_mean_iou', 'frame_precision', 'frame_recall', 'frame_tp', 'frame_fp', 'frame_fn',
                'window_mean_iou', 'window_precision', 'window_recall',
                'total_mean_iou', 'total_precision', 'total_recall', 'frames', 'latency_ms')


class IoUMonitor(Node):
    def __init__(self, node_name: str = 'iou_monitor', **kwargs):
        super().__init__(node_name, **kwargs)
        self.p = declare_table(self, TABLE, on_change=lambda values, changed: self.apply(values))
        self.apply(self.p)
        self.class_agnostic = self.p['class_agnostic']
        self.classes = non_empty(self.p['classes'])
        self.aliases = parse_aliases(self.p['class_aliases'])
        self.class_thresholds = parse_class_thresholds(self.p['class_iou_thresholds'])
        self.three_d = self.p['detections_type'] == '3d'
        self.metrics = RunningMetrics(self.p['window'])
        self.pairer = StampPairer(('detections', 'ground_truth'), int(self.p['pair_timeout_s'] * 1e9))
        self.malformed = 0
        self.last = None
        self.name = f'{self.get_name()}: {self.resolve_topic_name(self.p["detections_topic"])}'
        kind = Detection3DArray if self.three_d else Detection2DArray
        self.create_subscription(kind, self.p['detections_topic'], self.on_detections,
                                 sensor_qos(self.p['reliability'], depth=50))
        self.create_subscription(kind, self.p['ground_truth_3d_topic' if self.three_d else 'ground_truth_topic'],
                                 self.on_ground_truth, sensor_qos('reliable', depth=50))
        self.pub_diag = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.pub_metrics = self.create_publisher(Float64MultiArray, 'metrics', 10)

    def apply(self, p):
        """The dynamic parameters (iou_threshold, min_score, log_every, the alarm thresholds)."""
        self.iou_threshold, self.min_score, self.log_every = p['iou_threshold'], p['min_score'], p['log_every']
        self.thresholds = thresholds(p)

    @property
    def unpaired(self):
        return self.pairer.unpaired

    def on_detections(self, msg):
        self._add('detections', msg, time.time_ns())

    def on_ground_truth(self, msg):
        self._add('ground_truth', msg, None)

    def _add(self, stream, msg, received_ns):
        stamp = stamp_to_ns(msg.header.stamp)
        pair = self.pairer.add(stream, stamp, (msg, received_ns))
        if pair is None:
            return
        (det_msg, received), (gt_msg, _) = pair['detections'], pair['ground_truth']
        try:
            self._evaluate(stamp, det_msg, gt_msg, received)
        except (AttributeError, TypeError, ValueError) as exc:  # malformed message: count it
            self.malformed += 1
            self.get_logger().warn(f'cannot evaluate frame {stamp}: {exc}')

    def _match_2d(self, det_msg, gt_msg):
        dets = filter_classes(labeled_boxes_from_msg(det_msg, self.min_score), (), self.aliases)
        gts = filter_classes(labeled_boxes_from_msg(gt_msg), self.classes, self.aliases)
        if self.classes and not self.class_agnostic:
            dets = [d for d in dets if d.class_id in self.classes]
        return match_frame(dets, gts, self.iou_threshold, self.class_agnostic)

    def _match_3d(self, det_msg, gt_msg):
        if det_msg.header.frame_id.lstrip('/') != gt_msg.header.frame_id.lstrip('/'):
            raise ValueError(f'detections in {det_msg.header.frame_id!r} but ground truth in '
                             f'{gt_msg.header.frame_id!r}: set the detector\'s target_frame')
        limit = self.p['max_range_m']

        def keep(objects, only_listed):
            out = []
            for o in objects:
                name = self.aliases.get(o.class_name, o.class_name)
                if only_listed and self.classes and name not in self.classes:
                    continue
                if limit and (o.center[0] ** 2 + o.center[1] ** 2) ** 0.5 > limit:
                    continue
                out.append(Object3D(name, o.center, o.size, o.yaw, o.score))
            return out
        dets = keep(objects_3d_from_msg(det_msg, self.min_score), not self.class_agnostic)
        gts = keep(objects_3d_from_msg(gt_msg), True)
        return match_frame_bev(dets, gts, self.iou_threshold, self.class_agnostic, self.class_thresholds)

    def _evaluate(self, stamp: int, det_msg, gt_msg, received_ns: Optional[int]):
        result = (self._match_3d if self.three_d else self._match_2d)(det_msg, gt_msg)
        self.metrics.update(result)
        window, total = self.metrics.windowed(), self.metrics.total()
        latency_ms = float('nan')
        if received_ns is not None and 0 <= received_ns - stamp < 60e9:
            # stamps on the system clock (real-time mode); lockstep stamps are simulation time
            latency_ms = (received_ns - stamp) / 1e6
        values = (stamp / 1e9, result.mean_iou, result.precision, result.recall, result.tp, result.fp, result.fn,
                  window['mean_iou'], window['precision'], window['recall'],
                  total['mean_iou'], total['precision'], total['recall'], total['frames'], latency_ms)
        self.last = dict(zip(METRIC_NAMES, values))
        metrics = Float64MultiArray()
        metrics.layout.dim = [MultiArrayDimension(label=','.join(METRIC_NAMES), size=len(values),
                                                  stride=len(values))]
        metrics.data = [float(v) for v in values]
        self.pub_metrics.publish(metrics)
        self._publish_diagnostics(window)
        if self.log_every and total['frames'] % self.log_every == 0:
            self.get_logger().info(
                f"frames {total['frames']}: mean IoU {window['mean_iou']:.3f}, precision "
                f"{window['precision']:.3f}, recall {window['recall']:.3f} (last {self.metrics.window}); "
                f'latency {latency_ms:.1f} ms')

    def _publish_diagnostics(self, window):
        message = (f"recall {window['recall']:.2f}, mean IoU {window['mean_iou']:.2f}, "
                   f"precision {window['precision']:.2f} over {window['frames']} frames")
        pairs = dict(self.last)
        pairs.update({f'unpaired_{k}': v for k, v in self.pairer.unpaired.items()})
        pairs['malformed'] = self.malformed
        pairs['iou_threshold'] = self.iou_threshold
        report = HealthReport(level_for(window, self.thresholds), message, list(pairs.items()))
        self.pub_diag.publish(diagnostic_array([(self.name, 'aiat_perception', report)],
                                               self.get_clock().now().to_msg()))


def main(args=None):
    raise SystemExit(run_node(IoUMonitor, args))


if __name__ == '__main__':
    main()
