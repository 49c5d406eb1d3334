"""2D scan detector on constructed scans: adaptive breakpoints, legs and persons, bad beams, background."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from aiat_perception.lidar.params import read_yaml, resolve
from aiat_perception.lidar.scan import SCAN_PARAMETERS, ScanDetector, breakpoints, segment, valid_points

ROOT = Path(__file__).resolve().parents[2]
BEAMS = 1081
ANGLES = np.linspace(-math.radians(135), math.radians(135), BEAMS)


def cast(circles=(), walls=(), max_range=30.0):
    """Ranges of a planar scanner at the origin against circles (x, y, r) and segments ((x0, y0), (x1, y1))."""
    d = np.stack([np.cos(ANGLES), np.sin(ANGLES)], axis=1)
    ranges = np.full(BEAMS, np.inf)
    for cx, cy, r in circles:
        b = d @ np.array([cx, cy])
        disc = b * b - (cx * cx + cy * cy - r * r)
        t = b - np.sqrt(np.maximum(disc, 0))
        ranges = np.where((disc >= 0) & (t > 0), np.minimum(ranges, t), ranges)
    for (x0, y0), (x1, y1) in walls:
        e = np.array([x1 - x0, y1 - y0])
        denom = d[:, 0] * e[1] - d[:, 1] * e[0]
        with np.errstate(divide='ignore', invalid='ignore'):
            t = (x0 * e[1] - y0 * e[0]) / denom
            u = (x0 * d[:, 1] - y0 * d[:, 0]) / denom
        ranges = np.where((t > 0) & (u >= 0) & (u <= 1), np.minimum(ranges, t), ranges)
    ranges[ranges > max_range] = np.inf
    return ranges.astype(np.float32)


def no_background(**kw):
    return ScanDetector(dict(background_scans=0, **kw))


def test_two_legs_make_one_person_between_them():
    ranges = cast(circles=[(2.0, 0.15, 0.06), (2.05, -0.15, 0.06)])
    result = no_background()(ranges, ANGLES, 0.06, 30.0)
    legs = [d for d in result.detections if d.class_name == 'leg']
    persons = [d for d in result.detections if d.class_name == 'person']
    assert len(legs) == 2 and len(persons) == 1
    assert math.hypot(persons[0].center[0] - 2.025, persons[0].center[1]) < 0.08
    assert set(result.stage_ms) == {'filter', 'segmentation', 'fitting'}


def test_single_leg_is_a_person_with_a_lower_score_and_the_wall_is_not_a_leg():
    ranges = cast(circles=[(3.0, 1.0, 0.07)], walls=[((6, -6), (6, 6))])
    result = no_background()(ranges, ANGLES)
    persons = [d for d in result.detections if d.class_name == 'person']
    assert len(persons) == 1 and persons[0].score <= 0.5
    assert [d.class_name for d in no_background(single_leg_person=False)(ranges, ANGLES).detections] == ['leg']
    others = no_background(output_other=True)(ranges, ANGLES).detections
    assert any(d.class_name == 'other' and d.size[1] > 5 for d in others)


def test_touching_legs_are_cut_into_two():
    ranges = cast(circles=[(2.5, 0.065, 0.065), (2.5, -0.065, 0.065)])
    assert sum(d.class_name == 'leg' for d in no_background()(ranges, ANGLES).detections) == 2
    assert sum(d.class_name == 'leg' for d in no_background(split_two_legs=False)(ranges, ANGLES).detections) == 1
    # a wall as wide has no notch and stays whole
    flat = cast(walls=[((2.5, -0.13), (2.5, 0.13))])
    assert sum(d.class_name == 'leg' for d in no_background(leg_max_width=0.2)(flat, ANGLES).detections) == 0


def test_adaptive_breakpoint_grows_with_range():
    a = np.radians([0.0, 0.25])
    for r, gap, split in [(1.0, 0.08, True), (1.0, 0.04, False), (10.0, 0.2, False), (10.0, 0.4, True)]:
        rr = np.array([r, r + gap])
        xy = np.stack([rr * np.cos(a), rr * np.sin(a)], 1)
        assert breakpoints(rr, a, xy, math.radians(10), 0.01).tolist() == [split], (r, gap)
    # a long run of missing beams always splits, however similar the ranges on both sides
    r = np.array([2.0, 2.0])
    a2 = np.radians([0.0, 5.0])
    xy = np.stack([r * np.cos(a2), r * np.sin(a2)], 1)
    assert breakpoints(r, a2, xy, math.radians(10), 0.01, beam=np.array([0, 20]), max_missing=2).tolist() == [True]


def test_all_nan_empty_and_bad_scans():
    det = ScanDetector()
    for ranges in (np.full(BEAMS, np.nan, np.float32), np.full(BEAMS, np.inf, np.float32),
                   np.zeros(BEAMS, np.float32), np.full(BEAMS, -1.0, np.float32)):
        result = det(ranges, ANGLES, 0.06, 30.0)
        assert result.detections == [] and result.counts['points_valid'] == 0
    assert ScanDetector()(np.zeros(0), np.zeros(0)).detections == []
    with pytest.raises(ValueError, match='angles'):
        det(np.ones(10), np.ones(9))
    idx, r, _ = valid_points(np.array([1.0, np.nan, 50.0, 0.01, 2.0]), np.zeros(5), 0.05, 30.0)
    assert idx.tolist() == [0, 4]
    seg, _ = segment(r, np.array([0.0, 0.01]), math.radians(10), 0.01)
    assert seg.count.sum() == 2


def test_background_model_drops_static_leg_like_objects_but_not_moving_legs():
    det = ScanDetector({'background_scans': 20})
    table_legs = [(2.0, 1.5, 0.04), (2.6, 1.5, 0.04), (2.0, 2.2, 0.04), (2.6, 2.3, 0.04)]
    wall = [((6, -6), (6, 6))]
    first = det(cast(circles=table_legs, walls=wall), ANGLES)
    assert sum(d.class_name == 'leg' for d in first.detections) == 4     # nothing known yet
    for step in range(10):
        walker = (1.5 + 0.12 * step, -1.5, 0.07)
        result = det(cast(circles=table_legs + [walker], walls=wall), ANGLES)
    legs = [d for d in result.detections if d.class_name == 'leg']
    assert len(legs) == 1 and math.hypot(legs[0].center[0] - walker[0], legs[0].center[1] + 1.5) < 0.1


def test_scan_config_file_matches_the_table():
    values = read_yaml(ROOT / 'config' / 'scan_detector.yaml', 'scan_detector', SCAN_PARAMETERS)
    assert values == resolve(SCAN_PARAMETERS)


def test_scan_detector_survives_hostile_scans():
    rng = np.random.default_rng(11)
    det = ScanDetector()
    specials = np.array([np.nan, np.inf, -np.inf, 1e30, 0.0, -5.0], np.float32)
    for trial in range(30):
        n = int(rng.integers(0, 2000)) if trial % 3 else BEAMS
        ranges = rng.uniform(0, 12, n).astype(np.float32)
        hit = rng.random(n) < 0.1
        ranges[hit] = rng.choice(specials, size=int(hit.sum()))
        angles = np.sort(rng.uniform(-3, 3, n)) if trial % 2 else rng.uniform(-3, 3, n)   # even unordered
        result = det(ranges, angles, 0.02, 30.0)
        for d in result.detections:
            assert np.all(np.isfinite(d.center)) and np.all(np.isfinite(d.size))
