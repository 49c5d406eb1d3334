"""Latency statistics, rate meters and the diagnostics verdict (ROS-free)."""
from __future__ import annotations

import numpy as np
import pytest

from aiat_perception.latency_stats import RateMeter, RollingStats
from aiat_perception.pipeline_health import ERROR, OK, WARN, HealthThresholds, PipelineHealth


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
    problems = HealthThresholds(processing_budget_ms=0, error_after_violations=0).problems()
    assert any('processing_budget_ms' in p for p in problems)
    assert any('error_after_violations' in p for p in problems)
