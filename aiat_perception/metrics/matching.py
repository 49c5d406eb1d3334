"""Matching detections to ground truth, per frame and over a run (ROS-free).

Greedy per-class matching as in COCO evaluation: detections in order of decreasing score each take
the still unmatched ground-truth box of their class with the highest IoU, if that IoU reaches the
threshold. A frame's mean IoU is the mean over matched pairs; precision = TP / detections and
recall = TP / ground truth (1.0 when there is nothing to claim or to find).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np


@dataclass
class LabeledBox:
    box: Tuple[float, float, float, float]   # x0, y0, x1, y1 (pixels)
    class_id: str
    score: float = 1.0
    id: str = ''                              # e.g. the simulator's actor name


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a (Nx4) with every box in b (Mx4), boxes as x0, y0, x1, y1."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(union > 0, inter / union, 0.0)


@dataclass
class FrameResult:
    matches: List[Tuple[int, int, float]]     # (detection index, ground-truth index, IoU)
    detections: int
    ground_truth: int

    @property
    def tp(self) -> int:
        return len(self.matches)

    @property
    def fp(self) -> int:
        return self.detections - self.tp

    @property
    def fn(self) -> int:
        return self.ground_truth - self.tp

    @property
    def precision(self) -> float:
        return self.tp / self.detections if self.detections else 1.0

    @property
    def recall(self) -> float:
        return self.tp / self.ground_truth if self.ground_truth else 1.0

    @property
    def mean_iou(self) -> float:
        """Mean IoU of matched pairs (nan when nothing matched)."""
        return float(np.mean([m[2] for m in self.matches])) if self.matches else float('nan')


def match_frame(detections: Sequence[LabeledBox], ground_truth: Sequence[LabeledBox],
                iou_threshold: float = 0.5, class_agnostic: bool = False) -> FrameResult:
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f'iou_threshold must be in (0, 1], got {iou_threshold}')
    matches: List[Tuple[int, int, float]] = []
    if detections and ground_truth:
        ious = iou_matrix([d.box for d in detections], [g.box for g in ground_truth])
        if not class_agnostic:
            same = np.array([[d.class_id == g.class_id for g in ground_truth] for d in detections])
            ious = np.where(same, ious, -1.0)
        taken = np.zeros(len(ground_truth), dtype=bool)
        # stable sort: equal scores keep input order, so results do not depend on sort internals
        for i in sorted(range(len(detections)), key=lambda k: -detections[k].score):
            candidates = np.where(taken, -1.0, ious[i])
            j = int(np.argmax(candidates))
            if candidates[j] >= iou_threshold:
                taken[j] = True
                matches.append((i, j, float(ious[i, j])))
    return FrameResult(matches, len(detections), len(ground_truth))


@dataclass
class _Totals:
    frames: int = 0
    tp: int = 0
    detections: int = 0
    ground_truth: int = 0
    iou_sum: float = 0.0

    def add(self, r: FrameResult, sign: int = 1):
        self.frames += sign
        self.tp += sign * r.tp
        self.detections += sign * r.detections
        self.ground_truth += sign * r.ground_truth
        self.iou_sum += sign * sum(m[2] for m in r.matches)

    def summary(self) -> Dict[str, float]:
        return {'frames': self.frames, 'tp': self.tp, 'fp': self.detections - self.tp,
                'fn': self.ground_truth - self.tp,
                'precision': self.tp / self.detections if self.detections else 1.0,
                'recall': self.tp / self.ground_truth if self.ground_truth else 1.0,
                'mean_iou': self.iou_sum / self.tp if self.tp else float('nan')}


class RunningMetrics:
    """Totals over the whole run and over the last ``window`` frames (pooled: TP/FP/FN summed
    over frames, mean IoU over all matched pairs)."""

    def __init__(self, window: int = 100):
        if window < 1:
            raise ValueError(f'window must be >= 1, got {window}')
        self.window = window
        self._recent: deque = deque()
        self._total = _Totals()
        self._windowed = _Totals()

    def update(self, result: FrameResult) -> None:
        self._total.add(result)
        self._windowed.add(result)
        self._recent.append(result)
        if len(self._recent) > self.window:
            self._windowed.add(self._recent.popleft(), sign=-1)

    def total(self) -> Dict[str, float]:
        return self._total.summary()

    def windowed(self) -> Dict[str, float]:
        return self._windowed.summary()


def filter_classes(boxes: Iterable[LabeledBox], classes: Sequence[str] = (),
                   aliases: Optional[Dict[str, str]] = None) -> List[LabeledBox]:
    """Rename classes through ``aliases`` and keep those in ``classes`` (all when empty)."""
    out = []
    for b in boxes:
        cls = (aliases or {}).get(b.class_id, b.class_id)
        if not classes or cls in classes:
            out.append(LabeledBox(b.box, cls, b.score, b.id))
    return out
