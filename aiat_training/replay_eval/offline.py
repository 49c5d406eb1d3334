"""Offline mode: every message of the bag straight through the ROS-free cores (camera ``Detector``,
``PointCloudDetector``, ``ScanDetector``), as fast as they go; deterministic."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Dict, Optional

import numpy as np

from aiat_perception.replay import messages as m
from aiat_perception.replay.bag_input import ReplayError, Streams, iterate
from aiat_training.replay_eval.frames import MAX_THUMBS, Collected, SensorFrame, thumbnail

REPO_CONFIG = Path(__file__).resolve().parents[2] / 'config'


def camera_detector(bundle=None, score_threshold: Optional[float] = None):
    from aiat_perception.cli.detect import CliError, ensure_default_bundle
    from aiat_perception.inference.detector import Detector
    try:
        path = bundle or ensure_default_bundle(quiet=True)
    except CliError as exc:
        raise ReplayError(str(exc)) from exc
    return Detector(path, score_threshold=score_threshold)


def lidar_detector(params_file=None):
    from aiat_perception.lidar.detector import PARAMETERS, PointCloudDetector
    from aiat_perception.lidar.params import read_yaml
    path = params_file or REPO_CONFIG / 'lidar_detector.yaml'
    return PointCloudDetector(read_yaml(path, 'lidar_detector', PARAMETERS) if Path(path).is_file() else None)


def scan_detector(params_file=None):
    from aiat_perception.lidar.params import read_yaml
    from aiat_perception.lidar.scan import SCAN_PARAMETERS, ScanDetector
    path = params_file or REPO_CONFIG / 'scan_detector.yaml'
    return ScanDetector(read_yaml(path, 'scan_detector', SCAN_PARAMETERS) if Path(path).is_file() else None)


def decode_image(msg, msgtype: str):
    from aiat_perception.msg_conversions import compressed_image_to_numpy, image_to_numpy
    if msgtype == m.COMPRESSED_IMAGE:
        return compressed_image_to_numpy(msg)
    return image_to_numpy(msg), msg.encoding


def fusion_config(params_file=None):
    """(FusionConfig, pair tolerance ns) from the fusion node's parameter file (``fusion:
    ros__parameters:``; default config/fusion.yaml): the settings the node fuses with live."""
    from aiat_perception.fusion.config import FusionConfig, FusionConfigError
    from aiat_perception.node_params.fusion import TABLE, fusion_settings
    from aiat_perception.parameters import ParameterError
    from aiat_perception.yaml_section import read_yaml
    path = Path(params_file or REPO_CONFIG / 'fusion.yaml')
    try:
        doc = read_yaml(path) or {}
        section = (doc.get('fusion') or {}).get('ros__parameters') if isinstance(doc, dict) else None
        if not isinstance(section, dict):
            raise ParameterError(f'{path}: no "fusion: ros__parameters:" mapping')
        values = TABLE.validated({k: v for k, v in section.items() if k in TABLE})
        unknown = sorted(k for k in section if k not in TABLE)
        if unknown:
            raise ParameterError(f'{path}: unknown fusion parameter(s) {", ".join(unknown)}')
        return FusionConfig(**fusion_settings(values)), int(round(float(values['pair_tolerance_s']) * 1e9))
    except (FusionConfigError, ParameterError, ValueError) as exc:
        message = str(exc) if str(path) in str(exc) else f'{path}: {exc}'
        raise ReplayError(message) from exc


def fusion_core(config=None) -> Callable:
    from aiat_perception.fusion.fuse import fuse

    def run(boxes, labels, scores, xyz, cam_from_lidar, camera, lidar_detections):
        return fuse(boxes, labels, scores, xyz, cam_from_lidar, camera, config, lidar_detections)
    return run


def collect(path, streams: Streams, detect_camera: Optional[Callable] = None, detect_points: Optional[Callable] = None,
            detect_scan: Optional[Callable] = None, thumbs: bool = True, fuse: Optional[Callable] = None,
            fusion_tolerance_ns: int = 50_000_000, fusion_frames: bool = False) -> Collected:
    """Read the bag once; run each sensor message through its detector (None: record the input only,
    the live mode fills detections in later). With ``fuse`` (:func:`fusion_core`) and both detectors,
    each camera frame and the cloud nearest to it in stamp also make a ``fusion`` frame; with
    ``fusion_frames`` alone (live mode) those frames are made without fusing (the node fills them in)."""
    from aiat_training.replay_eval.fusion_frames import CameraEntry, CloudEntry, FusionStage
    from aiat_perception.lidar.evaluate import scan_arrays
    from aiat_perception.msg_conversions import MessageFormatError, cloud_xyz
    from aiat_perception.replay.kitti_bag import projection_from_bag
    from aiat_perception.static_transforms import StaticTransformBuffer, TransformError
    out = Collected(str(path), notes=list(streams.notes))
    counters: Dict[str, int] = {}
    tf, static = StaticTransformBuffer(), {}
    camera_info = None
    pending_legs = None

    def fusion_frame(entry, cloud, ms, objects, details, T, model):
        index = counters.get('fusion', 0)
        counters['fusion'] = index + 1
        frame = SensorFrame('fusion', index, entry.frame.stamp_ns, detections=objects if fusing else None,
                            processing_ms=ms,
                            image_size=(model.width, model.height),
                            extra={'fused': details, 'cam_from_lidar': T, 'camera': model})
        frame.ignore_projection = model.P @ T if model.rectified else None
        out.frames.append(frame)

    fusing = fuse is not None and detect_camera is not None and detect_points is not None
    stage = FusionStage(fuse if fusing else None, fusion_tolerance_ns, fusion_frame) if fusing or fusion_frames else None
    for topic, _, msg in iterate(path, streams.topics()):
        if topic == streams.tf_static:
            # static transforms accumulate; a newer one for the same child frame replaces the older
            for t in msg.transforms:
                static[t.child_frame_id] = t
            tf = StaticTransformBuffer()
            for t in static.values():
                try:
                    tf.add(t)
                except TransformError as exc:
                    out.notes.append(f'/tf_static: {exc}')
            continue
        if topic == streams.camera_info:
            camera_info = msg
            if stage is not None:
                stage.add_camera_info(msg)
            continue
        if topic == streams.gt_2d:
            out.truth.setdefault('camera', {})[m.stamp_ns(msg.header)] = m.boxes_2d(msg)
            continue
        if topic == streams.gt_3d:
            out.truth.setdefault('lidar', {})[m.stamp_ns(msg.header)] = m.objects_3d(msg)
            continue
        if topic == streams.gt_scan:
            if streams.gt_scan_type == m.POSE_ARRAY:
                pending_legs = np.array([[p.position.x, p.position.y] for p in msg.poses], np.float64).reshape(-1, 2)
            else:
                out.truth.setdefault('scan', {})[m.stamp_ns(msg.header)] = m.objects_3d(msg)
            continue
        sensor = {streams.camera: 'camera', streams.points: 'lidar', streams.scan: 'scan'}.get(topic)
        if sensor is None:
            continue
        index = counters.get(sensor, 0)
        counters[sensor] = index + 1
        frame = SensorFrame(sensor, index, m.stamp_ns(msg.header))
        out.frames.append(frame)
        try:
            if sensor == 'camera':
                image, encoding = decode_image(msg, streams.camera_type)
                frame.image_size = (int(image.shape[1]), int(image.shape[0]))
                if thumbs and index < MAX_THUMBS:
                    frame.thumb, frame.thumb_scale = thumbnail(image, encoding)
                if detect_camera is not None:
                    t0 = time.perf_counter()
                    dets = detect_camera(image, encoding)
                    frame.processing_ms = (time.perf_counter() - t0) * 1e3
                    frame.detections = (np.asarray(dets.boxes, np.float64).reshape(-1, 4), list(dets.labels),
                                        np.asarray(dets.scores, np.float64))
                if stage is not None:
                    found = frame.detections or (np.zeros((0, 4)), [], np.zeros(0))
                    stage.add_camera(CameraEntry(frame, *found), tf)
            elif sensor == 'lidar':
                xyz, _ = cloud_xyz(msg)
                if camera_info is not None:
                    try:
                        frame.ignore_projection = projection_from_bag(camera_info, tf, msg.header.frame_id)
                        frame.image_size = (int(camera_info.width), int(camera_info.height))
                    except TransformError:
                        pass
                if detect_points is not None:
                    t0 = time.perf_counter()
                    result = detect_points(xyz)
                    frame.processing_ms = (time.perf_counter() - t0) * 1e3
                    frame.detections = _objects(result.detections)
                if stage is not None:
                    stage.add_cloud(CloudEntry(frame.stamp_ns, msg.header.frame_id, xyz if fusing else None,
                                               result.detections if fusing else []), tf)
            else:
                frame.gt_inline, pending_legs = pending_legs, None
                ranges, angles, rmin, rmax = scan_arrays(msg)
                if detect_scan is not None:
                    t0 = time.perf_counter()
                    result = detect_scan(ranges, angles, rmin, rmax)
                    frame.processing_ms = (time.perf_counter() - t0) * 1e3
                    frame.detections = _objects(result.detections)
        except (MessageFormatError, ValueError) as exc:
            frame.malformed = ' '.join(str(exc).split())[:200]
    if stage is not None:
        stage.finish(tf)
        if stage.unpaired:
            out.notes.append(f'fusion: {stage.unpaired} camera frame(s) had no point cloud within '
                             f'{fusion_tolerance_ns / 1e6:g} ms (or no usable CameraInfo / transform) and were not fused')
        out.notes.extend(f'fusion: {p}' for p in sorted(set(stage.problems))[:5])
    if not out.frames:
        raise ReplayError(f'{path}: the sensor topics ({", ".join(t for t in (streams.camera, streams.points, streams.scan) if t)}) '
                          'hold no messages')
    return out


def _objects(detections):
    from aiat_perception.lidar.evaluate import as_object
    return [as_object(d) for d in detections]

