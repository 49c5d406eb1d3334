"""A KITTI object (or raw-layout) directory -> a rosbag2 bag.

Per frame (sorted by name, stamped ``start + i / rate``; KITTI object frames carry no time):
``/camera/image_raw`` (Image bgr8, or ``/camera/image_raw/compressed`` PNG), ``/camera/camera_info``
(P = P2, no distortion: the images are rectified), ``/velodyne_points`` (PointCloud2 x y z intensity),
``/ground_truth/detections_2d`` (every label_2 box, class = the KITTI type, DontCare included so an
evaluator can ignore those areas) and ``/ground_truth/detections_3d`` (boxes in the velodyne frame,
classes mapped onto the lidar detector's as metrics.kitti_rules does). ``/tf_static`` holds
``velodyne -> camera_rect`` (written again whenever the next frame's calib differs) (the rectified camera 0 frame, R0_rect @ Tr_velo_to_cam), so
P2 @ lookup(camera_rect <- velodyne) reproduces the devkit projection; the frame of the images and
CameraInfo is ``camera_rect`` because P2's fourth column carries camera 2's baseline.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from aiat_perception.kitti import KittiCalibration, KittiFormatError, read_label, read_velodyne
from aiat_perception.replay import messages as m
from aiat_perception.replay import topics
from aiat_perception.replay.bag_writer import DEFAULT_VERSION, BagWriter
from aiat_perception.static_transforms import invert

CAMERA_FRAME = 'camera_rect'
LIDAR_FRAME = 'velodyne'
START_NS = 1_300_000_000 * 1_000_000_000   # a fixed start keeps converted bags byte-identical


class ConvertError(ValueError):
    pass


def _layout(root: Path) -> Path:
    """The folder that holds image_2/velodyne/calib/label_2 (``root`` or ``root/training``)."""
    for candidate in (root, root / 'training'):
        if (candidate / 'image_2').is_dir() or (candidate / 'velodyne').is_dir():
            return candidate
    raise ConvertError(f'{root}: not a KITTI object directory (no image_2/ or velodyne/, nor training/ with them)')


def frame_ids(root: Path) -> List[str]:
    names = set()
    for sub, ext in (('image_2', '.png'), ('velodyne', '.bin')):
        if (root / sub).is_dir():
            names.update(p.stem for p in (root / sub).glob('*' + ext))
    return sorted(names)


def convert_kitti(src, out, compressed: bool = False, storage: str = 'mcap', rate_hz: float = 10.0,
                  frames: Optional[List[str]] = None, version: int = DEFAULT_VERSION) -> Dict[str, int]:
    """Write the bag; returns message counts per topic."""
    import cv2
    root = _layout(Path(src))
    ids = frames or frame_ids(root)
    if not ids:
        raise ConvertError(f'{root}: no frames (image_2/*.png or velodyne/*.bin)')
    period = int(round(1e9 / rate_hz))
    with BagWriter(out, storage, version) as bag:
        last_extrinsic = None
        for i, name in enumerate(ids):
            ns = START_NS + i * period
            calib_path = root / 'calib' / f'{name}.txt'
            if not calib_path.is_file():
                raise ConvertError(f'{calib_path}: missing (every frame needs its calib)')
            try:
                calib = KittiCalibration.read(calib_path)
            except KittiFormatError as exc:
                raise ConvertError(str(exc)) from exc
            if last_extrinsic is None or not np.array_equal(last_extrinsic, calib.rect_from_velo):
                # object-benchmark frames come from different drives, each with its own calib: a new
                # /tf_static message replaces the transform from then on (tf's rule for static frames)
                velo_from_rect = invert(calib.rect_from_velo)
                bag.write(topics.TF_STATIC, m.TF_MESSAGE, m.tf_message([(LIDAR_FRAME, CAMERA_FRAME, velo_from_rect)], ns),
                          ns, latched=True)
                last_extrinsic = calib.rect_from_velo
            size = None
            image_path = root / 'image_2' / f'{name}.png'
            if image_path.is_file():
                img = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
                if img is None:
                    raise ConvertError(f'{image_path}: not a readable image')
                size = (img.shape[1], img.shape[0])
                if compressed:
                    bag.write(topics.COMPRESSED_IMAGE, m.COMPRESSED_IMAGE, m.compressed_image(img, ns, CAMERA_FRAME), ns)
                else:
                    bag.write(topics.IMAGE, m.IMAGE, m.image(img, 'bgr8', ns, CAMERA_FRAME), ns)
                bag.write(topics.CAMERA_INFO, m.CAMERA_INFO, m.camera_info(calib.P[2], size[0], size[1], ns, CAMERA_FRAME), ns)
            velo_path = root / 'velodyne' / f'{name}.bin'
            if velo_path.is_file():
                try:
                    points = read_velodyne(velo_path)
                except KittiFormatError as exc:
                    raise ConvertError(str(exc)) from exc
                bag.write(topics.POINTS, m.POINTCLOUD2, m.pointcloud2(points, ns, LIDAR_FRAME), ns)
            label_path = root / 'label_2' / f'{name}.txt'
            if label_path.is_file():
                _write_labels(bag, label_path, calib, ns)
        return dict(bag.counts)


def _write_labels(bag: BagWriter, path: Path, calib: KittiCalibration, ns: int) -> None:
    from aiat_perception.metrics import kitti_rules
    try:
        labels = read_label(path)
    except KittiFormatError as exc:
        raise ConvertError(str(exc)) from exc
    bag.write(topics.GT_2D, m.DETECTION_2D_ARRAY,
              m.detection_2d_array([o.bbox for o in labels], [o.type for o in labels], None, ns, CAMERA_FRAME), ns)
    objects, _ = kitti_rules.ground_truth(calib, labels)
    bag.write(topics.GT_3D, m.DETECTION_3D_ARRAY, m.detection_3d_array(objects, ns, LIDAR_FRAME), ns)


def projection_from_bag(camera_info, tf_buffer, source_frame: str = LIDAR_FRAME) -> np.ndarray:
    """3x4 pixels_from_source: CameraInfo.P @ (camera <- source) from the bag's /tf_static."""
    P = np.asarray(camera_info.p, dtype=np.float64).reshape(3, 4)
    return P @ tf_buffer.lookup(camera_info.header.frame_id, source_frame)
