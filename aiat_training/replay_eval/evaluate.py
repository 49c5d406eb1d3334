"""From a collected run to the report: scores per sensor, latency, drops, notes."""
from __future__ import annotations

import math
import time
from typing import Dict, List, Optional, Sequence, Tuple

from aiat_perception.replay.pairing import DEFAULT_TOLERANCE_NS
from aiat_training.replay_eval import scoring
from aiat_training.replay_eval.classes import CAMERA_CLASSES
from aiat_training.replay_eval.frames import Collected
from aiat_training.replay_eval.report import SCHEMA_VERSION

SMOKE_TEST_FRAMES = 20


def finite_or_none(value):
    """NaN and inf (a recall with nothing to find, ...) become null: JSON has no NaN."""
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
LATENCY_DEFINITION = {'offline': 'core processing time per frame (decode excluded; fusion: the fusion step alone)',
                      'live': 'output received minus the input header stamp (the player stamps at publish time)'}


def evaluate(collected: Collected, mode: str = 'offline', tolerance_ns: int = DEFAULT_TOLERANCE_NS,
             classes: Sequence[str] = CAMERA_CLASSES, extra: Optional[Dict[str, object]] = None
             ) -> Tuple[Dict[str, object], List[Dict[str, object]]]:
    summary: Dict[str, object] = {}
    records: List[Dict[str, object]] = []
    notes = list(collected.notes)
    for sensor in ('camera', 'lidar', 'fusion', 'scan'):
        if not collected.of(sensor):
            continue
        pairs = scoring.pair(collected, sensor, tolerance_ns)
        if sensor == 'camera':
            s, r = scoring.score_camera(pairs, classes)
        elif sensor == 'lidar':
            s, r = scoring.score_lidar(pairs, collected.truth.get('camera'))
        elif sensor == 'fusion':
            s, r = scoring.score_fusion(pairs, collected.truth.get('camera'))
        else:
            s, r = scoring.score_scan(pairs)
        s['latency_ms'] = scoring.percentiles([x['latency_ms'] for x in r if x.get('latency_ms') is not None])
        s['latency_definition'] = LATENCY_DEFINITION[mode]
        considered = [x for x in r if x['status'] != 'malformed']
        s['drop_rate'] = round(s['dropped'] / len(considered), 6) if considered else None
        summary[sensor] = s
        records.extend(r)
        if 0 < s['evaluated'] < SMOKE_TEST_FRAMES:
            notes.append(f'{sensor}: {s["evaluated"]} evaluated frame(s) are a smoke test of the path, not a score '
                         f'(fewer than {SMOKE_TEST_FRAMES})')
        if s['skipped_no_gt']:
            notes.append(f'{sensor}: {s["skipped_no_gt"]} frame(s) had no ground truth within '
                         f'{tolerance_ns / 1e6:g} ms and were skipped')
    summary = finite_or_none(summary)
    report = {'schema_version': SCHEMA_VERSION, 'bag': collected.bag, 'mode': mode,
              'created_unix': round(time.time(), 3), 'stamp_tolerance_ms': tolerance_ns / 1e6,
              'notes': notes, 'summary': summary}
    if extra:
        report.update(extra)
    return report, records
