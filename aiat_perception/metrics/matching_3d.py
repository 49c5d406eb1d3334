"""Matching 3D detections to ground truth in bird's-eye view, beside the 2D matching of ``matching.py``.

Arrays in, arrays out: BEV boxes are rows (x, y, length, width, yaw). ``bev_iou_matrix`` computes
rotated-rectangle IoU for all pairs at once (convex polygon intersection, vectorised: the
intersection polygon's vertices are the corners of each box inside the other plus the edge-edge
crossings, ordered by angle about their mean; written here because no installed library does
this for arrays of boxes without a per-pair Python loop). ``greedy_match`` follows pycocotools'
rule: detections in order of decreasing score (stable: equal scores keep input order) each take the
unmatched ground truth of best quality, the last such one on ties, if it reaches the threshold.

``Evaluation3D`` pools frames: recall/precision per class and range band (0-20, 20-40, 40+ m),
mean heading error of matched pairs (modulo pi: a fitted box has no front; only classes with a
heading, not the pedestrians' cylinders), and a class confusion matrix from class-agnostic matching.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from aiat_perception.metrics import matching

RANGE_BANDS: Tuple[Tuple[str, float, float], ...] = (('0-20', 0.0, 20.0), ('20-40', 20.0, 40.0),
                                                     ('40+', 40.0, math.inf))
NONE = '-'   # confusion-matrix row/column of unmatched detections / missed ground truth


def bev_corners(boxes: np.ndarray) -> np.ndarray:
    """Kx4x2 counter-clockwise corners of boxes (x, y, length, width, yaw)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
    c, s = np.cos(boxes[:, 4]), np.sin(boxes[:, 4])
    hl, hw = boxes[:, 2] / 2.0, boxes[:, 3] / 2.0
    lx = np.stack([hl, -hl, -hl, hl], axis=1)
    ly = np.stack([hw, hw, -hw, -hw], axis=1)
    return np.stack([boxes[:, :1] + lx * c[:, None] - ly * s[:, None],
                     boxes[:, 1:2] + lx * s[:, None] + ly * c[:, None]], axis=2)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _inside(points: np.ndarray, poly: np.ndarray, eps: float = 1e-9) -> np.ndarray:
    """points P x n x 2 inside convex CCW polygons P x 4 x 2 -> P x n."""
    edge = np.roll(poly, -1, axis=1) - poly                         # P,4,2
    rel = points[:, :, None, :] - poly[:, None, :, :]               # P,n,4,2
    return np.all(_cross(edge[:, None], rel) >= -eps, axis=2)


def intersection_area(pa: np.ndarray, pb: np.ndarray) -> np.ndarray:
    """Areas of the intersections of convex CCW quadrilaterals pa[i] and pb[i] (P x 4 x 2 each)."""
    n = len(pa)
    if n == 0:
        return np.zeros(0)
    a0, a1 = pa, np.roll(pa, -1, axis=1)
    b0, b1 = pb, np.roll(pb, -1, axis=1)
    r = (a1 - a0)[:, :, None, :]                                    # P,4,1,2
    s = (b1 - b0)[:, None, :, :]                                    # P,1,4,2
    q = b0[:, None, :, :] - a0[:, :, None, :]                       # P,4,4,2
    denom = _cross(r, s)
    with np.errstate(divide='ignore', invalid='ignore'):
        t = _cross(q, s) / denom
        u = _cross(q, r) / denom
    crossing = (np.abs(denom) > 1e-12) & (t >= 0) & (t <= 1) & (u >= 0) & (u <= 1)
    t = np.where(crossing, t, 0.0)
    cross_pts = (a0[:, :, None, :] + t[..., None] * r).reshape(n, 16, 2)
    pts = np.concatenate([pa, pb, cross_pts], axis=1)               # P,24,2
    valid = np.concatenate([_inside(pa, pb), _inside(pb, pa), crossing.reshape(n, 16)], axis=1)
    count = valid.sum(axis=1)
    centre = (pts * valid[..., None]).sum(axis=1) / np.maximum(count, 1)[:, None]
    angle = np.arctan2(pts[..., 1] - centre[:, None, 1], pts[..., 0] - centre[:, None, 0])
    angle = np.where(valid, angle, np.inf)
    order = np.argsort(angle, axis=1)
    ordered = np.take_along_axis(pts, order[..., None], axis=1)
    # invalid vertices sort last; repeat the first vertex there so they add nothing to the shoelace sum
    tail = np.arange(24)[None, :] >= count[:, None]
    ordered = np.where(tail[..., None], ordered[:, :1], ordered)
    nxt = np.roll(ordered, -1, axis=1)
    area = 0.5 * np.abs(_cross(ordered, nxt).sum(axis=1))
    return np.where(count >= 3, area, 0.0)


def bev_iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotated IoU in the ground plane of every box in a (K x 5) with every box in b (M x 5)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 5)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 5)
    out = np.zeros((len(a), len(b)))
    if len(a) == 0 or len(b) == 0:
        return out
    # pairs whose circumscribed circles are apart cannot overlap: only the others are clipped
    ra = np.hypot(a[:, 2], a[:, 3]) / 2.0
    rb = np.hypot(b[:, 2], b[:, 3]) / 2.0
    dist = np.hypot(a[:, None, 0] - b[None, :, 0], a[:, None, 1] - b[None, :, 1])
    solid_a = (a[:, 2] > 0) & (a[:, 3] > 0) & np.all(np.isfinite(a), axis=1)
    solid_b = (b[:, 2] > 0) & (b[:, 3] > 0) & np.all(np.isfinite(b), axis=1)
    with np.errstate(invalid='ignore'):
        near = dist < ra[:, None] + rb[None, :]
    ii, jj = np.nonzero(near & solid_a[:, None] & solid_b[None, :])
    if len(ii) == 0:
        return out
    ca, cb = bev_corners(a), bev_corners(b)
    inter = intersection_area(ca[ii], cb[jj])
    union = a[ii, 2] * a[ii, 3] + b[jj, 2] * b[jj, 3] - inter
    with np.errstate(divide='ignore', invalid='ignore'):
        out[ii, jj] = np.where(union > 0, inter / union, 0.0)
    return out


def center_distance_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Ground-plane distance between the centres of every box in a (K x >=2) and in b (M x >=2)."""
    a = np.asarray(a, dtype=np.float64).reshape(len(a), -1)[:, :2] if len(a) else np.zeros((0, 2))
    b = np.asarray(b, dtype=np.float64).reshape(len(b), -1)[:, :2] if len(b) else np.zeros((0, 2))
    return np.hypot(a[:, None, 0] - b[None, :, 0], a[:, None, 1] - b[None, :, 1])


def greedy_match(quality: np.ndarray, scores: Sequence[float], threshold: float) -> List[Tuple[int, int]]:
    """(detection, ground truth) pairs by decreasing score: the one matcher
    (:func:`aiat_perception.metrics.matching.greedy_match`, pycocotools' order and tie rule) on a
    quality matrix (higher = better; -inf never matches)."""
    return [(d, g) for d, g, _ in matching.greedy_match(quality, scores, threshold).pairs(scores)]


@dataclass
class Object3D:
    class_name: str
    center: Tuple[float, float, float]
    size: Tuple[float, float, float]     # length, width, height
    yaw: float
    score: float = 1.0

    def bev(self) -> Tuple[float, float, float, float, float]:
        return (self.center[0], self.center[1], self.size[0], self.size[1], self.yaw)


@dataclass
class FrameMatch3D:
    pairs: List[Tuple[int, int]]
    detections: int
    ground_truth: int

    def unmatched_detections(self) -> List[int]:
        matched = {d for d, _ in self.pairs}
        return [i for i in range(self.detections) if i not in matched]

    def unmatched_ground_truth(self) -> List[int]:
        matched = {g for _, g in self.pairs}
        return [j for j in range(self.ground_truth) if j not in matched]


def match_objects(detections: Sequence[Object3D], ground_truth: Sequence[Object3D], criterion: str = 'distance',
                  threshold: float = 1.0, class_agnostic: bool = False) -> FrameMatch3D:
    """Match by BEV centre distance (``criterion='distance'``, pairs within ``threshold`` metres) or by
    BEV rotated IoU (``'iou'``, pairs with IoU >= ``threshold``)."""
    pairs: List[Tuple[int, int]] = []
    if detections and ground_truth:
        det = np.array([d.bev() for d in detections], dtype=np.float64)
        gt = np.array([g.bev() for g in ground_truth], dtype=np.float64)
        if criterion == 'distance':
            quality, limit = -center_distance_matrix(det, gt), -float(threshold)
        elif criterion == 'iou':
            quality, limit = bev_iou_matrix(det, gt), float(threshold)
            quality[quality <= 0] = -np.inf
        else:
            raise ValueError(f"criterion must be 'distance' or 'iou', got {criterion!r}")
        if not class_agnostic:
            same = np.array([[d.class_name == g.class_name for g in ground_truth] for d in detections])
            quality = np.where(same, quality, -np.inf)
        pairs = greedy_match(quality, [d.score for d in detections], limit)
    return FrameMatch3D(pairs, len(detections), len(ground_truth))


def range_band(obj: Object3D) -> str:
    r = math.hypot(obj.center[0], obj.center[1])
    for name, low, high in RANGE_BANDS:
        if low <= r < high:
            return name
    return RANGE_BANDS[-1][0]


def heading_error(a: float, b: float) -> float:
    """Angle between two box headings modulo pi, in [0, pi/2]."""
    d = (a - b) % math.pi
    return min(d, math.pi - d)


@dataclass
class _Count:
    tp: int = 0
    detections: int = 0
    ground_truth: int = 0
    found: int = 0     # ground truth matched

    def summary(self) -> Dict[str, float]:
        return {'tp': self.tp, 'fp': self.detections - self.tp, 'fn': self.ground_truth - self.found,
                'detections': self.detections, 'ground_truth': self.ground_truth,
                'precision': self.tp / self.detections if self.detections else float('nan'),
                'recall': self.found / self.ground_truth if self.ground_truth else float('nan')}


@dataclass
class Evaluation3D:
    """Pooled over frames. Per-class figures come from class-aware matching; the confusion matrix and
    the class-agnostic recall from class-agnostic matching. ``ignore`` marks detections that are not
    to be counted as false (outside the labelled region, in a DontCare area) when unmatched."""
    criterion: str = 'distance'
    threshold: float = 1.0
    classes: Sequence[str] = ('car', 'pedestrian', 'cyclist')
    heading_classes: Sequence[str] = ('car', 'cyclist', 'truck')   # pedestrians are cylinders: no heading
    per_class: Dict[Tuple[str, str], _Count] = field(default_factory=dict)
    agnostic: Dict[str, _Count] = field(default_factory=dict)
    confusion: Dict[Tuple[str, str], int] = field(default_factory=dict)
    heading_errors: Dict[str, List[float]] = field(default_factory=dict)   # by ground-truth class
    frames: int = 0

    def add(self, detections: Sequence[Object3D], ground_truth: Sequence[Object3D],
            ignore: Optional[Sequence[bool]] = None) -> Dict[str, object]:
        self.frames += 1
        ignore = list(ignore) if ignore is not None else [False] * len(detections)
        frame = {}
        for cls in self.classes:
            det_idx = [i for i, d in enumerate(detections) if d.class_name == cls]
            gt_idx = [j for j, g in enumerate(ground_truth) if g.class_name == cls]
            m = match_objects([detections[i] for i in det_idx], [ground_truth[j] for j in gt_idx],
                              self.criterion, self.threshold, class_agnostic=True)
            self._count(self.per_class, cls, [detections[i] for i in det_idx], [ground_truth[j] for j in gt_idx],
                        m, [ignore[i] for i in det_idx])
            frame[cls] = m
        m = match_objects(detections, ground_truth, self.criterion, self.threshold, class_agnostic=True)
        self._count(self.agnostic, None, detections, ground_truth, m, ignore)
        for d, g in m.pairs:
            key = (ground_truth[g].class_name, detections[d].class_name)
            self.confusion[key] = self.confusion.get(key, 0) + 1
            if ground_truth[g].class_name in self.heading_classes:
                self.heading_errors.setdefault(ground_truth[g].class_name, []).append(
                    heading_error(detections[d].yaw, ground_truth[g].yaw))
        for j in m.unmatched_ground_truth():
            key = (ground_truth[j].class_name, NONE)
            self.confusion[key] = self.confusion.get(key, 0) + 1
        for i in m.unmatched_detections():
            if not ignore[i]:
                key = (NONE, detections[i].class_name)
                self.confusion[key] = self.confusion.get(key, 0) + 1
        frame['agnostic'] = m
        return frame

    def _count(self, table, cls, dets, gts, m: FrameMatch3D, ignore) -> None:
        matched_det = {d for d, _ in m.pairs}
        for band in [name for name, _, _ in RANGE_BANDS] + ['all']:
            key = band if cls is None else (cls, band)
            c = table.setdefault(key, _Count())
            in_band = (lambda o: True) if band == 'all' else (lambda o, b=band: range_band(o) == b)
            c.ground_truth += sum(1 for g in gts if in_band(g))
            c.found += sum(1 for _, g in m.pairs if in_band(gts[g]))
            counted = [i for i, d in enumerate(dets) if in_band(d) and (i in matched_det or not ignore[i])]
            c.detections += len(counted)
            c.tp += sum(1 for i in counted if i in matched_det)

    def summary(self) -> Dict[str, object]:
        every = [e for errors in self.heading_errors.values() for e in errors]
        errors = np.degrees(every) if every else np.zeros(0)
        return {'criterion': self.criterion, 'threshold': self.threshold, 'frames': self.frames,
                'per_class': {f'{c}/{b}': v.summary() for (c, b), v in sorted(self.per_class.items())},
                'agnostic': {b: v.summary() for b, v in self.agnostic.items()},
                'mean_heading_error_deg': float(errors.mean()) if len(errors) else float('nan'),
                'heading_error_deg': {c: float(np.degrees(np.mean(v))) for c, v in sorted(self.heading_errors.items())},
                'confusion': self.confusion_table()}

    def confusion_table(self) -> Dict[str, Dict[str, int]]:
        rows = sorted({g for g, _ in self.confusion} - {NONE}) + [NONE]
        cols = sorted({d for _, d in self.confusion} - {NONE}) + [NONE]
        return {g: {d: self.confusion.get((g, d), 0) for d in cols} for g in rows}

    def confusion_markdown(self) -> str:
        table = self.confusion_table()
        cols = list(next(iter(table.values())).keys()) if table else []
        lines = ['| ground truth \\ detected | ' + ' | '.join(cols) + ' |', '|---' * (len(cols) + 1) + '|']
        lines += [f'| {g} | ' + ' | '.join(str(row[c]) for c in cols) + ' |' for g, row in table.items()]
        return '\n'.join(lines)


def match_frame_bev(detections: Sequence[Object3D], ground_truth: Sequence[Object3D], iou_threshold: float = 0.5,
                    class_agnostic: bool = False, class_thresholds: Optional[Dict[str, float]] = None):
    """One frame matched by BEV rotated IoU, as a 2D :class:`~aiat_perception.metrics.matching.FrameResult`
    (so :class:`~aiat_perception.metrics.matching.RunningMetrics` pools it): per class unless
    ``class_agnostic``, with ``class_thresholds[class]`` (by ground-truth class) in place of ``iou_threshold``."""
    from aiat_perception.metrics.matching import FrameResult
    for value in [iou_threshold, *(class_thresholds or {}).values()]:
        if not 0.0 < value <= 1.0:
            raise ValueError(f'IoU thresholds must be in (0, 1], got {value}')
    matches: List[Tuple[int, int, float]] = []
    if detections and ground_truth:
        ious = bev_iou_matrix(np.array([d.bev() for d in detections], dtype=np.float64),
                              np.array([g.bev() for g in ground_truth], dtype=np.float64))
        limits = np.array([(class_thresholds or {}).get(g.class_name, iou_threshold) for g in ground_truth])
        quality = np.where(ious >= limits[None, :], ious, -np.inf)
        if not class_agnostic:
            same = np.array([[d.class_name == g.class_name for g in ground_truth] for d in detections])
            quality = np.where(same, quality, -np.inf)
        matches = [(d, g, float(ious[d, g])) for d, g in greedy_match(quality, [d.score for d in detections], 0.0)]
    return FrameResult(matches, len(detections), len(ground_truth))
