"""Greedy per-class IoU matching and running metrics (aiat_perception.metrics.matching)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from aiat_perception.metrics.matching import (LabeledBox, RunningMetrics, filter_classes, greedy_match,
                                              iou_matrix, match_boxes, match_frame)


def box(x0, y0, x1, y1, cls='person', score=1.0):
    return LabeledBox((x0, y0, x1, y1), cls, score)


def test_iou_matrix():
    ious = iou_matrix([[0, 0, 10, 10], [0, 0, 0, 0]], [[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])
    assert ious[0] == pytest.approx([1.0, 50 / 150, 0.0])
    assert (ious[1] == 0).all()


def test_highest_score_first_takes_the_best_box():
    gt = [box(0, 0, 10, 10)]
    dets = [box(1, 0, 11, 10, score=0.4), box(2, 0, 12, 10, score=0.9)]
    r = match_frame(dets, gt, 0.5)
    assert r.matches == [(1, 0, pytest.approx(80 / 120))]
    assert (r.tp, r.fp, r.fn) == (1, 1, 0)
    assert r.precision == 0.5 and r.recall == 1.0


def test_classes_must_agree_unless_class_agnostic():
    gt = [box(0, 0, 10, 10, 'car')]
    dets = [box(0, 0, 10, 10, 'truck')]
    assert match_frame(dets, gt).tp == 0
    assert match_frame(dets, gt, class_agnostic=True).tp == 1
    assert match_frame(filter_classes(dets, aliases={'truck': 'car'}), gt).tp == 1


def test_threshold_and_each_ground_truth_once():
    gt = [box(0, 0, 10, 10), box(20, 0, 30, 10)]
    dets = [box(0, 0, 10, 10, score=0.9), box(0, 0, 10, 10, score=0.8), box(24, 0, 34, 10, score=0.7)]
    r = match_frame(dets, gt, 0.5)
    assert [m[:2] for m in r.matches] == [(0, 0)]  # the shifted box has IoU 6/14 < 0.5
    r = match_frame(dets, gt, 0.4)
    assert [m[:2] for m in r.matches] == [(0, 0), (2, 1)]
    assert r.mean_iou == pytest.approx((1.0 + 6 / 14) / 2)


def test_empty_frames():
    r = match_frame([], [])
    assert r.precision == 1.0 and r.recall == 1.0 and math.isnan(r.mean_iou)
    r = match_frame([], [box(0, 0, 1, 1)])
    assert r.recall == 0.0 and r.fn == 1
    with pytest.raises(ValueError):
        match_frame([], [], iou_threshold=0.0)


def test_running_metrics_total_and_window():
    metrics = RunningMetrics(window=2)
    gt = [box(0, 0, 10, 10)]
    metrics.update(match_frame([box(0, 0, 10, 10)], gt))      # TP, IoU 1
    metrics.update(match_frame([], gt))                       # FN
    metrics.update(match_frame([box(0, 0, 10, 8), box(50, 50, 60, 60)], gt))  # TP IoU .8, FP
    total, window = metrics.total(), metrics.windowed()
    assert (total['frames'], total['tp'], total['fp'], total['fn']) == (3, 2, 1, 1)
    assert total['recall'] == pytest.approx(2 / 3) and total['precision'] == pytest.approx(2 / 3)
    assert total['mean_iou'] == pytest.approx(0.9)
    assert (window['frames'], window['tp'], window['fn']) == (2, 1, 1)
    assert window['mean_iou'] == pytest.approx(0.8) and window['precision'] == pytest.approx(0.5)


def test_random_frames_match_brute_force_greedy():
    rng = np.random.default_rng(0)
    for _ in range(50):
        gts = [box(*xy, *(xy + rng.uniform(5, 20, 2)), cls=str(rng.integers(2))) for xy in rng.uniform(0, 50, (5, 2))]
        dets = [box(*xy, *(xy + rng.uniform(5, 20, 2)), cls=str(rng.integers(2)), score=float(rng.uniform()))
                for xy in rng.uniform(0, 50, (6, 2))]
        r = match_frame(dets, gts, 0.3)
        used = set()
        for i in sorted(range(len(dets)), key=lambda k: -dets[k].score):
            best, best_j = 0.3, None
            for j, g in enumerate(gts):
                if j in used or g.class_id != dets[i].class_id:
                    continue
                v = iou_matrix([dets[i].box], [g.box])[0, 0]
                if v >= best:                 # equal IoUs: the later ground truth wins
                    best, best_j = v, j
            if best_j is not None:
                used.add(best_j)
        assert {m[1] for m in r.matches} == used


def test_greedy_match_tie_rules():
    # equal affinities: the later ground truth; equal scores: the earlier detection goes first
    m = greedy_match([[0.5, 0.5], [0.5, 0.5]], [0.7, 0.7], 0.5)
    assert m.gt_index.tolist() == [1, 0] and m.affinity.tolist() == [0.5, 0.5]
    # a higher score goes first whatever the input order
    m = greedy_match([[0.6, 0.0], [0.9, 0.0]], [0.1, 0.8], 0.5)
    assert m.gt_index.tolist() == [-1, 0]
    assert m.pairs([0.1, 0.8]) == [(1, 0, 0.9)]


def test_greedy_match_classes_nan_and_shapes():
    aff = np.array([[0.9, 0.8], [np.nan, 0.7]])
    m = greedy_match(aff, [0.9, 0.8], 0.5, np.array(['car', 'car']), np.array(['bus', 'car']))
    assert m.gt_index.tolist() == [1, -1]          # NaN never matches, other classes never match
    assert greedy_match(np.zeros((0, 3)), np.zeros(0), 0.5).gt_index.shape == (0,)
    assert greedy_match(np.zeros((2, 0)), [0.1, 0.2], 0.5).gt_index.tolist() == [-1, -1]
    with pytest.raises(ValueError):
        greedy_match(np.zeros((2, 2)), [0.1], 0.5)
    with pytest.raises(ValueError):
        greedy_match(np.zeros((1, 1)), [0.1], 0.5, det_classes=np.array([0]))


def test_greedy_match_on_centre_distances():
    """Other box kinds slot in as affinity matrices: minus a centre distance, within 2 m."""
    det = np.array([[0.0, 0.0], [10.0, 0.0]])
    gt = np.array([[0.5, 0.0], [11.5, 0.0], [30.0, 0.0]])
    dist = np.linalg.norm(det[:, None] - gt[None], axis=2)
    m = greedy_match(-dist, [0.9, 0.8], -2.0)
    assert m.gt_index.tolist() == [0, 1] and -m.affinity == pytest.approx([0.5, 1.5])


def test_match_boxes_threshold_one_and_per_class():
    boxes = np.array([[0, 0, 10, 10], [20, 0, 30, 10]], np.float32)
    assert match_boxes(boxes, [0.9, 0.8], boxes, 1.0).gt_index.tolist() == [0, 1]
    m = match_boxes(boxes, [0.9, 0.8], boxes, 0.5, np.array([0, 1]), np.array([1, 1]))
    assert m.gt_index.tolist() == [-1, 1]
    with pytest.raises(ValueError):
        match_boxes(boxes, [0.9, 0.8], boxes, 1.5)
