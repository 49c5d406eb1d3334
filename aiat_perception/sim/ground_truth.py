"""Ground-truth records (plain dataclasses) and the pure functions that compute them from a
segmentation mask and from projected geometry."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np


@dataclass
class Box2D:
    actor: str
    actor_index: int
    class_name: str
    kitti_class: str
    bbox: Tuple[float, float, float, float]       # visible pixels: x0, y0, x1, y1 (x1/y1 exclusive)
    bbox_full: Tuple[float, float, float, float]  # unoccluded silhouette, clipped to the image
    visible_pixels: int
    unoccluded_pixels: float                      # silhouette pixels inside the image without occluders
    visibility: float                             # visible / unoccluded (1 = nothing in front)
    truncation: float                             # silhouette fraction outside the image
    occlusion_level: int                          # KITTI: 0 fully visible, 1 partly, 2 largely occluded


@dataclass
class Box3D:
    actor: str
    actor_index: int
    class_name: str
    kitti_class: str
    frame_id: str
    pose: np.ndarray          # 4x4: box centre and axes (x = length/heading, y = width, z = up)
    size: np.ndarray          # length, width, height (metres)

    @property
    def center(self) -> np.ndarray:
        return self.pose[:3, 3]

    @property
    def yaw(self) -> float:
        """Heading about the frame's z axis (meaningful in map/base_link frames)."""
        return float(np.arctan2(self.pose[1, 0], self.pose[0, 0]))

    def corners(self) -> np.ndarray:
        """8x3 corners in the frame: x/y/z signs of (l/2, w/2, h/2) in binary order."""
        signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=float)
        local = signs * (self.size / 2.0)
        return local @ self.pose[:3, :3].T + self.pose[:3, 3]


def mask_boxes(segmentation: np.ndarray) -> Dict[int, Tuple[Tuple[int, int, int, int], int]]:
    """For every id >= 0 in an integer mask: ((x0, y0, x1, y1) with exclusive x1/y1, pixel count)."""
    flat = segmentation.ravel()
    ids, counts = np.unique(flat[flat >= 0], return_counts=True)
    out = {}
    for actor_id, count in zip(ids.tolist(), counts.tolist()):
        hit = segmentation == actor_id
        rows = np.flatnonzero(hit.any(axis=1))
        cols = np.flatnonzero(hit.any(axis=0))
        out[actor_id] = ((int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1), int(count))
    return out


def project(K: np.ndarray, points_cam: np.ndarray) -> np.ndarray:
    """Pinhole projection of Nx3 optical-frame points to Nx2 pixel coordinates (centre convention)."""
    z = points_cam[:, 2:3]
    return (points_cam[:, :2] / z) @ K[:2, :2].T + K[:2, 2]


def projected_rect(K: np.ndarray, corners_cam: np.ndarray, near: float, width: int, height: int
                   ) -> Optional[Tuple[float, float, float, float]]:
    """Pixel rectangle (edges, x1/y1 exclusive) covering projected box corners; None if the box is
    entirely behind the near plane. Corners behind the camera make the rectangle span the image
    (with a one-image margin), a safe over-estimate."""
    in_front = corners_cam[:, 2] > near
    if not in_front.any():
        return None
    if not in_front.all():
        return (-float(width), -float(height), 2.0 * width, 2.0 * height)
    uv = project(K, corners_cam)
    return (float(uv[:, 0].min()) + 0.5 - 1.0, float(uv[:, 1].min()) + 0.5 - 1.0,
            float(uv[:, 0].max()) + 0.5 + 1.0, float(uv[:, 1].max()) + 0.5 + 1.0)


def rects_overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def occlusion_level(visibility: float, levels: Tuple[float, float]) -> int:
    occluded = 1.0 - visibility
    if occluded < levels[0]:
        return 0
    if occluded < levels[1]:
        return 1
    return 2
