"""Fuzz what the fusion node takes from the wire, ROS-free: Detection2DArray-like objects with any
numbers (NaN, inf, huge, negative sizes, no hypothesis) through ``camera_detections_from_msg`` and
then ``fuse()`` with a camera and a cloud, and any stamps, offsets and orders through the
NearestStampPairer. Outcome: a documented ValueError (too many detections), or finite boxes that
fuse() takes without raising, and a pairer whose counts add up. Seeded and bounded by the profile in
tests/conftest.py; ``--long`` runs 10,000 cases per target.
"""
from __future__ import annotations

from types import SimpleNamespace as NS

import numpy as np
import pytest
from hypothesis import given, strategies as st

from aiat_perception.fusion import CameraModel, FusionConfig, fuse
from aiat_perception.fusion_messages import camera_detections_from_msg
from aiat_perception.stamp_pairing import NearestStampPairer

from .outcomes import Outcomes

OUTCOMES = Outcomes(__name__)
CAMERA = CameraModel(P=[[500, 0, 320, 0], [0, 500, 240, 0], [0, 0, 1, 0]], K=np.eye(3), width=640, height=480)
RNG = np.random.default_rng(0)
CLOUD = np.column_stack([RNG.uniform(-5, 5, 2000), RNG.uniform(-2, 2, 2000), RNG.uniform(2, 40, 2000)])
# mostly plausible pixels (boxes that fuse), some anything (NaN, inf, huge, negative)
NUMBERS = st.one_of(st.floats(0, 700), st.floats(0, 700), st.floats(0, 700), st.floats(-2000, 2000),
                    st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**12, 10**12))


@pytest.fixture(scope='module', autouse=True)
def _report_outcomes():
    yield
    OUTCOMES.report()


detection = st.builds(
    lambda det_id, cx, cy, w, h, results: NS(id=det_id, bbox=NS(center=NS(position=NS(x=cx, y=cy)), size_x=w,
                                                                 size_y=h),
                                             results=[NS(hypothesis=NS(class_id=c, score=s)) for c, s in results]),
    st.text(max_size=5), NUMBERS, NUMBERS, NUMBERS, NUMBERS,
    st.lists(st.tuples(st.sampled_from(['person', 'car', '', 'x' * 50]), NUMBERS), max_size=3))


@given(st.lists(detection, max_size=30), st.integers(1, 40))
def test_any_detection_array_gives_finite_boxes_that_fuse_takes(detections, cap):
    msg = NS(detections=detections)
    try:
        boxes, names, scores, ids, skipped = camera_detections_from_msg(msg, max_detections=cap)
    except ValueError as exc:
        assert len(detections) > cap and 'detections >' in str(exc)
        OUTCOMES.record('detections', 'ValueError:too many')
        return
    assert len(boxes) + skipped == len(detections) and len(names) == len(scores) == len(ids) == len(boxes)
    assert np.isfinite(boxes).all() and np.isfinite(scores).all()
    assert (boxes[:, 2] >= boxes[:, 0]).all() and (boxes[:, 3] >= boxes[:, 1]).all()
    result = fuse(boxes, names, scores, CLOUD, np.eye(4), CAMERA, FusionConfig())
    assert len(result.objects) + len(result.unsupported) == len(boxes)
    for obj in result.objects:
        assert np.isfinite(obj.position).all() and np.isfinite(obj.covariance).all()
    OUTCOMES.record('detections', 'valid' if not skipped else 'valid, entries skipped')


event = st.tuples(st.sampled_from(['camera', 'cloud']), st.integers(-2**62, 2**62) | st.integers(0, 3 * 10**9))


@given(st.lists(event, max_size=60), st.integers(0, 10**9), st.integers(1, 5 * 10**9), st.integers(-10**9, 10**9),
       st.integers(1, 20))
def test_pairer_counts_add_up_for_any_stamps(events, tolerance, timeout, offset, cap):
    pairer = NearestStampPairer('camera', ['cloud'], tolerance, timeout, {'cloud': offset}, max_pending=cap)
    paired_cameras = 0
    for stream, stamp in events:
        for pair in pairer.add(stream, stamp, (stream, stamp)):
            paired_cameras += 1
            assert abs(pair.gaps_ns['cloud']) <= tolerance
    cameras = sum(1 for s, _ in events if s == 'camera')
    waiting = pairer.waiting()
    assert waiting['camera'] <= cap and waiting['cloud'] <= cap
    # every camera item ends paired, unpaired (expired, capped, replaced) or still waiting
    assert paired_cameras + pairer.unpaired['camera'] + waiting['camera'] == cameras
    assert pairer.paired == paired_cameras
    OUTCOMES.record('pairer', 'paired' if paired_cameras else 'none paired')
