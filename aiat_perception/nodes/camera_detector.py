"""camera_detector: sensor_msgs/Image (or CompressedImage) in, vision_msgs/Detection2DArray out.

Always fresh: the subscription only drops each frame into a one-frame slot; a worker thread runs the
detector on the newest frame, so a slow model skips frames (counted as dropped) instead of queueing
them. Observable: one DiagnosticStatus at 1 Hz on /diagnostics, and per-frame latency on
``~/latency`` (std_msgs/Float64MultiArray, labels in its layout) for plotting.

Topics (relative, remap as needed):
  in   image (sensor_msgs/Image), or image/compressed (sensor_msgs/CompressedImage) with compressed:=true
  out  detections (vision_msgs/Detection2DArray, header copied from the input)
       detections/image (sensor_msgs/Image, annotated; only built while someone subscribes)
       label_info (vision_msgs/LabelInfo, transient local)
       ~/latency (std_msgs/Float64MultiArray), /diagnostics (diagnostic_msgs/DiagnosticArray)
Parameters: aiat_perception/node_params/camera_detector.py, documented in config/camera_detector.yaml.

Device: ``device`` (auto / cpu / cuda / tensorrt) and ``backend`` (onnxruntime / tensorrt / torch) are
resolved once at start (``inference_plan``); a device or backend this machine cannot run stops the node
with exit code 2 and a message naming the parameter and what to install; ``auto`` logs its choice and
/diagnostics reports it (``device``, ``device_requested``). ``build_engine_only`` builds (or finds) the
TensorRT engine and exits. GPU load (``gpu_*`` keys, gpu_load.py) is read at the diagnostics period by
one reader opened at start; where none works the keys are absent, not zero.

Every input is untrusted: whatever converting or decoding a frame raises, the frame is counted as
malformed (with its reason in /diagnostics) and the node goes on; only an exception from the model
on a good frame counts as failed. Frames lost before they reach the node are counted from gaps in
each publisher's DDS sequence numbers (``lost_source``).
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.subscription import Subscription
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Float64MultiArray, MultiArrayDimension
from vision_msgs.msg import Detection2DArray, LabelInfo

from aiat_perception.draw import draw_boxes
from aiat_perception.engine.builder import EngineBuildError
from aiat_perception.engine.cache import EngineMissing, default_cache_root, ort_tensorrt_cache_dir
from aiat_perception.engine.cuda_api import CudaError
from aiat_perception.engine.metadata import EngineMismatch
from aiat_perception.engine.profile import ProfileError
from aiat_perception.engine.trt_api import TensorRTUnavailable
from aiat_perception.gpu_load import GpuLoad, diagnostic_values
from aiat_perception.inference import BundleError, Detector
from aiat_perception.inference.backends import BackendUnavailable
from aiat_perception.inference.bundle import load_bundle
from aiat_perception.latest_slot import LatestSlot
from aiat_perception.msg_conversions import (DEFAULT_MAX_PIXELS, MessageFormatError,
                                             compressed_image_to_numpy, image_to_numpy,
                                             numpy_to_image)
from aiat_perception.node_params.camera_detector import (TABLE, THRESHOLD_KEYS, Availability,
                                                         inference_plan, used_device_problem, validate)
from aiat_perception.nodes.common import (ParameterError, declare_table, finish, latched_qos, run_node,
                                          sensor_qos)
from aiat_perception.parameters import non_empty
from aiat_perception.pipeline_health import HealthThresholds, PipelineHealth, SequenceGaps
from aiat_perception.vision_conversions import detections_to_msg, diagnostic_array, label_info_msg

try:
    from rclpy import event_handler as events
except ImportError:  # rclpy before Iron (Humble)
    from rclpy import qos_event as events

LATENCY_LABELS = ('stamp_s', 'pipeline_ms', 'processing_ms', 'preprocess_ms', 'inference_ms',
                  'decode_ms', 'detections', 'received_ms', 'handoff_ms')
DETECTOR_ENCODINGS = ('bgr8', 'rgb8', 'mono8', 'bgra8', 'rgba8')


def resolve_bundle_path(value: str) -> Path:
    if value:
        return Path(value).expanduser()
    from aiat_perception.assets import cache_dir
    return cache_dir('bundles') / 'nanodet-coco-416'


def automatic_pixel_limit(first_frame_pixels: int) -> int:
    """max_decoded_pixels = 0: 4x the first valid frame (the camera's size), within the module cap."""
    if first_frame_pixels <= 0:
        return DEFAULT_MAX_PIXELS
    return min(4 * first_frame_pixels, DEFAULT_MAX_PIXELS)


def publisher_source(info) -> object:
    """The publisher a MessageInfo came from (its GID), or None where rclpy does not say."""
    gid = info.get('publisher_gid')
    data = gid.get('data') if isinstance(gid, dict) else None
    return bytes(data) if data is not None else None


class CameraDetector(Node):
    def __init__(self, node_name: str = 'camera_detector', **kwargs):
        super().__init__(node_name, **kwargs)
        self.detector = None  # class_filter is checked against its classes once it is loaded
        self.slot = self.worker = self.gpu_load = None
        p = dict(declare_table(self, TABLE, on_change=self.on_parameters_changed,
                               check=lambda v: validate(v, self.detector and self.detector.classes)))
        p['class_filter'] = non_empty(p['class_filter'])
        self.plan = self.load_detector(p)
        problems = validate(p, self.detector.classes)
        if problems:
            raise ParameterError('; '.join(problems))
        self.get_logger().info(f'{self.plan.describe()}; running on {self.detector.backend.device}')
        if p['build_engine_only']:
            self.build_engine_only()
            return
        self.settings = p
        self.gpu_load = self.open_gpu_load(p)
        self.apply_detector_settings(p)
        self.health = PipelineHealth(
            thresholds=HealthThresholds(**{k: p[k] for k in THRESHOLD_KEYS}),
            window=p['stats_window'], start_time=time.monotonic(),
            problem_window_s=p['problem_window_s'])

        self.slot = LatestSlot()
        self.debug_images = 0
        self.first_frame_pixels = 0
        self.subscribe_input(p)
        self.pub_detections = self.create_publisher(Detection2DArray, 'detections', 10)
        self.pub_debug = self.create_publisher(Image, 'detections/image', sensor_qos('reliable'))
        self.pub_latency = self.create_publisher(Float64MultiArray, '~/latency', 10)
        self.pub_diagnostics = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.pub_labels = self.create_publisher(LabelInfo, 'label_info', latched_qos())
        self.publish_label_info()
        self.latency_msg = Float64MultiArray()
        self.latency_msg.layout.dim = [MultiArrayDimension(
            label=','.join(LATENCY_LABELS), size=len(LATENCY_LABELS), stride=len(LATENCY_LABELS))]
        self.diagnostic_name = f'{self.get_fully_qualified_name()}: camera detector'
        self.create_timer(p['diagnostics_period_s'], self.publish_diagnostics,
                          callback_group=MutuallyExclusiveCallbackGroup())
        self.worker = threading.Thread(target=self.work, name='camera_detector_worker', daemon=True)
        self.worker.start()
        self.get_logger().info(f'{self.detector!r} ready; input '
                               f'{"image/compressed" if p["compressed"] else "image"} ({p["reliability"]})')

    def load_detector(self, p):
        """The bundle, the backend/device plan for this machine, and the detector; every way this
        can fail is a ParameterError naming the parameter to change (exit code 2)."""
        try:
            bundle = load_bundle(resolve_bundle_path(p['bundle_path']))
        except (BundleError, FileNotFoundError) as exc:
            raise ParameterError(f'bundle_path: {exc}') from exc
        ort_cache = None
        if p['backend'] == 'onnxruntime' and not p['trt_cache_dir']:
            import onnxruntime
            ort_cache = str(ort_tensorrt_cache_dir(bundle.name, bundle.model.sha256, onnxruntime.__version__))
        plan = inference_plan(p, Availability.probe(p['backend']), ort_cache)
        name = 'engine_path' if plan.backend == 'tensorrt' else 'bundle_path'
        try:
            self.detector = Detector(bundle, backend=plan.backend, resize=p['resize'] or None,
                                     pixel_budget=p['pixel_budget'] or None, tiling=p['tiling'],
                                     tile_overlap=p['tile_overlap'], **plan.options)
        except ProfileError as exc:   # an engine profile box the bundle cannot take
            raise ParameterError(f'engine_max_size: {exc}') from exc
        except ValueError as exc:  # an input size the bundle cannot take (resize, pixel_budget)
            raise ParameterError(f'resize/pixel_budget: {exc}') from exc
        except EngineMissing as exc:
            raise ParameterError(f'build_engine_if_missing: false and {exc}') from exc
        except (BundleError, FileNotFoundError, EngineMismatch) as exc:
            raise ParameterError(f'{name}: {exc}') from exc
        except (BackendUnavailable, TensorRTUnavailable) as exc:
            raise ParameterError(f'backend: {plan.backend} requested but it cannot run here: {exc}') from exc
        except CudaError as exc:
            raise ParameterError(f'device_id: GPU {p["device_id"]} cannot be used: {exc}') from exc
        except EngineBuildError as exc:
            raise ParameterError(f'engine_precision: building the {p["engine_precision"]} engine failed '
                                 f'({exc}); build it with aiat-engine build to see every message') from exc
        problem = used_device_problem(plan, self.detector.backend.device)
        if problem:
            self.detector.close()
            raise ParameterError(problem)
        return plan

    def build_engine_only(self):
        """Autoware's build_only: the engine is built (or found) by now for backend tensorrt; ONNX
        Runtime's TensorRT execution provider builds its engine at the first run, so run one frame."""
        spec = self.detector.bundle.input
        self.detector.detect_one(np.zeros((spec.height, spec.width, 3), np.uint8), 'bgr8')
        where = getattr(self.detector.backend, 'engine_path', None) or \
            self.plan.options.get('trt_cache_dir') or default_cache_root()
        self.get_logger().info(f'build_engine_only: TensorRT engine ready in {where}; exiting')
        finish(self, 0)

    def open_gpu_load(self, p):
        """One GPU load reader for the node's life (opening NVML or tegrastats per read would cost
        milliseconds); None when gpu_load_source is none or nothing can be read here."""
        source = p['gpu_load_source']
        if source == 'none':
            return None
        reader = GpuLoad(device_index=p['device_id'], sources=None if source == 'auto' else [source],
                         interval_ms=max(100, int(p['diagnostics_period_s'] * 1000)))  # tegrastats' pace
        if reader.available:
            self.get_logger().info(f'GPU load from {reader.source} (GPU {p["device_id"]})')
            return reader
        why = '; '.join(f'{k}: {v}' for k, v in reader.problems.items())
        if source != 'auto':
            raise ParameterError(f'gpu_load_source: {source} requested but it cannot be read here ({why})')
        self.get_logger().info(f'GPU load: no source here, /diagnostics leaves the gpu_* keys out ({why})')
        return None

    def subscribe_input(self, p):
        """The input subscription, with lost-frame counting as ``lost_source`` asks: gaps in each
        publisher's DDS sequence numbers (rclpy >= Iron passes them to two-argument callbacks),
        else the RMW's message-lost event (Fast DDS reports only some losses: see README)."""
        msg_type, topic = (CompressedImage, 'image/compressed') if p['compressed'] \
            else (Image, 'image')
        self.sequence_gaps = SequenceGaps()
        self.lost_counting = 'none'   # which source counted lost frames so far (diagnostics)
        callback = self.on_frame
        if p['lost_source'] in ('auto', 'publication_sequence') and \
                hasattr(Subscription, 'CallbackType'):
            callback = self.on_frame_with_info
        event_callbacks = None
        if p['lost_source'] in ('auto', 'message_lost_event'):
            try:
                event_callbacks = events.SubscriptionEventCallbacks(
                    message_lost=self.on_message_lost)
            except TypeError:  # an rclpy without the message-lost event
                pass
        qos = sensor_qos(p['reliability'])
        try:
            self.create_subscription(msg_type, topic, callback, qos,
                                     event_callbacks=event_callbacks)
        except getattr(events, 'UnsupportedEventTypeError', ()):  # an RMW without the event
            self.create_subscription(msg_type, topic, callback, qos)

    def pixel_limit(self) -> int:
        limit = self.settings['max_decoded_pixels']
        return limit if limit > 0 else automatic_pixel_limit(self.first_frame_pixels)

    def apply_detector_settings(self, p):
        post = self.detector.bundle.postprocess
        self.detector.score_threshold = p['score_threshold'] if p['score_threshold'] >= 0 \
            else post.score_threshold
        self.detector.nms_iou_threshold = p['nms_iou_threshold'] if p['nms_iou_threshold'] >= 0 \
            else post.nms_iou_threshold
        self.detector.max_detections = p['max_detections'] if p['max_detections'] >= 0 \
            else post.max_detections
        self.class_filter = set(p['class_filter'])

    def publish_label_info(self):
        msg = label_info_msg(self.detector.classes, self.detector.score_threshold)
        msg.header.stamp = self.get_clock().now().to_msg()
        self.pub_labels.publish(msg)

    def on_parameters_changed(self, values, changed):
        """The dynamic parameters, already checked (ranges by rclpy, the rest by the table and the
        bundle's classes)."""
        self.settings = dict(values, class_filter=non_empty(values['class_filter']))
        self.apply_detector_settings(self.settings)
        self.health.thresholds = HealthThresholds(**{k: self.settings[k] for k in THRESHOLD_KEYS})
        if 'score_threshold' in changed:
            self.publish_label_info()

    # --- input: cheap, never blocks on the model ---------------------------------------
    def on_frame_with_info(self, msg, info):
        number = info.get('publication_sequence_number') if isinstance(info, dict) else None
        if isinstance(number, int) and 0 < number < 2 ** 63:  # None/0: the RMW gives none
            self.lost_counting = 'publication_sequence'
            self.health.record_lost(self.sequence_gaps.observe(publisher_source(info), number),
                                    time.monotonic())
        self.on_frame(msg)

    def on_message_lost(self, info):
        if self.lost_counting != 'publication_sequence' or \
                self.settings['lost_source'] == 'message_lost_event':
            self.lost_counting = 'message_lost_event'
            self.health.record_lost(int(info.total_count_change), time.monotonic())

    def on_frame(self, msg):
        now, received = time.monotonic(), (time.time_ns(), time.perf_counter())
        self.health.record_input(now)
        try:
            if isinstance(msg, CompressedImage):
                frame = msg  # decoded in the worker: decoding costs milliseconds
            else:
                if msg.encoding not in DETECTOR_ENCODINGS:
                    raise MessageFormatError('Image', 'encoding',
                                             f'{msg.encoding!r:.40} is not a colour or mono8 image '
                                             f'(accepted: {", ".join(DETECTOR_ENCODINGS)})')
                pixels, limit = int(msg.width) * int(msg.height), self.pixel_limit()
                if pixels > limit:
                    raise MessageFormatError('Image', 'height/width',
                                             f'{msg.width}x{msg.height} = {pixels} pixels, over '
                                             f'the limit {limit} (max_decoded_pixels)')
                frame = (msg, image_to_numpy(msg))
                self.first_frame_pixels = self.first_frame_pixels or pixels
        except Exception as exc:  # whatever a frame makes the conversion raise, it is bad input
            self.reject(exc, now)
            return
        if self.slot.put((frame, received)):
            self.health.record_drop(now=now)

    def reject(self, exc, now):
        reason = str(exc) if isinstance(exc, MessageFormatError) \
            else f'{type(exc).__name__}: {exc}'
        self.health.record_malformed(reason[:300], now)
        self.get_logger().warn(f'skipping malformed frame: {reason[:300]}',
                               throttle_duration_sec=5.0)

    # --- worker: newest frame only --------------------------------------------------------
    def work(self):
        while not self.slot.closed:
            item = self.slot.take(timeout=0.2)
            if item is None:
                continue
            start = time.perf_counter()
            frame, received = item
            try:
                msg, image, encoding = self.decode(frame)
            except Exception as exc:  # an undecodable frame is malformed input, whatever raised
                self.reject(exc, time.monotonic())
                continue
            try:
                self.process(msg, image, encoding, start, received)
            except Exception as exc:  # keep running; the failure is counted and reported
                if not self.context.ok():
                    break  # shutting down: publishers are gone
                self.health.record_failure(f'{type(exc).__name__}: {exc}', time.monotonic())
                self.get_logger().error(f'frame failed: {exc!r}', throttle_duration_sec=5.0)

    def decode(self, frame):
        if not isinstance(frame, CompressedImage):
            msg, image = frame
            return msg, image, msg.encoding
        image, encoding = compressed_image_to_numpy(frame, max_pixels=self.pixel_limit())
        if encoding not in DETECTOR_ENCODINGS:
            raise MessageFormatError('CompressedImage', 'data',
                                     f'decoded to {encoding}, not a colour or mono8 image')
        self.first_frame_pixels = self.first_frame_pixels or image.shape[0] * image.shape[1]
        return frame, image, encoding

    def process(self, msg, image, encoding, start, received):
        """``start``: perf_counter when the worker took the frame; ``received``: (time_ns,
        perf_counter) when the subscription callback got it."""
        dets = self.detector.detect_one(image, encoding)
        keep = np.ones(len(dets), dtype=bool)
        labels = dets.labels
        if self.class_filter:
            keep = np.array([label in self.class_filter for label in labels], dtype=bool)
        labels = [label for label, k in zip(labels, keep) if k]
        out = detections_to_msg(dets.boxes[keep], dets.scores[keep], labels, msg.header)
        self.pub_detections.publish(out)
        published_ns = time.time_ns()
        processing_ms = (time.perf_counter() - start) * 1e3
        stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        pipeline_ms = (published_ns - stamp_ns) / 1e6
        times = self.detector.last_times
        stage_ms = {'preprocess': times.preprocess * 1e3, 'inference': times.inference * 1e3,
                    'decode': times.decode * 1e3}
        self.health.record_output(time.monotonic(), processing_ms, pipeline_ms, stage_ms)
        self.latency_msg.data = [stamp_ns / 1e9, pipeline_ms, processing_ms,
                                 stage_ms['preprocess'], stage_ms['inference'], stage_ms['decode'],
                                 float(len(labels)), (received[0] - stamp_ns) / 1e6,
                                 (start - received[1]) * 1e3]
        self.pub_latency.publish(self.latency_msg)
        if self.settings['debug_image'] and self.pub_debug.get_subscription_count() > 0:
            self.publish_debug(image, encoding, dets, keep, labels, msg.header)

    def publish_debug(self, image, encoding, dets, keep, labels, header):
        import cv2
        if encoding == 'mono8':
            image, encoding = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR), 'bgr8'
        elif encoding in ('bgra8', 'rgba8'):
            image, encoding = np.ascontiguousarray(image[:, :, :3]), encoding[:3] + '8'
        canvas = draw_boxes(image, dets.boxes[keep], labels, dets.class_ids[keep],
                            dets.scores[keep], color_order=encoding[:3])
        self.pub_debug.publish(numpy_to_image(canvas, encoding, header=header))
        self.debug_images += 1

    def publish_diagnostics(self):
        report = self.health.report(time.monotonic())
        report.values.append(('debug_images_published', str(self.debug_images)))
        report.values.append(('lost_source', self.lost_counting))
        report.values.append(('max_decoded_pixels', str(self.pixel_limit())))
        report.values.append(('bundle', str(self.detector.bundle.path)))
        report.values.append(('backend', f'{self.detector.backend.name} on {self.detector.backend.device}'))
        report.values.append(('device', self.detector.backend.device))
        report.values.append(('device_requested', self.plan.requested))
        if self.gpu_load is not None:
            report.values.extend(diagnostic_values(self.gpu_load.read()).items())
        self.pub_diagnostics.publish(diagnostic_array(
            [(self.diagnostic_name, self.detector.bundle.name, report)],
            self.get_clock().now().to_msg()))

    def close(self):
        if self.slot is not None:
            self.slot.close()
        if self.worker is not None:
            self.worker.join(timeout=5.0)
        if self.gpu_load is not None:
            self.gpu_load.close()
        if self.detector is not None:
            self.detector.close()


def main(args=None):
    raise SystemExit(run_node(CameraDetector, args))


if __name__ == '__main__':
    main()
