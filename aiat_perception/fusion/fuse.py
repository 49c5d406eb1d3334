"""Camera 2D detections + a lidar scan -> objects with a 3D position (ROS-free).

``fuse(boxes, class_names, scores, points, cam_from_lidar, camera, config)``:

1. the lidar points (finite ones, ``min_range``..``max_range`` from the camera) go into the camera
   frame and through the camera (:mod:`aiat_perception.fusion.camera`);
2. per 2D box, the points inside its central part (``box_shrink``: the box's corners show
   background; the whole box when the central part holds fewer than ``min_points``) form depth
   clusters; the dominant one is the object
   (:func:`aiat_perception.fusion.estimate.dominant_cluster`);
3. lidar detections, when given, are projected and matched to the camera boxes
   (:mod:`aiat_perception.fusion.association`);
4. the object's centre: the associated lidar box's centre (``use_lidar_center``, when that
   centre lies within the object's depth of the visible points), else the visible surface (median
   of the cluster) pushed back by half the class's typical depth (:data:`DEFAULT_CLASS_DEPTH`).
   ``distance`` is the centre's distance from the camera frame's origin; ``surface_distance`` the
   visible surface's.

Positions are in the camera frame: the frame ``cam_from_lidar`` maps into (for KITTI, the
reference camera 0, where ``Tr_velo_to_cam`` leads; rotate by R0_rect to compare with labels).
Bad input loses nothing: non-finite points are dropped and counted, a non-finite box is unsupported.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from aiat_perception.fusion.association import ProjectedBoxes, associate, project_boxes
from aiat_perception.fusion.camera import CameraModel, point_columns, transform_columns
from aiat_perception.fusion.config import FusionConfig
from aiat_perception.fusion.estimate import dominant_cluster, estimate_columns, push_back


@dataclass
class FusedObject:
    detection_index: int              # index of the 2D box in the input
    class_name: str
    score: float
    position: np.ndarray              # 3: estimated centre, camera frame (metres)
    distance: float                   # metres from the camera frame's origin to ``position``
    extent: np.ndarray                # 3: size of the supporting points along the camera axes
    covariance: np.ndarray            # 3x3 (m^2)
    n_points: int                     # supporting points (the dominant cluster)
    lidar_index: Optional[int]        # associated lidar detection, or None
    box_xyxy: np.ndarray              # 4: the 2D box
    surface: np.ndarray = field(default_factory=lambda: np.zeros(3))   # visible surface point
    surface_distance: float = 0.0     # metres to ``surface``
    center_source: str = 'class_depth'  # 'lidar' (associated box centre) | 'class_depth'

    def to_dict(self) -> Dict[str, object]:
        return {'detection_index': self.detection_index, 'class': self.class_name,
                'score': round(float(self.score), 4),
                'box': [round(float(v), 1) for v in self.box_xyxy],
                'distance': round(float(self.distance), 3),
                'position': [round(float(v), 3) for v in self.position],
                'surface_distance': round(float(self.surface_distance), 3),
                'extent': [round(float(v), 3) for v in self.extent],
                'n_points': int(self.n_points), 'lidar_index': self.lidar_index,
                'center_source': self.center_source}


@dataclass
class FusionResult:
    objects: List[FusedObject]
    unsupported: List[int]            # 2D boxes without enough points
    confirmed: int                    # of those counted in camera_count, the ones a lidar detection
                                      # confirms (without lidar detections: those with enough points)
    camera_count: int                 # camera detections of config.confirm_classes (all when empty),
                                      # except those fused farther than config.confirm_max_distance
    lidar_in_view: int                # lidar detections of config.miss_classes projecting into the image
    lidar_missed: int                 # of those, the ones no camera box matches
    ious: List[float]                 # IoU of each associated (camera box, projected lidar box) pair
    stage_ms: Dict[str, float]
    points_dropped: int = 0           # non-finite points ignored
    points_in_image: int = 0
    lidar_boxes: Optional[np.ndarray] = None    # L x 4 projected lidar boxes (NaN: not in view)

    @property
    def total_ms(self) -> float:
        return float(sum(self.stage_ms.values()))


def _points(points_lidar):
    """x, y, z columns (float64) of N x 3+ points or a structured array with x, y, z fields."""
    pts = np.asarray(points_lidar)
    if pts.dtype.names:
        return tuple(np.ascontiguousarray(pts[k], dtype=np.float64).reshape(-1) for k in ('x', 'y', 'z'))
    if pts.size == 0:
        return tuple(np.zeros(0) for _ in range(3))
    if pts.ndim != 2 or pts.shape[1] < 3:
        raise ValueError(f'points are N x 3 or N x 4 (x, y, z[, intensity]), got shape {pts.shape}')
    return point_columns(pts)


def _boxes(boxes_xyxy, n_names: int, scores) -> tuple:
    boxes = np.asarray(boxes_xyxy, dtype=np.float64)
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f'boxes are K x 4 (x0, y0, x1, y1), got shape {boxes.shape}')
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(scores) != len(boxes) or n_names != len(boxes):
        raise ValueError(f'{len(boxes)} boxes, {n_names} class names and {len(scores)} scores')
    return boxes, scores


def _points_in_box(u: np.ndarray, uv: np.ndarray, box: np.ndarray, shrink: float) -> np.ndarray:
    """Indices of the pixels (sorted by u) inside the central ``shrink`` part of ``box``."""
    cx, cy = (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0
    hw, hh = (box[2] - box[0]) * shrink / 2.0, (box[3] - box[1]) * shrink / 2.0
    lo, hi = np.searchsorted(u, cx - hw, 'left'), np.searchsorted(u, cx + hw, 'right')
    v = uv[lo:hi, 1]
    return np.flatnonzero((v >= cy - hh) & (v <= cy + hh)) + lo


def fuse(boxes_xyxy, class_names: Sequence[str], scores, points_lidar, cam_from_lidar,
         camera: CameraModel, config: Optional[FusionConfig] = None,
         lidar_detections: Optional[Sequence] = None) -> FusionResult:
    """Fuse one frame; see the module's documentation."""
    cfg = config or FusionConfig()
    times: Dict[str, float] = {}
    t0 = time.perf_counter()
    boxes, scores = _boxes(boxes_xyxy, len(class_names), scores)
    x, y, z = _points(points_lidar)
    t1 = time.perf_counter()
    times['points'] = (t1 - t0) * 1e3
    idx, uv, dropped = camera.visible(x, y, z, cam_from_lidar)
    t2 = time.perf_counter()
    times['project'] = (t2 - t1) * 1e3
    cols = transform_columns(x[idx], y[idx], z[idx], cam_from_lidar)
    with np.errstate(over='ignore', invalid='ignore'):       # absurd coordinates: infinitely far
        rng = np.sqrt(cols[0] * cols[0] + cols[1] * cols[1] + cols[2] * cols[2])
        near = np.flatnonzero((rng >= cfg.min_range) & (rng <= cfg.max_range))
    order = near[np.argsort(uv[near, 0])]
    cam, rng, uv = cols[:, order], rng[order], uv[order]          # cam: 3 x K
    t3 = time.perf_counter()
    times['transform'] = (t3 - t2) * 1e3

    lidar_index: List[Optional[int]] = [None] * len(boxes)
    box_iou = [0.0] * len(boxes)
    projected: Optional[ProjectedBoxes] = None
    in_view = missed = 0
    if lidar_detections is not None:
        projected = project_boxes(lidar_detections, cam_from_lidar, camera)
        m = associate(boxes, scores, projected, cfg.association_iou)
        for k, (g, a) in enumerate(zip(m.gt_index.tolist(), m.affinity.tolist())):
            if g >= 0:
                lidar_index[k], box_iou[k] = int(g), float(a)
        taken = set(g for g in m.gt_index.tolist() if g >= 0)
        counted = [i for i, d in enumerate(lidar_detections)
                   if projected.in_view[i] and d.class_name in cfg.miss_classes]
        in_view = len(counted)
        missed = sum(1 for i in counted if i not in taken)
    t4 = time.perf_counter()
    times['associate'] = (t4 - t3) * 1e3

    objects: List[FusedObject] = []
    unsupported: List[int] = []
    u = uv[:, 0]
    for k, box in enumerate(boxes):
        if not np.all(np.isfinite(box)) or box[2] <= box[0] or box[3] <= box[1]:
            unsupported.append(k)
            continue
        inside = _points_in_box(u, uv, box, cfg.box_shrink)
        if len(inside) < cfg.min_points and cfg.box_shrink < 1.0:
            # a far or small object: every point counts, the dominant cluster keeps the background out
            inside = _points_in_box(u, uv, box, 1.0)
        if len(inside) < cfg.min_points:
            unsupported.append(k)
            continue
        cluster = inside[dominant_cluster(rng[inside], cfg.depth_gap)]
        if len(cluster) < cfg.min_points:
            unsupported.append(k)
            continue
        est = estimate_columns(cam.take(cluster, axis=1), cfg.range_noise)     # take: C-contiguous rows
        name = str(class_names[k])
        depth = cfg.depth_of(name)
        position, source = push_back(est.surface, depth), 'class_depth'
        surface_distance = float(np.linalg.norm(est.surface))
        g = lidar_index[k]
        if g is not None and cfg.use_lidar_center and projected is not None:
            lidar_centre = projected.centers_cam[g]
            # the lidar box must be the same object: its centre within the object's depth (plus
            # the cluster gap) behind or in front of the visible surface
            if abs(float(np.linalg.norm(lidar_centre)) - surface_distance) <= max(depth, cfg.depth_gap):
                position, source = lidar_centre.copy(), 'lidar'
        objects.append(FusedObject(k, name, float(scores[k]), position, float(np.linalg.norm(position)),
                                   est.extent, est.covariance, int(len(cluster)), g, box.copy(),
                                   est.surface, surface_distance, source))
    times['boxes'] = (time.perf_counter() - t4) * 1e3

    # the camera detections the lidar should confirm: a class it detects, not fused beyond its reach
    # (config.confirm_max_distance). A box with no points counts (unconfirmed): under a wrong
    # calibration the points miss the boxes, and that is disagreement, not absence.
    distance = {o.detection_index: o.distance for o in objects}
    counted = [k for k in range(len(boxes))
               if (not cfg.confirm_classes or str(class_names[k]) in cfg.confirm_classes)
               and distance.get(k, 0.0) <= cfg.confirm_max_distance]
    if lidar_detections is not None:
        confirmed = sum(1 for k in counted if lidar_index[k] is not None)
    else:
        confirmed = sum(1 for k in counted if k in distance)
    ious = [box_iou[k] for k in range(len(boxes)) if lidar_index[k] is not None]
    return FusionResult(objects, unsupported, confirmed, len(counted), in_view, missed, ious, times,
                        dropped, int(len(uv)), None if projected is None else projected.boxes)
