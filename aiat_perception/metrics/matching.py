"""Matching detections to ground truth, per frame and over a run (ROS-free): the one definition
used by the live IoU monitor, offline evaluation, the confusion matrix and the tests.

Greedy per-class matching as in COCO evaluation (pycocotools' rule, ties included): detections in
order of decreasing score each take the still unmatched ground-truth box of their class with the
highest IoU, if that IoU reaches the threshold. The array API (:func:`iou_matrix`,
:func:`greedy_match` on any affinity matrix, :func:`match_boxes`) serves other box kinds too: a
rotated BEV IoU or minus a centre distance goes into :func:`greedy_match` unchanged.

A frame's mean IoU is the mean over matched pairs; precision = TP / detections and recall = TP /
ground truth (1.0 when there is nothing to claim or to find).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from aiat_perception.class_names import rename


@dataclass
class LabeledBox:
    box: Tuple[float, float, float, float]   # x0, y0, x1, y1 (pixels)
    class_id: str
    score: float = 1.0
    id: str = ''                              # e.g. the simulator's actor name


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU [N, M] (float64) of every box in a (Nx4) with every box in b (Mx4), boxes as x0, y0, x1,
    y1; a pair with no area between them has IoU 0."""
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


class Matches(NamedTuple):
    """Per detection, in the input order: the matched ground-truth index (-1 = none) and the
    affinity (e.g. IoU) of that match (0 where unmatched)."""
    gt_index: np.ndarray          # [D] int64
    affinity: np.ndarray          # [D] float64

    @property
    def matched(self) -> np.ndarray:
        return self.gt_index >= 0

    def pairs(self, det_scores: Optional[np.ndarray] = None) -> List[Tuple[int, int, float]]:
        """(detection, ground truth, affinity) of each match, by descending score when
        ``det_scores`` is given (stable), else by detection index."""
        idx = np.flatnonzero(self.matched)
        if det_scores is not None:
            idx = idx[np.argsort(-np.asarray(det_scores, np.float64)[idx], kind='stable')]
        return [(int(d), int(self.gt_index[d]), float(self.affinity[d])) for d in idx]


def greedy_match(affinity: np.ndarray, det_scores: np.ndarray, threshold: float,
                 det_classes: Optional[np.ndarray] = None,
                 gt_classes: Optional[np.ndarray] = None) -> Matches:
    """Greedy one-to-one matching on an affinity matrix [D detections, G ground truth] (higher =
    better: IoU, BEV IoU, or minus a centre distance), pycocotools' rule for one image: detections
    in order of decreasing score (stable: equal scores keep input order) each take the free
    ground truth of highest affinity, if that affinity is >= ``threshold``; among equal affinities
    the later ground truth wins. With classes given, only pairs of the same class can match (the
    same as matching each class on its own). NaN affinities never match.
    """
    # Hand-written: pycocotools' loop lives inside COCOeval (no array API) and scipy's assignment
    # solvers are optimal, not greedy, so they pick other pairs than COCO evaluation does.
    aff = np.array(affinity, dtype=np.float64, ndmin=2)
    det_scores = np.asarray(det_scores, dtype=np.float64).reshape(-1)
    n_det, n_gt = (len(det_scores), 0) if aff.size == 0 else aff.shape
    if aff.size and aff.shape[0] != len(det_scores):
        raise ValueError(f'affinity has {aff.shape[0]} rows for {len(det_scores)} detection scores')
    gt_index = np.full(n_det, -1, np.int64)
    matched = np.zeros(n_det, np.float64)
    if n_det == 0 or n_gt == 0:
        return Matches(gt_index, matched)
    aff[np.isnan(aff)] = -np.inf
    if det_classes is not None or gt_classes is not None:
        if det_classes is None or gt_classes is None:
            raise ValueError('give classes for both detections and ground truth, or for neither')
        same = np.asarray(det_classes).reshape(-1)[:, None] == np.asarray(gt_classes).reshape(-1)[None, :]
        aff[~same] = -np.inf
    taken = np.zeros(n_gt, bool)
    for d in np.argsort(-det_scores, kind='stable'):
        row = np.where(taken, -np.inf, aff[d])
        g = n_gt - 1 - int(np.argmax(row[::-1]))     # the last of equal maxima
        if row[g] >= threshold:
            taken[g] = True
            gt_index[d], matched[d] = g, aff[d, g]
    return Matches(gt_index, matched)


def match_boxes(det_boxes: np.ndarray, det_scores: np.ndarray, gt_boxes: np.ndarray,
                iou_threshold: float = 0.5, det_classes: Optional[np.ndarray] = None,
                gt_classes: Optional[np.ndarray] = None) -> Matches:
    """COCO matching of axis-aligned 2D boxes (x0, y0, x1, y1): :func:`greedy_match` on the IoU
    matrix, per class when classes are given. As in pycocotools, a threshold of 1 accepts IoUs
    within 1e-10 of it."""
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f'iou_threshold must be in (0, 1], got {iou_threshold}')
    det_boxes = np.asarray(det_boxes, np.float64).reshape(-1, 4)
    gt_boxes = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    return greedy_match(iou_matrix(det_boxes, gt_boxes), det_scores, min(iou_threshold, 1 - 1e-10),
                        det_classes, gt_classes)


def confusion_matrix(per_image, num_classes: int, iou_threshold: float = 0.5) -> np.ndarray:
    """[C+1, C+1] counts, rows = ground-truth class, columns = predicted class; the last row and
    column are 'background' (false positive / missed). Class-agnostic matching, so a box found
    with the wrong class shows up off the diagonal.

    ``per_image``: iterable of (det_boxes, det_scores, det_classes, gt_boxes, gt_classes).
    """
    m = np.zeros((num_classes + 1, num_classes + 1), np.int64)
    for det_boxes, det_scores, det_classes, gt_boxes, gt_classes in per_image:
        match = match_boxes(det_boxes, det_scores, gt_boxes, iou_threshold).gt_index
        det_classes, gt_classes = np.asarray(det_classes, np.int64), np.asarray(gt_classes, np.int64)
        found = match >= 0
        np.add.at(m, (gt_classes[match[found]], det_classes[found]), 1)
        np.add.at(m, (num_classes, det_classes[~found]), 1)
        missed = np.ones(len(gt_classes), bool)
        missed[match[found]] = False
        np.add.at(m, (gt_classes[missed], num_classes), 1)
    return m


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
    """:func:`match_boxes` on labelled boxes; matches listed by descending detection score."""
    scores = np.array([d.score for d in detections], np.float64)
    classes = (None, None) if class_agnostic else (np.array([d.class_id for d in detections], object),
                                                    np.array([g.class_id for g in ground_truth], object))
    m = match_boxes([d.box for d in detections], scores, [g.box for g in ground_truth],
                    iou_threshold, *classes)
    return FrameResult(m.pairs(scores), len(detections), len(ground_truth))


class _Totals:
    """Pooled counts over frames (TP/FP/FN summed, IoU summed over matched pairs)."""

    def __init__(self):
        self.frames = self.tp = self.detections = self.ground_truth = 0
        self.iou_sum = 0.0

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
        cls = rename(b.class_id, aliases)
        if not classes or cls in classes:
            out.append(LabeledBox(b.box, cls, b.score, b.id))
    return out
