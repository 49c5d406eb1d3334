"""One KITTI frame through camera detector, lidar detector and fusion (ROS-free): what
``aiat-lidar fuse``, the accuracy test and docs/fusion.md run, so they measure the same thing."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import numpy as np

from aiat_perception.fusion.camera import CameraModel, homogeneous
from aiat_perception.fusion.config import FusionConfig
from aiat_perception.fusion.fuse import FusionResult, fuse
from aiat_perception.fusion.kitti_eval import MatchedError, distance_errors
from aiat_perception.kitti import KittiCalibration, KittiObject, read_label
from aiat_perception.metrics.matching import LabeledBox


class FrameError(ValueError):
    pass


@dataclass
class KittiFrame:
    image: np.ndarray                     # BGR
    points: np.ndarray                    # N x 4 velodyne
    calib: KittiCalibration
    labels: Optional[List[KittiObject]] = None
    name: str = ''

    @classmethod
    def read(cls, image_path, cloud_path, calib_path, label_path=None) -> 'KittiFrame':
        """Load the files; any problem is a FrameError naming the file."""
        import cv2

        from aiat_perception.kitti import KittiFormatError
        from aiat_perception.lidar.point_files import PointFileError, load_points
        for p in [image_path, cloud_path, calib_path] + ([label_path] if label_path else []):
            if not Path(p).is_file():
                raise FrameError(f'{p}: no such file')
        image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
        if image is None:
            raise FrameError(f'{image_path}: not an image OpenCV can read')
        try:
            points = load_points(cloud_path)
        except PointFileError as exc:
            raise FrameError(str(exc)) from exc
        labels = None
        for path in [calib_path] + ([label_path] if label_path else []):
            try:
                if path == calib_path:
                    calib = KittiCalibration.read(path)
                else:
                    labels = read_label(path)
            except KittiFormatError as exc:
                raise FrameError(str(exc)) from exc
            except UnicodeDecodeError as exc:
                raise FrameError(f'{path}: not a text file') from exc
        return cls(image, points, calib, labels, Path(image_path).stem)

    @property
    def camera(self) -> CameraModel:
        return CameraModel.from_kitti(self.calib, self.image.shape[1], self.image.shape[0])

    @property
    def cam_from_lidar(self) -> np.ndarray:
        return homogeneous(self.calib.Tr_velo_to_cam)


@dataclass
class FrameFusion:
    detections: object                    # aiat_perception.inference.decode.Detections
    lidar_detections: list                # Detection3D, velodyne frame
    result: FusionResult
    errors: List[MatchedError] = field(default_factory=list)   # with labels
    camera_ms: float = 0.0
    lidar_ms: float = 0.0

    def labeled_boxes(self) -> List[LabeledBox]:
        d = self.detections
        return [LabeledBox(tuple(float(v) for v in b), label, float(s))
                for b, label, s in zip(d.boxes, d.labels, d.scores)]


def run_frame(frame: KittiFrame, detector, lidar_detector, config: Optional[FusionConfig] = None,
              moderate_only: bool = True) -> FrameFusion:
    """Camera detections (``detector``: an inference Detector), lidar detections
    (``lidar_detector``: a PointCloudDetector, or None to fuse without them), fusion, and with
    labels the distance error of every matched object (of moderate difficulty, or any with
    ``moderate_only=False``)."""
    import time
    t0 = time.perf_counter()
    dets = detector.detect_one(frame.image)
    t1 = time.perf_counter()
    lidar = lidar_detector(frame.points).detections if lidar_detector is not None else None
    t2 = time.perf_counter()
    result = fuse(dets.boxes, dets.labels, dets.scores, frame.points, frame.cam_from_lidar, frame.camera,
                  config, lidar)
    out = FrameFusion(dets, lidar or [], result, camera_ms=(t1 - t0) * 1e3, lidar_ms=(t2 - t1) * 1e3)
    if frame.labels is not None:
        out.errors = distance_errors(result, out.labeled_boxes(), frame.labels, frame.calib, moderate_only)
    return out
