"""The fusion picture: the camera image with its boxes, their distances and the lidar points, beside
a bird's-eye view with the lidar detections, the fused positions and (with labels) the truth."""
from __future__ import annotations

from typing import Optional, Sequence

import cv2
import numpy as np

from aiat_perception.draw import draw_boxes
from aiat_perception.lidar.bev import render_bev

FUSED_COLOR = (0, 215, 255)          # BGR: fused positions (yellow)
LIDAR_BOX_COLOR = (200, 200, 200)


def depth_colors(depth: np.ndarray, near: float = 5.0, far: float = 60.0) -> np.ndarray:
    """BGR per depth: near red through yellow and green to far blue (OpenCV's JET, reversed)."""
    t = np.clip((np.asarray(depth, np.float64) - near) / (far - near), 0, 1)
    return cv2.applyColorMap((255 * (1 - t)).astype(np.uint8).reshape(-1, 1), cv2.COLORMAP_JET).reshape(-1, 3)


def render(image: np.ndarray, points_lidar: np.ndarray, cam_from_lidar: np.ndarray, camera, result,
           detections, lidar_detections: Sequence = (), ground_truth: Sequence = (),
           error_lines: Sequence[str] = (), title: str = '',
           bev_extent=None, bev_height: int = 600) -> np.ndarray:
    """One BGR picture: left the image (lidar points inside the camera boxes coloured by depth,
    near red to far blue; camera boxes labelled with class,
    score and fused distance, projected lidar boxes of a class thin grey) over ``error_lines``; right the
    bird's-eye view (lidar frame) with the fused positions as numbered yellow dots."""
    from aiat_perception.fusion.camera import transform_points
    img = image.copy()
    proj = camera.project_lidar(points_lidar, cam_from_lidar)
    ok = proj.valid
    # the points inside the camera boxes (what the fusion looks at), coloured by depth
    in_box = np.zeros(len(ok), bool)
    with np.errstate(invalid='ignore'):
        for x0, y0, x1, y1 in np.asarray(detections.boxes, np.float64).reshape(-1, 4):
            in_box |= (proj.uv[:, 0] >= x0) & (proj.uv[:, 0] <= x1) & (proj.uv[:, 1] >= y0) & (proj.uv[:, 1] <= y1)
    ok &= in_box
    uv = proj.uv[ok].astype(np.int32)
    for du, dv in ((0, 0), (1, 0), (0, 1), (1, 1)):       # 2x2 dots: visible at full size
        img[np.minimum(uv[:, 1] + dv, img.shape[0] - 1), np.minimum(uv[:, 0] + du, img.shape[1] - 1)] = \
            depth_colors(proj.depth[ok])
    if result.lidar_boxes is not None:
        for box, det in zip(result.lidar_boxes, lidar_detections):
            if np.all(np.isfinite(box)) and det.class_name not in ('unknown', 'other'):
                cv2.rectangle(img, (int(box[0]), int(box[1])), (int(box[2]), int(box[3])), LIDAR_BOX_COLOR, 1)
    fused = {o.detection_index: o for o in result.objects}
    labels = []
    for k, (name, score) in enumerate(zip(detections.labels, detections.scores)):
        o = fused.get(k)
        labels.append(f'{k} {name} {float(score):.2f} ' + (f'{o.distance:.1f} m' if o else 'no depth'))
    img = draw_boxes(img, detections.boxes, labels, detections.class_ids, None, thickness=2)

    lidar_from_cam = np.linalg.inv(cam_from_lidar)
    if bev_extent is None:
        # ahead far enough for every fused object and labelled box, 10 m steps, at least 55 m
        ahead = [transform_points(o.position[None], lidar_from_cam)[0, 0] for o in result.objects]
        ahead += [g.center[0] for g in ground_truth]
        reach = max([50.0] + [float(a) for a in ahead if np.isfinite(a)])
        x1 = 10.0 * np.ceil((reach + 8.0) / 10.0) - 5.0
        bev_extent = (-5.0, x1, -(x1 + 5.0) / 2.4, (x1 + 5.0) / 2.4)
    x0, x1, y0, y1 = bev_extent
    ppm = bev_height / (x1 - x0)
    bev = render_bev(points_lidar, lidar_detections, ground_truth, bev_extent, ppm, title)
    for o in result.objects:
        x, y, _ = transform_points(o.position[None], lidar_from_cam)[0]
        px, py = int(round((y1 - y) * ppm)), int(round((x1 - x) * ppm))
        cv2.circle(bev, (px, py), 4, FUSED_COLOR, -1, cv2.LINE_AA)
        cv2.putText(bev, str(o.detection_index), (px + 5, py + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.45, FUSED_COLOR, 1,
                    cv2.LINE_AA)
    cv2.putText(bev, 'yellow: fused position (n = camera box)', (8, bev.shape[0] - 28), cv2.FONT_HERSHEY_SIMPLEX,
                0.4, FUSED_COLOR, 1, cv2.LINE_AA)

    line_h = 18
    text_h = max(bev.shape[0] - img.shape[0], line_h * (len(error_lines) + 1))
    panel = np.full((text_h, img.shape[1], 3), 24, np.uint8)
    for i, line in enumerate(error_lines):
        cv2.putText(panel, line, (8, line_h * (i + 1)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (230, 230, 230), 1,
                    cv2.LINE_AA)
    left = np.vstack([img, panel])
    height = max(left.shape[0], bev.shape[0])
    canvas = np.full((height, left.shape[1] + bev.shape[1], 3), 24, np.uint8)
    canvas[:left.shape[0], :left.shape[1]] = left
    canvas[:bev.shape[0], left.shape[1]:] = bev
    return canvas


def error_table(errors, summary: Optional[dict] = None) -> list:
    """Text lines: one per matched label, then the summary."""
    lines = ['label  type         box  class     true (m)  fused (m)  error (m)  rel.   surface err (m)  centre from']
    for e in errors:
        if e.distance is None:
            lines.append(f'{e.label_index:5d}  {e.kitti_type:11s} {e.detection_index:4d}  {e.class_name:8s} '
                         f'{e.true_distance:8.2f}  no depth (too few points)')
            continue
        lines.append(f'{e.label_index:5d}  {e.kitti_type:11s} {e.detection_index:4d}  {e.class_name:8s} '
                     f'{e.true_distance:8.2f}  {e.distance:9.2f}  {e.error:+9.2f}  {e.relative_error:5.1%}  '
                     f'{e.surface_distance - e.true_distance:+15.2f}  {e.center_source}')
    if summary and summary.get('with_distance'):
        lines.append(f'matched {summary["matched"]}, with distance {summary["with_distance"]}: median |error| '
                     f'{summary["median_abs_error"]:.2f} m, max {summary["max_abs_error"]:.2f} m, worst '
                     f'{summary["max_relative_error"]:.1%} of the distance')
    return lines
