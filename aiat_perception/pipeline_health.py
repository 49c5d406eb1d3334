"""Health of a sensor-processing node: rates, frames dropped/lost/malformed/failed, per-stage and
pipeline latency, and the OK/WARN/ERROR verdict published on /diagnostics (ROS-free; the node converts
the report).

Frame accounting (each frame a publisher sends ends in exactly one of these):
  processed  detections published for it
  dropped    overwritten in the node's one-frame slot before processing (the node was busy)
  lost       never delivered to the node (see :class:`SequenceGaps`)
  malformed  delivered but unusable (fields that do not describe the data, undecodable, too large)
  failed     a usable frame on which the model or pipeline raised
Problems make the level WARN only while they are recent (``problem_window_s``); lifetime totals
are reported beside the windowed counts.
"""
from __future__ import annotations

import collections
import threading
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from aiat_perception.latency_stats import RateMeter, RollingStats, WindowedCount

OK, WARN, ERROR, STALE = 0, 1, 2, 3
LEVEL_NAMES = {OK: 'OK', WARN: 'WARN', ERROR: 'ERROR', STALE: 'STALE'}


@dataclass
class HealthThresholds:
    processing_budget_ms: float = 150.0      # WARN when the window's p95 processing time exceeds it
    pipeline_budget_ms: float = 250.0        # WARN when the window's p95 pipeline latency exceeds it
    error_after_violations: int = 10         # ERROR after this many consecutive over-budget frames
    stale_input_s: float = 2.0               # ERROR when no input arrived for this long (after the first)
    no_input_warn_s: float = 5.0             # WARN when no input arrived since start for this long
    lost_warn_fraction: float = 0.01         # WARN when more than this share of the window's frames was lost

    def problems(self) -> List[str]:
        bad = []
        for name in ('processing_budget_ms', 'pipeline_budget_ms', 'stale_input_s', 'no_input_warn_s'):
            if not getattr(self, name) > 0:
                bad.append(f'{name} must be > 0 (got {getattr(self, name)})')
        if self.error_after_violations < 1:
            bad.append(f'error_after_violations must be >= 1 (got {self.error_after_violations})')
        if not 0.0 <= self.lost_warn_fraction <= 1.0:
            bad.append(f'lost_warn_fraction must be in [0, 1] (got {self.lost_warn_fraction})')
        return bad


@dataclass
class HealthReport:
    level: int
    message: str
    values: List[Tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> Dict[str, str]:
        return dict(self.values)


class SequenceGaps:
    """Numbers missing from increasing per-source sequences: frames a publisher sent that never arrived.

    ``observe(source, number)`` returns how many numbers were skipped since the previous one from
    the same source. A first number, a number that does not increase (the source restarted) or a
    jump above ``max_gap`` (not a plausible loss) starts the sequence again without counting.
    Hand-written: a dictionary of last numbers, which no library offers in a simpler form.
    """

    def __init__(self, max_gap: int = 1_000_000, max_sources: int = 256):
        self.max_gap = int(max_gap)
        self.max_sources = int(max_sources)
        self._last: 'collections.OrderedDict' = collections.OrderedDict()

    def observe(self, source, number: int) -> int:
        number = int(number)
        last = self._last.pop(source, None)
        self._last[source] = number
        if len(self._last) > self.max_sources:
            self._last.popitem(last=False)
        if last is None or number <= last or number - last - 1 > self.max_gap:
            return 0
        return number - last - 1


class PipelineHealth:
    """Collects per-frame measurements (times in seconds from one clock, durations in ms).

    ``record_*`` calls without ``now`` are dated at the latest input.
    """

    def __init__(self, stages: Sequence[str] = ('preprocess', 'inference', 'decode'),
                 thresholds: Optional[HealthThresholds] = None, window: int = 100,
                 start_time: float = 0.0, problem_window_s: float = 10.0):
        self.thresholds = thresholds or HealthThresholds()
        self.input_rate = RateMeter()
        self.output_rate = RateMeter()
        self.processing = RollingStats(window)
        self.pipeline = RollingStats(window)
        self.stages = {name: RollingStats(window) for name in stages}
        self.start_time = start_time
        self.problem_window_s = float(problem_window_s)
        self._received = WindowedCount(problem_window_s)
        self._dropped = WindowedCount(problem_window_s)
        self._lost = WindowedCount(problem_window_s)
        self._malformed = WindowedCount(problem_window_s)
        self._failed = WindowedCount(problem_window_s)
        self.last_problem = ''
        self.consecutive_violations = 0
        self._lock = threading.Lock()

    # lifetime totals
    dropped = property(lambda self: self._dropped.total)
    lost = property(lambda self: self._lost.total)
    malformed = property(lambda self: self._malformed.total)
    failed = property(lambda self: self._failed.total)

    def _now(self, now: Optional[float]) -> float:
        if now is not None:
            return now
        last = self.input_rate.last_time
        return self.start_time if last is None else last

    def record_input(self, now: float) -> None:
        self.input_rate.tick(now)
        self._received.add(now)

    def record_drop(self, count: int = 1, now: Optional[float] = None) -> None:
        self._dropped.add(self._now(now), count)

    def record_lost(self, count: int = 1, now: Optional[float] = None) -> None:
        if count > 0:
            self._lost.add(self._now(now), count)

    def record_malformed(self, reason: str, now: Optional[float] = None) -> None:
        self._malformed.add(self._now(now))
        with self._lock:
            self.last_problem = reason

    def record_failure(self, reason: str, now: Optional[float] = None) -> None:
        self._failed.add(self._now(now))
        with self._lock:
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
        window = self.problem_window_s
        received_w, dropped_w, lost_w = (c.count(now) for c in (self._received, self._dropped,
                                                                  self._lost))
        malformed_w, failed_w = self._malformed.count(now), self._failed.count(now)
        if malformed_w or failed_w:
            levels.append((WARN, f'{malformed_w} malformed / {failed_w} failed frame(s) in the last '
                                 f'{window:g} s; last: {self.last_problem}'))
        if lost_w and lost_w > t.lost_warn_fraction * (received_w + lost_w):
            levels.append((WARN, f'{lost_w} of {received_w + lost_w} frames lost in the last '
                                 f'{window:g} s'))
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
            ('frames_lost', str(self.lost)),
            ('frames_malformed', str(self.malformed)),
            ('frames_failed', str(self.failed)),
            ('last_problem', self.last_problem),
            ('problem_window_s', f'{window:g}'),
            ('frames_received_in_window', str(received_w)),
            ('frames_dropped_in_window', str(dropped_w)),
            ('frames_lost_in_window', str(lost_w)),
            ('frames_malformed_in_window', str(malformed_w)),
            ('frames_failed_in_window', str(failed_w)),
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
