"""AgreementMonitor: pooled figures over a frame or time window, OK / WARN / ERROR, too little data,
and validation of its settings."""
from __future__ import annotations

import math

import pytest

from aiat_perception.fusion import AgreementMonitor, AgreementThresholds, FusionResult, Level


def frame(camera=4, confirmed=3, in_view=4, missed=1, ious=(0.7, 0.65, 0.6)):
    return FusionResult([], [], confirmed, camera, in_view, missed, list(ious), {})


def test_good_agreement_is_ok_and_figures_are_pooled():
    m = AgreementMonitor(window_frames=10)
    for _ in range(5):
        m.update(frame())
    m.update(frame(camera=0, confirmed=0, in_view=0, missed=0, ious=()))
    s = m.status()
    assert s.level == Level.OK and s.message == 'camera and lidar agree'
    assert s.confirm_rate == pytest.approx(15 / 20) and s.miss_rate == pytest.approx(5 / 20)
    assert s.mean_iou == pytest.approx(0.65) and s.frames == 6 and s.pairs == 15
    assert dict(s.values())['mean_iou'] == '0.650'


def test_a_shifted_calibration_warns_then_errors():
    m = AgreementMonitor(window_frames=5)
    for _ in range(5):
        m.update(frame(ious=(0.45, 0.4, 0.42)))              # boxes still overlap, less well
    s = m.status()
    assert s.level == Level.WARN and 'mean IoU of projected lidar boxes 0.42' in s.message
    for _ in range(5):
        m.update(frame(confirmed=0, missed=4, ious=()))      # nothing associates any more
    s = m.status()
    assert s.level == Level.ERROR and math.isnan(s.mean_iou)
    assert 'lidar confirms 0% of camera detections' in s.message and 'camera misses 100%' in s.message


def test_each_figure_alone_sets_the_level():
    t = AgreementThresholds()
    cases = [(dict(confirmed=2), Level.WARN),                       # 50 % confirmed
             (dict(confirmed=0, ious=(0.7,)), Level.ERROR),
             (dict(missed=4, in_view=4), Level.ERROR),              # 100 % missed
             (dict(missed=7, in_view=8), Level.WARN)]               # 87.5 % missed
    for kwargs, level in cases:
        m = AgreementMonitor(window_frames=20, thresholds=t)
        for _ in range(10):
            m.update(frame(**kwargs))
        assert m.status().level == level, (kwargs, m.status())


def test_too_few_detections_are_not_judged():
    m = AgreementMonitor(window_frames=100)
    m.update(frame(camera=2, confirmed=0, in_view=1, missed=1, ious=()))
    s = m.status()
    assert s.level == Level.OK and s.message.startswith('too few detections')


def test_time_window_drops_old_frames():
    m = AgreementMonitor(window_s=1.0)
    for i in range(10):
        m.update(frame(confirmed=0, missed=4, ious=()), stamp=i * 0.1)
    assert m.status().level == Level.ERROR
    for i in range(10):
        m.update(frame(), stamp=2.0 + i * 0.1)
    s = m.status()
    assert s.level == Level.OK and s.frames == 10
    assert m.status(now=10.0).frames == 0
    with pytest.raises(ValueError, match='stamp'):
        m.update(frame())
    m.reset()
    assert m.status().frames == 0


def test_frame_window_keeps_the_last_frames():
    m = AgreementMonitor(window_frames=3)
    for _ in range(10):
        m.update(frame(confirmed=0, missed=4, ious=()))
    for _ in range(3):
        m.update(frame(camera=10, confirmed=8, ious=(0.7,) * 8))
    s = m.status()
    assert s.frames == 3 and s.level == Level.OK and s.confirm_rate == pytest.approx(0.8)


@pytest.mark.parametrize('kwargs, message', [
    (dict(), 'one of them'),
    (dict(window_s=1.0, window_frames=5), 'one of them'),
    (dict(window_s=-1.0), 'window_s'),
    (dict(window_s=float('nan')), 'window_s'),
    (dict(window_frames=0), 'window_frames'),
    (dict(window_frames=True), 'window_frames'),
])
def test_window_settings_are_validated(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AgreementMonitor(**kwargs)


@pytest.mark.parametrize('kwargs, message', [
    (dict(warn_mean_iou=1.5), 'warn_mean_iou'),
    (dict(error_confirm_rate=float('nan')), 'error_confirm_rate'),
    (dict(error_mean_iou=0.6, warn_mean_iou=0.5), 'error_mean_iou must not exceed'),
    (dict(error_miss_rate=0.5, warn_miss_rate=0.8), 'error_miss_rate must not be below'),
    (dict(min_pairs=0), 'min_pairs'),
])
def test_thresholds_are_validated(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AgreementThresholds(**kwargs)
