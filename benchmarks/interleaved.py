"""The timing loop of the lidar and fusion benchmarks: the call under test and its floor run
alternately, so both see the same machine load; wall and CPU time of each, and the call's stages."""
from __future__ import annotations

import time
from typing import Callable, Dict, List

import numpy as np


def pct(values) -> Dict[str, float]:
    ms = np.asarray(values, dtype=np.float64)
    return {'median_ms': round(float(np.median(ms)), 3), 'p99_ms': round(float(np.percentile(ms, 99)), 3)}


def interleaved(call: Callable, floor: Callable, iterations: int, warmup: int = 10) -> dict:
    """Run ``floor()`` then ``call()`` ``iterations`` times (after ``warmup`` rounds). Returns the
    per-iteration milliseconds (``totals``, ``floors``, ``cpu``, ``floor_cpu``: this process's CPU
    time, which a loaded machine does not inflate for single-threaded code), ``stages`` (from the
    result's ``stage_ms``) and the last ``result``."""
    for _ in range(warmup):
        call()
        floor()
    out: Dict[str, List[float]] = {'totals': [], 'floors': [], 'cpu': [], 'floor_cpu': []}
    stages: Dict[str, List[float]] = {}
    result = None
    for _ in range(iterations):
        t0, c0 = time.perf_counter(), time.process_time()
        floor()
        out['floors'].append((time.perf_counter() - t0) * 1e3)
        out['floor_cpu'].append((time.process_time() - c0) * 1e3)
        t0, c0 = time.perf_counter(), time.process_time()
        result = call()
        out['totals'].append((time.perf_counter() - t0) * 1e3)
        out['cpu'].append((time.process_time() - c0) * 1e3)
        for stage, ms in result.stage_ms.items():
            stages.setdefault(stage, []).append(ms)
    return dict(out, stages=stages, result=result)
