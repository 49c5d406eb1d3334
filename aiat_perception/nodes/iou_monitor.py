"""``iou_monitor``: compares a detector's ``Detection2DArray`` with the simulator's ground truth.

Detections and ground truth are paired by ``header.stamp``; each pair is matched per class
(:mod:`aiat_perception.metrics.matching`), and the node publishes
- ``/diagnostics`` (diagnostic_msgs/DiagnosticArray): one status with the frame's and the running
  (last ``window`` frames, and whole run) mean IoU, precision and recall; level WARN/ERROR when the
  windowed recall or mean IoU falls below the thresholds;
- ``metrics`` (std_msgs/Float64MultiArray): the same numbers in the order of ``METRIC_NAMES``
  (``layout.dim[0].label`` lists them), one message per paired frame.
``latency_ms`` is detection arrival minus stamp, reported only for system-clock stamps (real-time
mode; NaN otherwise). Unpaired messages older than ``pair_timeout_s`` (by stamp, against the newest stamp seen) are
dropped and counted. Parameters: see config/iou_monitor.yaml.
"""
from __future__ import annotations

import math
import time
from typing import Dict, List, Optional

from aiat_perception.metrics.matching import LabeledBox, RunningMetrics, filter_classes, match_frame
from aiat_perception.nodes.common import ParameterError, run_node, sensor_qos, stamp_to_ns

METRIC_NAMES = ('stamp_s', 'frame_mean_iou', 'frame_precision', 'frame_recall', 'frame_tp', 'frame_fp', 'frame_fn',
                'window_mean_iou', 'window_precision', 'window_recall',
                'total_mean_iou', 'total_precision', 'total_recall', 'frames', 'latency_ms')


def boxes_from_msg(msg, min_score: float = 0.0) -> List[LabeledBox]:
    """LabeledBoxes from a Detection2DArray (best hypothesis per detection); malformed entries
    (no hypothesis, negative size, non-finite numbers) are skipped."""
    out = []
    for det in msg.detections:
        if not det.results:
            continue
        best = max(det.results, key=lambda r: r.hypothesis.score)
        cx, cy = det.bbox.center.position.x, det.bbox.center.position.y
        w, h = det.bbox.size_x, det.bbox.size_y
        values = (cx, cy, w, h, best.hypothesis.score)
        if not all(math.isfinite(v) for v in values) or w < 0 or h < 0:
            continue
        if best.hypothesis.score < min_score:
            continue
        out.append(LabeledBox((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), best.hypothesis.class_id,
                              float(best.hypothesis.score), det.id))
    return out


def parse_aliases(items) -> Dict[str, str]:
    aliases = {}
    for item in items:
        if not item:
            continue
        # 'from:to' or 'from=to' (the latter needs no quotes on a --ros-args command line)
        src, sep, dst = item.partition('=' if '=' in item else ':')
        if not sep or not src or not dst:
            raise ParameterError(f"class_aliases: expected 'from:to' or 'from=to', got {item!r}")
        aliases[src] = dst
    return aliases


def level_for(window: Dict[str, float], thresholds: Dict[str, float]) -> int:
    """0 OK, 1 WARN, 2 ERROR from the windowed recall and mean IoU."""
    level = 0
    for key in ('recall', 'mean_iou', 'precision'):
        value = window[key]
        if math.isnan(value):
            value = 0.0 if window['tp'] == 0 and window['fn'] > 0 else 1.0
        if value < thresholds[f'error_{key}']:
            level = 2
        elif value < thresholds[f'warn_{key}']:
            level = max(level, 1)
    return level


def make_node():
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
    from rclpy.node import Node
    from std_msgs.msg import Float64MultiArray, MultiArrayDimension
    from vision_msgs.msg import Detection2DArray

    class IoUMonitor(Node):
        def __init__(self):
            super().__init__('iou_monitor')
            declare = lambda name, default: self.declare_parameter(name, default).value  # noqa: E731
            self.iou_threshold = float(declare('iou_threshold', 0.5))
            self.class_agnostic = bool(declare('class_agnostic', False))
            self.classes = [c for c in declare('classes', ['']) if c]
            self.aliases = parse_aliases(declare('class_aliases', ['']))
            self.min_score = float(declare('min_score', 0.0))
            window = int(declare('window', 100))
            self.pair_timeout_s = float(declare('pair_timeout_s', 5.0))
            self.log_every = int(declare('log_every', 0))
            self.thresholds = {f'{lvl}_{key}': float(declare(f'{lvl}_{key}', default))
                               for lvl, key, default in (('warn', 'recall', 0.5), ('error', 'recall', 0.2),
                                                         ('warn', 'mean_iou', 0.5), ('error', 'mean_iou', 0.3),
                                                         ('warn', 'precision', 0.5), ('error', 'precision', 0.2))}
            detections_topic = declare('detections_topic', 'detections')
            ground_truth_topic = declare('ground_truth_topic', 'ground_truth/detections_2d')
            reliability = declare('reliability', 'reliable')
            if not 0.0 < self.iou_threshold <= 1.0:
                raise ParameterError(f'iou_threshold must be in (0, 1], got {self.iou_threshold}')
            if window < 1:
                raise ParameterError(f'window must be >= 1, got {window}')
            for key in ('recall', 'mean_iou', 'precision'):
                if self.thresholds[f'error_{key}'] > self.thresholds[f'warn_{key}']:
                    raise ParameterError(f'error_{key} must be <= warn_{key}')
            self.metrics = RunningMetrics(window)
            self.pending_det: Dict[int, object] = {}
            self.pending_gt: Dict[int, object] = {}
            self.receive_ns: Dict[int, int] = {}
            self.unpaired = {'detections': 0, 'ground_truth': 0}
            self.malformed = 0
            self.newest_ns = 0
            self.last = None
            self.name = f'{self.get_name()}: {self.resolve_topic_name(detections_topic)}'
            qos = sensor_qos(reliability, depth=50)
            self.create_subscription(Detection2DArray, detections_topic, self.on_detections, qos)
            self.create_subscription(Detection2DArray, ground_truth_topic, self.on_ground_truth,
                                     sensor_qos('reliable', depth=50))
            self.pub_diag = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
            self.pub_metrics = self.create_publisher(Float64MultiArray, 'metrics', 10)
            self.DiagnosticArray, self.DiagnosticStatus, self.KeyValue = DiagnosticArray, DiagnosticStatus, KeyValue
            self.Float64MultiArray, self.MultiArrayDimension = Float64MultiArray, MultiArrayDimension

        def on_detections(self, msg):
            stamp = stamp_to_ns(msg.header.stamp)
            self.receive_ns[stamp] = time.time_ns()
            self.pending_det[stamp] = msg
            self._try_pair(stamp)

        def on_ground_truth(self, msg):
            stamp = stamp_to_ns(msg.header.stamp)
            self.pending_gt[stamp] = msg
            self._try_pair(stamp)

        def _try_pair(self, stamp: int):
            self.newest_ns = max(self.newest_ns, stamp)
            if stamp in self.pending_det and stamp in self.pending_gt:
                det_msg, gt_msg = self.pending_det.pop(stamp), self.pending_gt.pop(stamp)
                received = self.receive_ns.pop(stamp, None)
                try:
                    self._evaluate(stamp, det_msg, gt_msg, received)
                except (AttributeError, TypeError, ValueError) as exc:  # malformed message: count it
                    self.malformed += 1
                    self.get_logger().warn(f'cannot evaluate frame {stamp}: {exc}')
            horizon = self.newest_ns - int(self.pair_timeout_s * 1e9)
            for key, pending in (('detections', self.pending_det), ('ground_truth', self.pending_gt)):
                for old in [s for s in pending if s < horizon]:
                    del pending[old]
                    self.receive_ns.pop(old, None)
                    self.unpaired[key] += 1

        def _evaluate(self, stamp: int, det_msg, gt_msg, received_ns: Optional[int]):
            dets = filter_classes(boxes_from_msg(det_msg, self.min_score), (), self.aliases)
            gts = filter_classes(boxes_from_msg(gt_msg), self.classes, self.aliases)
            if self.classes and not self.class_agnostic:
                dets = [d for d in dets if d.class_id in self.classes]
            result = match_frame(dets, gts, self.iou_threshold, self.class_agnostic)
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
            metrics = self.Float64MultiArray()
            metrics.layout.dim = [self.MultiArrayDimension(label=','.join(METRIC_NAMES), size=len(values),
                                                           stride=len(values))]
            metrics.data = [float(v) for v in values]
            self.pub_metrics.publish(metrics)
            self._publish_diagnostics(window, total)
            if self.log_every and total['frames'] % self.log_every == 0:
                self.get_logger().info(
                    f"frames {total['frames']}: mean IoU {window['mean_iou']:.3f}, precision "
                    f"{window['precision']:.3f}, recall {window['recall']:.3f} (last {self.metrics.window}); "
                    f'latency {latency_ms:.1f} ms')

        def _publish_diagnostics(self, window, total):
            level = level_for(window, self.thresholds)
            status = self.DiagnosticStatus()
            status.level = (self.DiagnosticStatus.OK, self.DiagnosticStatus.WARN, self.DiagnosticStatus.ERROR)[level]
            status.name = self.name
            status.hardware_id = 'aiat_perception'
            status.message = (f"recall {window['recall']:.2f}, mean IoU {window['mean_iou']:.2f}, "
                              f"precision {window['precision']:.2f} over {window['frames']} frames")
            pairs = dict(self.last)
            pairs.update({f'unpaired_{k}': v for k, v in self.unpaired.items()})
            pairs['malformed'] = self.malformed
            pairs['iou_threshold'] = self.iou_threshold
            status.values = [self.KeyValue(key=k, value=f'{v:.6g}' if isinstance(v, float) else str(v))
                             for k, v in pairs.items()]
            array = self.DiagnosticArray()
            array.header.stamp = self.get_clock().now().to_msg()
            array.status = [status]
            self.pub_diag.publish(array)

    return IoUMonitor()


def main(args=None):
    raise SystemExit(run_node(make_node, args))


if __name__ == '__main__':
    main()
