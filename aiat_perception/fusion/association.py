"""Lidar 3D boxes in the camera image, matched to camera boxes (ROS-free).

A lidar detection's 8 box corners go through ``cam_from_lidar`` and the camera; the rectangle
around their pixels (clipped to the image) is its 2D box. Camera and lidar boxes are matched by
the project's one matcher (:func:`aiat_perception.metrics.matching.greedy_match` on the IoU
matrix, camera detections by descending score), class-agnostic: the lidar's classes (car,
pedestrian, cyclist, unknown) are not the camera's.
"""
from __future__ import annotations

from typing import List, NamedTuple, Optional, Sequence

import numpy as np

from aiat_perception.fusion.camera import CameraModel, transform_points
from aiat_perception.metrics.matching import Matches, greedy_match, iou_matrix


SIGNS = np.array([[sx, sy, sz] for sx in (1, -1) for sy in (1, -1) for sz in (1, -1)], dtype=np.float64)


def box_corners_3d(center, size, yaw: float) -> np.ndarray:
    """8 x 3 corners of a box (centre, size = length along yaw, width, height; yaw about +z)."""
    return boxes_corners_3d(np.asarray(center, np.float64)[None], np.asarray(size, np.float64)[None],
                            np.array([yaw], np.float64))[0]


def boxes_corners_3d(centers: np.ndarray, sizes: np.ndarray, yaws: np.ndarray) -> np.ndarray:
    """K x 8 x 3 corners of K boxes (centres K x 3, sizes K x 3, yaws K)."""
    local = SIGNS[None] * (sizes[:, None, :] / 2.0)                            # K, 8, 3
    c, s = np.cos(yaws)[:, None], np.sin(yaws)[:, None]
    out = np.empty_like(local)
    out[..., 0] = c * local[..., 0] - s * local[..., 1]
    out[..., 1] = s * local[..., 0] + c * local[..., 1]
    out[..., 2] = local[..., 2]
    return out + centers[:, None, :]


class ProjectedBoxes(NamedTuple):
    boxes: np.ndarray           # L x 4 xyxy pixels, clipped to the image (NaN where not in view)
    in_view: np.ndarray         # L bool: every corner in front of the camera, the centre in the image
    centers_cam: np.ndarray     # L x 3: box centres in the camera frame


def project_boxes(detections: Sequence, cam_from_lidar: np.ndarray, camera: CameraModel) -> ProjectedBoxes:
    """The image rectangles of lidar detections (objects with center, size, yaw in the lidar frame)."""
    n = len(detections)
    boxes = np.full((n, 4), np.nan)
    in_view = np.zeros(n, bool)
    if not n:
        return ProjectedBoxes(boxes, in_view, np.zeros((0, 3)))
    centers = np.array([d.center for d in detections], dtype=np.float64).reshape(n, 3)
    sizes = np.array([d.size for d in detections], dtype=np.float64).reshape(n, 3)
    yaws = np.array([d.yaw for d in detections], dtype=np.float64).reshape(n)
    corners = boxes_corners_3d(centers, sizes, yaws).reshape(-1, 3)
    cam = transform_points(np.concatenate([corners, centers]), cam_from_lidar)
    proj = camera.project(cam, within_image=False)
    uv = proj.uv[:8 * n].reshape(n, 8, 2)
    centre_uv = proj.uv[8 * n:]
    ok = np.all(np.isfinite(uv[:, :, 0]), axis=1)
    with np.errstate(invalid='ignore'):
        ok &= ((centre_uv[:, 0] >= 0) & (centre_uv[:, 0] < camera.width)
               & (centre_uv[:, 1] >= 0) & (centre_uv[:, 1] < camera.height))
    if ok.any():
        lo, hi = uv[ok].min(axis=1), uv[ok].max(axis=1)
        boxes[ok] = np.concatenate([np.clip(lo, 0, [camera.width, camera.height]),
                                    np.clip(hi, 0, [camera.width, camera.height])], axis=1)
    in_view = ok
    return ProjectedBoxes(boxes, in_view, cam[8 * n:])


def associate(camera_boxes: np.ndarray, camera_scores: np.ndarray, projected: ProjectedBoxes,
              iou_threshold: float) -> Matches:
    """Per camera box: the index of its lidar detection (-1 = none) and their IoU; only lidar
    detections in view take part."""
    camera_boxes = np.asarray(camera_boxes, np.float64).reshape(-1, 4)
    iou = iou_matrix(camera_boxes, np.nan_to_num(projected.boxes, nan=0.0))
    iou[:, ~projected.in_view] = np.nan
    iou[~np.all(np.isfinite(camera_boxes), axis=1)] = np.nan
    return greedy_match(iou, np.asarray(camera_scores, np.float64).reshape(-1), iou_threshold)


def lidar_indices(matches: Matches) -> List[Optional[int]]:
    return [int(g) if g >= 0 else None for g in matches.gt_index.tolist()]
