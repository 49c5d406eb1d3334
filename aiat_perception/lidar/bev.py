"""Bird's-eye-view pictures (OpenCV): points coloured by height, detections and ground truth as boxes."""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from aiat_perception.lidar.types import box_corners_bev

CLASS_COLORS = {'car': (60, 60, 255), 'pedestrian': (60, 220, 60), 'cyclist': (255, 160, 40),
                'unknown': (150, 150, 150), 'leg': (40, 200, 255), 'person': (60, 220, 60), 'other': (150, 150, 150)}
TRUTH_COLOR = (255, 255, 255)


def render_bev(points: np.ndarray, detections: Sequence = (), ground_truth: Sequence = (),
               extent: Tuple[float, float, float, float] = (-10.0, 60.0, -30.0, 30.0), pixels_per_m: float = 10.0,
               title: str = '', not_counted: Optional[Sequence[bool]] = None) -> np.ndarray:
    """BGR image: x forward is up, y left is left. ``detections`` have class_name, center, size, yaw,
    score; ``ground_truth`` the same fields (class_name, center, size, yaw). Detections flagged in
    ``not_counted`` (outside the labelled region) are drawn dashed-thin."""
    x0, x1, y0, y1 = extent
    height, width = int(round((x1 - x0) * pixels_per_m)), int(round((y1 - y0) * pixels_per_m))
    if not 0 < height * width <= 16_000_000:
        raise ValueError(f'BEV extent {extent} at {pixels_per_m} px/m is not a sensible picture size')
    img = np.full((height, width, 3), 18, np.uint8)

    def to_px(xy: np.ndarray) -> np.ndarray:
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        return np.stack([(y1 - xy[:, 1]) * pixels_per_m, (x1 - xy[:, 0]) * pixels_per_m], axis=1)

    # range rings every 10 m
    centre = to_px([[0.0, 0.0]])[0]
    for r in range(10, int(max(abs(x0), abs(x1), abs(y0), abs(y1))) + 10, 10):
        cv2.circle(img, (int(centre[0]), int(centre[1])), int(r * pixels_per_m), (45, 45, 45), 1, cv2.LINE_AA)
        cv2.putText(img, f'{r} m', (int(centre[0]) + 3, int(centre[1] - r * pixels_per_m) + 12),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.35, (90, 90, 90), 1, cv2.LINE_AA)
    pts = np.asarray(points, dtype=np.float64)
    if len(pts):
        pts = pts[np.all(np.isfinite(pts[:, :3]), axis=1)]
        px = to_px(pts[:, :2]).astype(np.int64)
        inside = (px[:, 0] >= 0) & (px[:, 0] < width) & (px[:, 1] >= 0) & (px[:, 1] < height)
        z = pts[inside, 2]
        shade = np.clip((z - np.percentile(z, 2)) / max(np.ptp(z), 1e-6) * 2.0, 0, 1) if len(z) else z
        colors = (70 + 150 * shade).astype(np.uint8)
        img[px[inside, 1], px[inside, 0]] = np.stack([colors, colors, colors], axis=1)
    for g in ground_truth:
        corners = box_corners_bev(np.array([[g.center[0], g.center[1], g.size[0], g.size[1], g.yaw]]))[0]
        cv2.polylines(img, [to_px(corners).astype(np.int32)], True, TRUTH_COLOR, 1, cv2.LINE_AA)
    for i, d in enumerate(detections):
        color = CLASS_COLORS.get(d.class_name, (200, 200, 200))
        corners = box_corners_bev(np.array([[d.center[0], d.center[1], d.size[0], d.size[1], d.yaw]]))[0]
        poly = to_px(corners).astype(np.int32)
        faint = not_counted is not None and not_counted[i]
        cv2.polylines(img, [poly], True, tuple(int(c * (0.5 if faint else 1.0)) for c in color), 1 if faint else 2,
                      cv2.LINE_AA)
        if d.class_name not in ('unknown', 'other'):
            label_at = poly.min(axis=0)
            cv2.putText(img, f'{d.class_name[:3]} {d.score:.2f}', (int(label_at[0]), int(label_at[1]) - 3),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.35, color, 1, cv2.LINE_AA)
    legend = [('ground truth', TRUTH_COLOR)] + [(k, CLASS_COLORS[k]) for k in ('car', 'pedestrian', 'cyclist', 'unknown')]
    for i, (name, color) in enumerate(legend):
        cv2.rectangle(img, (8, 8 + 16 * i), (20, 18 + 16 * i), color, -1)
        cv2.putText(img, name, (26, 18 + 16 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (220, 220, 220), 1, cv2.LINE_AA)
    if title:
        cv2.putText(img, title, (8, height - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (230, 230, 230), 1, cv2.LINE_AA)
    return img
