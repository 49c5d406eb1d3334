"""Annotating images with boxes: the one drawer (CLI output, debug image topics, simulator
previews, training previews and TensorBoard images)."""
from __future__ import annotations

import colorsys
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np


def class_color(class_id: int, color_order: str = 'bgr') -> Tuple[int, int, int]:
    """A stable, well-separated colour per class id (golden-angle hue steps)."""
    hue = (class_id * 0.618033988749895) % 1.0
    r, g, b = (int(round(255 * v)) for v in colorsys.hsv_to_rgb(hue, 0.85, 0.95))
    return (b, g, r) if color_order.lower().startswith('bgr') else (r, g, b)


def draw_boxes(image: np.ndarray, boxes: np.ndarray, labels: Optional[Sequence[str]],
               class_ids: Optional[Sequence[int]] = None, scores: Optional[Sequence[float]] = None,
               color_order: str = 'bgr', thickness: int = 2, copy: bool = True,
               color: Optional[Tuple[int, int, int]] = None) -> np.ndarray:
    """Draw xyxy ``boxes`` with their labels (and scores) on a uint8 image (mono, 3 or 4 channels).
    Colours follow the class id, or ``color`` for every box; ``labels=None`` draws no text."""
    out = image.copy() if copy else image
    if out.ndim == 2:
        out = cv2.cvtColor(out, cv2.COLOR_GRAY2BGR)
    h, w = out.shape[:2]
    font, font_scale = cv2.FONT_HERSHEY_SIMPLEX, max(0.4, min(h, w) / 900.0)
    for i, box in enumerate(np.asarray(boxes, dtype=np.float64).reshape(-1, 4)):
        cid = int(class_ids[i]) if class_ids is not None else i
        box_color = tuple(color) if color is not None else class_color(cid, color_order)
        if out.shape[2] == 4:
            box_color = box_color + (255,)
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        cv2.rectangle(out, (x1, y1), (x2, y2), box_color, thickness, cv2.LINE_AA)
        if labels is None:
            continue
        text = labels[i] if scores is None else f'{labels[i]} {float(scores[i]):.2f}'
        (tw, th), base = cv2.getTextSize(text, font, font_scale, 1)
        ty = y1 - 3 if y1 - th - base - 3 >= 0 else min(h - 1, y1 + th + base + 3)
        cv2.rectangle(out, (x1, ty - th - base), (x1 + tw + 2, ty + base - 2), box_color, cv2.FILLED)
        cv2.putText(out, text, (x1 + 1, ty - 2), font, font_scale,
                    (0, 0, 0) + ((255,) if out.shape[2] == 4 else ()), 1, cv2.LINE_AA)
    return out


def draw_detections(image: np.ndarray, detections, color_order: str = 'bgr',
                    thickness: int = 2, copy: bool = True) -> np.ndarray:
    """Draw a :class:`aiat_perception.inference.decode.Detections` on an image."""
    return draw_boxes(image, detections.boxes, detections.labels, detections.class_ids,
                      detections.scores, color_order, thickness, copy)
