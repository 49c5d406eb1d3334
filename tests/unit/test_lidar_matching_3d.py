"""BEV rotated IoU, centre-distance and greedy matching, and the pooled 3D evaluation."""
from __future__ import annotations

import math

import numpy as np
import pytest

from aiat_perception.metrics.matching_3d import (Evaluation3D, Object3D, bev_corners, bev_iou_matrix,
                                                 center_distance_matrix, greedy_match, heading_error,
                                                 match_objects)


def mc_iou(a, b, n=400_000, seed=0):
    """Monte Carlo IoU of two BEV boxes as an independent reference."""
    rng = np.random.default_rng(seed)
    corners = np.vstack([bev_corners(a)[0], bev_corners(b)[0]])
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    pts = rng.uniform(lo, hi, size=(n, 2))

    def inside(box):
        x, y, l, w, yaw = box
        d = pts - [x, y]
        u = d[:, 0] * math.cos(yaw) + d[:, 1] * math.sin(yaw)
        v = -d[:, 0] * math.sin(yaw) + d[:, 1] * math.cos(yaw)
        return (np.abs(u) <= l / 2) & (np.abs(v) <= w / 2)

    ia, ib = inside(a), inside(b)
    return (ia & ib).sum() / max((ia | ib).sum(), 1)


def test_bev_iou_known_cases():
    sq = [0, 0, 2, 2, 0]
    assert bev_iou_matrix([sq], [sq])[0, 0] == pytest.approx(1.0)
    assert bev_iou_matrix([sq], [[1, 0, 2, 2, 0]])[0, 0] == pytest.approx(1 / 3)
    assert bev_iou_matrix([sq], [[5, 0, 2, 2, 0]])[0, 0] == 0.0
    octagon = 8 * (math.sqrt(2) - 1)          # a square and itself turned 45 degrees
    assert bev_iou_matrix([sq], [[0, 0, 2, 2, math.pi / 4]])[0, 0] == pytest.approx(octagon / (8 - octagon))
    assert bev_iou_matrix([sq], [[0, 0, 2, 2, math.pi / 2]])[0, 0] == pytest.approx(1.0)   # same square
    assert bev_iou_matrix(np.zeros((0, 5)), [sq]).shape == (0, 1)
    assert bev_iou_matrix([sq], [[0, 0, 0, 0, 0]])[0, 0] == 0.0


def test_bev_iou_matches_monte_carlo_on_random_boxes():
    rng = np.random.default_rng(3)
    a = np.column_stack([rng.uniform(-2, 2, (12, 2)), rng.uniform(0.5, 5, (12, 2)), rng.uniform(-3, 3, 12)])
    b = np.column_stack([rng.uniform(-2, 2, (9, 2)), rng.uniform(0.5, 5, (9, 2)), rng.uniform(-3, 3, 9)])
    ious = bev_iou_matrix(a, b)
    for i, j in [(0, 0), (1, 3), (4, 8), (7, 2), (11, 5), (5, 5)]:
        assert ious[i, j] == pytest.approx(mc_iou(a[i], b[j]), abs=0.01)


def test_greedy_match_follows_pycocotools_order_and_tie_rule():
    quality = np.array([[0.6, 0.6], [0.9, 0.1]])
    # detection 1 (score 0.9) goes first and takes gt 0; detection 0 gets gt 1
    assert greedy_match(quality, [0.5, 0.9], 0.5) == [(1, 0), (0, 1)]
    # equal scores keep input order; equal quality -> the last ground truth
    assert greedy_match(np.array([[0.7, 0.7]]), [1.0], 0.5) == [(0, 1)]
    assert greedy_match(np.array([[0.4]]), [1.0], 0.5) == []
    assert greedy_match(np.array([[-np.inf]]), [1.0], -10) == []


def test_centre_distance_matching_and_classes():
    det = [Object3D('car', (10.0, 0.0, 0.0), (4, 2, 1.5), 0.0, 0.9), Object3D('pedestrian', (20.5, 1.0, 0), (0.6,) * 3, 0, 0.8)]
    gt = [Object3D('car', (10.5, 0.2, 0.0), (4, 2, 1.5), 0.1), Object3D('cyclist', (20.0, 1.0, 0), (1.8, 0.6, 1.7), 0.0)]
    assert match_objects(det, gt, 'distance', 1.0).pairs == [(0, 0)]
    assert match_objects(det, gt, 'distance', 1.0, class_agnostic=True).pairs == [(0, 0), (1, 1)]
    assert match_objects(det, gt, 'iou', 0.5).pairs == [(0, 0)]
    np.testing.assert_allclose(center_distance_matrix([[0, 0]], [[3, 4]]), [[5.0]])


def test_evaluation_per_class_band_confusion_and_heading():
    ev = Evaluation3D('distance', 1.0)
    gt = [Object3D('car', (10, 0, 0), (4, 2, 1.5), 0.0), Object3D('pedestrian', (30, 2, 0), (0.6,) * 3, 0.0),
          Object3D('cyclist', (45, 0, 0), (1.8, 0.6, 1.7), 0.0)]
    det = [Object3D('car', (10.2, 0, 0), (4, 2, 1.5), math.radians(10), 0.9),
           Object3D('cyclist', (30.3, 2, 0), (1.8, 0.6, 1.7), 0.0, 0.7),
           Object3D('car', (60, 30, 0), (4, 2, 1.5), 0.0, 0.6),
           Object3D('car', (-20, 0, 0), (4, 2, 1.5), 0.0, 0.6)]
    ev.add(det, gt, ignore=[False, False, False, True])
    s = ev.summary()
    assert s['per_class']['car/0-20']['recall'] == 1.0 and s['per_class']['car/all']['fp'] == 1
    assert s['per_class']['pedestrian/20-40']['recall'] == 0.0
    assert s['agnostic']['all']['recall'] == pytest.approx(2 / 3)
    table = ev.confusion_table()
    assert table['car']['car'] == 1 and table['pedestrian']['cyclist'] == 1 and table['cyclist']['-'] == 1
    assert table['-']['car'] == 1          # the ignored detection is not counted
    assert s['mean_heading_error_deg'] == pytest.approx(10.0) and set(s['heading_error_deg']) == {'car'}
    assert heading_error(0.1, math.pi + 0.1) == pytest.approx(0.0)
    assert '| ground truth' in ev.confusion_markdown()
