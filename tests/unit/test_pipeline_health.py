"""Latency statistics, rate meters and the diagnostics verdict (ROS-free)."""
from __future__ import annotations

import numpy as np
import pytest

from aiat_perception.latency_stats import RateMeter, RollingStats, WindowedCount
from aiat_perception.pipeline_health import (ERROR, OK, WARN, HealthThresholds, PipelineHealth,
                                             SequenceGaps)


def test_rolling_stats_window_and_percentiles():
    stats = RollingStats(window=100)
    assert stats.summary()['p50'] is None
    for value in range(1000):
        stats.add(value)
    summary = stats.summary()
    assert len(stats) == 100 and stats.count == 1000
    assert summary['p50'] == pytest.approx(np.percentile(np.arange(900, 1000), 50))
    assert summary['p95'] == pytest.approx(np.percentile(np.arange(900, 1000), 95))
    assert summary['max'] == 999 and summary['last'] == 999
    with pytest.raises(ValueError):
        RollingStats(0)


def test_rate_meter():
    meter = RateMeter(horizon_s=5.0)
    for i in range(51):
        meter.tick(100.0 + i * 0.1)   # 10 Hz for 5 s
    assert meter.rate(105.0) == pytest.approx(10.0, rel=0.01)
    assert meter.rate(120.0) == 0.0   # all ticks are older than the horizon
    assert meter.count == 51


def feed(health, n, processing_ms, pipeline_ms, t0=0.0, dt=0.1):
    for i in range(n):
        t = t0 + i * dt
        health.record_input(t)
        health.record_output(t, processing_ms, pipeline_ms, {'inference': processing_ms * 0.8})
    return t0 + (n - 1) * dt


def test_ok_with_rates_and_latencies():
    health = PipelineHealth(thresholds=HealthThresholds(processing_budget_ms=50))
    now = feed(health, 30, 20.0, 30.0)
    report = health.report(now)
    values = report.as_dict()
    assert report.level == OK and report.message == 'ok'
    assert float(values['input_rate_hz']) == pytest.approx(10.0, rel=0.02)
    assert float(values['processing_ms_p50']) == 20.0 and float(values['inference_ms_p50']) == 16.0
    assert float(values['pipeline_latency_ms_p95']) == 30.0
    assert values['frames_dropped'] == '0'


def test_warn_over_budget_then_error_after_consecutive_violations():
    t = HealthThresholds(processing_budget_ms=50, error_after_violations=5)
    health = PipelineHealth(thresholds=t)
    now = feed(health, 20, 80.0, 90.0)
    report = health.report(now)
    assert report.level == ERROR and '20 consecutive frames over budget' in report.message
    health = PipelineHealth(thresholds=t)
    feed(health, 20, 80.0, 90.0)
    now = feed(health, 3, 10.0, 20.0, t0=2.0)  # recovered, but p95 still over budget
    report = health.report(now)
    assert report.level == WARN and 'processing p95' in report.message


def test_stale_input_and_no_input():
    health = PipelineHealth(thresholds=HealthThresholds(stale_input_s=2.0, no_input_warn_s=5.0))
    assert health.report(1.0).level == OK
    assert health.report(6.0).level == WARN
    now = feed(health, 5, 10.0, 10.0, t0=10.0)
    assert health.report(now + 1.0).level == OK
    report = health.report(now + 3.0)
    assert report.level == ERROR and 'input stale' in report.message


def test_malformed_and_drops_are_reported():
    health = PipelineHealth()
    now = feed(health, 5, 10.0, 10.0)
    health.record_drop(3)
    health.record_malformed('Image.step: step 5 < width')
    report = health.report(now)
    values = report.as_dict()
    assert report.level == WARN and values['frames_malformed'] == '1' and values['frames_dropped'] == '3'
    assert values['last_problem'].startswith('Image.step')


def test_threshold_validation_names_parameters():
    problems = HealthThresholds(processing_budget_ms=0, error_after_violations=0,
                                lost_warn_fraction=1.5).problems()
    assert any('processing_budget_ms' in p for p in problems)
    assert any('error_after_violations' in p for p in problems)
    assert any('lost_warn_fraction' in p for p in problems)
    assert HealthThresholds(lost_warn_fraction=float('nan')).problems()


def test_windowed_count_forgets_old_events_and_keeps_the_total():
    count = WindowedCount(horizon_s=10.0, buckets=50)
    count.add(0.0)
    count.add(0.1, 4)
    count.add(9.0)
    assert count.count(9.5) == 6 and count.total == 6
    assert count.count(10.5) == 1            # the first five are more than 10.2 s old
    assert count.count(19.5) == 0 and count.total == 6
    for i in range(100_000):                 # a flood stays bounded: one slot per 0.2 s
        count.add(20.0 + i * 1e-5)
    assert count.count(21.0) == 100_000 and len(count._slots) <= 51
    with pytest.raises(ValueError):
        WindowedCount(0.0)


def test_malformed_warning_clears_when_the_window_is_clean():
    health = PipelineHealth(problem_window_s=2.0)
    feed(health, 10, 10.0, 10.0, t0=0.0)            # frames at 0.0 .. 0.9 s
    health.record_malformed('Image.step: step 5 < width', now=1.0)
    report = health.report(1.5)
    values = report.as_dict()
    assert report.level == WARN and '1 malformed / 0 failed frame(s) in the last 2 s' in report.message
    assert values['frames_malformed'] == '1' and values['frames_malformed_in_window'] == '1'
    now = feed(health, 40, 10.0, 10.0, t0=1.1)       # clean frames until 5.0 s
    report = health.report(now)
    values = report.as_dict()
    assert report.level == OK, report.message
    assert values['frames_malformed'] == '1' and values['frames_malformed_in_window'] == '0'
    assert values['last_problem'].startswith('Image.step')   # the lifetime record stays
    assert values['problem_window_s'] == '2'


def test_failed_is_separate_from_malformed_and_windowed_too():
    health = PipelineHealth(problem_window_s=1.0)
    now = feed(health, 5, 10.0, 10.0)
    health.record_failure('RuntimeError: model exploded', now=now)
    values = health.report(now).as_dict()
    assert values['frames_failed'] == '1' and values['frames_malformed'] == '0'
    assert health.report(now).level == WARN
    now = feed(health, 20, 10.0, 10.0, t0=now + 0.1)
    assert health.report(now).level == OK and health.report(now).as_dict()['frames_failed'] == '1'


def test_lost_frames_warn_above_the_fraction_and_clear():
    health = PipelineHealth(thresholds=HealthThresholds(lost_warn_fraction=0.05), problem_window_s=5.0)
    now = feed(health, 50, 10.0, 10.0)               # 50 frames in 4.9 s
    health.record_lost(2, now=now)                   # 2 / 52 = 3.8 %: counted, no warning
    report = health.report(now)
    assert report.level == OK and report.as_dict()['frames_lost'] == '2'
    health.record_lost(2, now=now)                   # 4 / 54 = 7.4 %
    report = health.report(now)
    assert report.level == WARN and '4 of 54 frames lost in the last 5 s' in report.message
    now = feed(health, 60, 10.0, 10.0, t0=now + 0.1)
    report = health.report(now)
    assert report.level == OK and report.as_dict()['frames_lost'] == '4'
    assert report.as_dict()['frames_lost_in_window'] == '0'


def test_drops_are_windowed_but_never_warn():
    health = PipelineHealth(problem_window_s=1.0)
    now = feed(health, 10, 10.0, 10.0)
    health.record_drop(7)                            # dated at the latest input
    values = health.report(now).as_dict()
    assert values['frames_dropped'] == '7' and values['frames_dropped_in_window'] == '7'
    assert health.report(now).level == OK
    assert health.report(now + 1.5).as_dict()['frames_dropped_in_window'] == '0'


def test_sequence_gaps_count_missing_numbers_per_source():
    gaps = SequenceGaps(max_gap=1000, max_sources=2)
    assert gaps.observe('a', 1) == 0                 # first number: nothing to compare with
    assert gaps.observe('a', 2) == 0
    assert gaps.observe('a', 5) == 2                 # 3 and 4 never arrived
    assert gaps.observe('b', 100) == 0               # another publisher has its own sequence
    assert gaps.observe('a', 6) == 0 and gaps.observe('b', 102) == 1
    assert gaps.observe('a', 1) == 0                 # restarted publisher: start again
    assert gaps.observe('a', 3) == 1
    assert gaps.observe('a', 10_000) == 0            # implausible jump: start again, count nothing
    assert gaps.observe('c', 7) == 0                 # a third source evicts the oldest ('b')
    assert gaps.observe('b', 110) == 0
