"""Health of a sensor-processing node: rates, drops, malformed input, per-stage and pipeline latency,
and the OK/WARN/ERROR verdict published on /diagnostics (ROS-free; the node converts the report)."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from aiat_perception.latency_stats import RateMeter, RollingStats

OK, WARN, ERROR, STALE = 0, 1, 2, 3
LEVEL_NAMES = {OK: 'OK', WARN: 'WARN', ERROR: 'ERROR', STALE: 'STALE'}


@dataclass
class HealthThresholds:
    processing_budget_ms: float = 150.0      # WARN when the window's p95 processing time exceeds it
    pipeline_budget_ms: float = 250.0        # WARN when the window's p95 pipeline latency exceeds it
    error_after_violations: int = 10         # ERROR after this many consecutive over-budget frames
    stale_input_s: float = 2.0               # ERROR when no input arrived for this long (after the first)
    no_input_warn_s: float = 5.0             # WARN when no input arrived since start for this long

    def problems(self) -> List[str]:
        bad = []
        for name in ('processing_budget_ms', 'pipeline_budget_ms', 'stale_input_s', 'no_input_warn_s'):
            if not getattr(self, name) > 0:
                bad.append(f'{name} must be > 0 (got {getattr(self, name)})')
        if self.error_after_violations < 1:
            bad.append(f'error_after_violations must be >= 1 (got {self.error_after_violations})')
        return bad


@dataclass
class HealthReport:
    level: int
    message: str
    values: List[Tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> Dict[str, str]:
        return dict(self.values)


class PipelineHealth:
    """Collects per-frame measurements (times in seconds from one clock, durations in ms)."""

    def __init__(self, stages: Sequence[str] = ('preprocess', 'inference', 'decode'),
                 thresholds: Optional[HealthThresholds] = None, window: int = 100,
                 start_time: float = 0.0):
        self.thresholds = thresholds or HealthThresholds()
        self.input_rate = RateMeter()
        self.output_rate = RateMeter()
        self.processing = RollingStats(window)
        self.pipeline = RollingStats(window)
        self.stages = {name: RollingStats(window) for name in stages}
        self.start_time = start_time
        self.dropped = 0
        self.malformed = 0
        self.failed = 0
        self.last_problem = ''
        self.consecutive_violations = 0
        self._lock = threading.Lock()

    def record_input(self, now: float) -> None:
        self.input_rate.tick(now)

    def record_drop(self, count: int = 1) -> None:
        with self._lock:
            self.dropped += count

    def record_malformed(self, reason: str) -> None:
        with self._lock:
            self.malformed += 1
            self.last_problem = reason

    def record_failure(self, reason: str) -> None:
        with self._lock:
            self.failed += 1
            self.last_problem = reason

    def record_output(self, now: float, processing_ms: float, pipeline_ms: float,
                      stage_ms: Optional[Dict[str, float]] = None) -> None:
        self.output_rate.tick(now)
        self.processing.add(processing_ms)
        self.pipeline.add(pipeline_ms)
        for name, value in (stage_ms or {}).items():
            if name in self.stages:
                self.stages[name].add(value)
        over = (processing_ms > self.thresholds.processing_budget_ms
                or pipeline_ms > self.thresholds.pipeline_budget_ms)
        with self._lock:
            self.consecutive_violations = self.consecutive_violations + 1 if over else 0

    def report(self, now: float) -> HealthReport:
        t = self.thresholds
        processing, pipeline = self.processing.summary(), self.pipeline.summary()
        last_input = self.input_rate.last_time
        levels: List[Tuple[int, str]] = []
        if last_input is None:
            if now - self.start_time > t.no_input_warn_s:
                levels.append((WARN, f'no input for {now - self.start_time:.1f} s since start'))
        elif now - last_input > t.stale_input_s:
            levels.append((ERROR, f'input stale: last frame {now - last_input:.1f} s ago'))
        if self.consecutive_violations >= t.error_after_violations:
            levels.append((ERROR, f'{self.consecutive_violations} consecutive frames over budget'))
        if processing['p95'] is not None and processing['p95'] > t.processing_budget_ms:
            levels.append((WARN, f'processing p95 {processing["p95"]:.1f} ms > budget '
                                 f'{t.processing_budget_ms:.1f} ms'))
        if pipeline['p95'] is not None and pipeline['p95'] > t.pipeline_budget_ms:
            levels.append((WARN, f'pipeline latency p95 {pipeline["p95"]:.1f} ms > budget '
                                 f'{t.pipeline_budget_ms:.1f} ms'))
        if self.malformed or self.failed:
            levels.append((WARN, f'{self.malformed} malformed / {self.failed} failed frame(s); '
                                 f'last: {self.last_problem}'))
        level = max((lvl for lvl, _ in levels), default=OK)
        message = '; '.join(text for lvl, text in sorted(levels, key=lambda x: -x[0])) or 'ok'

        def fmt(value):
            return 'nan' if value is None else f'{value:.2f}'

        values = [
            ('input_rate_hz', fmt(self.input_rate.rate(now))),
            ('output_rate_hz', fmt(self.output_rate.rate(now))),
            ('frames_received', str(self.input_rate.count)),
            ('frames_processed', str(self.output_rate.count)),
            ('frames_dropped', str(self.dropped)),
            ('frames_malformed', str(self.malformed)),
            ('frames_failed', str(self.failed)),
            ('last_problem', self.last_problem),
            ('consecutive_over_budget', str(self.consecutive_violations)),
            ('seconds_since_input', fmt(None if last_input is None else now - last_input)),
        ]
        for label, stats in [('processing_ms', processing), ('pipeline_latency_ms', pipeline)]:
            values += [(f'{label}_p50', fmt(stats['p50'])), (f'{label}_p95', fmt(stats['p95'])),
                       (f'{label}_max', fmt(stats['max']))]
        for name, stats in self.stages.items():
            summary = stats.summary()
            values += [(f'{name}_ms_p50', fmt(summary['p50'])), (f'{name}_ms_p95', fmt(summary['p95'])),
                       (f'{name}_ms_max', fmt(summary['max']))]
        return HealthReport(level, message, values)
