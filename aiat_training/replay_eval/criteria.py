"""Pass/fail criteria (YAML) and differences against a baseline report.

    min_map_50: 0.4                 # camera mAP@0.5 over all classes
    min_map_50_95: 0.2
    min_ap_50: {person: 0.5, car: 0.3}        # camera AP@0.5 per class
    min_bev_ap: {car: 0.3}                      # lidar BEV AP|R40 per class
    min_fused_bev_ap: {car: 0.2}                # fusion BEV AP|R40 per class (fused boxes vs 3D ground truth)
    max_fused_distance_error_m: 1.0             # fusion: median |distance error| of matched objects
    min_leg_recall: 0.5                         # scan, leg-labelled bags
    min_person_recall: 0.5                      # scan, person ground truth
    max_latency_p99_ms: 100                     # every sensor
    max_drop_rate: 0.05                         # every sensor (live mode; offline drops nothing)

A criterion whose figure the report lacks fails (say what you gate on, and measure it).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List

KEYS = ('min_map_50', 'min_map_50_95', 'min_ap_50', 'min_bev_ap', 'min_fused_bev_ap', 'max_fused_distance_error_m',
        'min_leg_recall', 'min_person_recall', 'max_latency_p99_ms', 'max_drop_rate')
PER_CLASS = ('min_ap_50', 'min_bev_ap', 'min_fused_bev_ap')


class CriteriaError(ValueError):
    pass


def load_criteria(path) -> Dict[str, object]:
    import yaml
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise CriteriaError(f'{path}: cannot read criteria: {" ".join(str(exc).split())}') from exc
    if not isinstance(data, dict):
        raise CriteriaError(f'{path}: criteria must be a mapping of {", ".join(KEYS)}')
    for key, value in data.items():
        if key not in KEYS:
            raise CriteriaError(f'{path}: unknown criterion {key!r} (known: {", ".join(KEYS)})')
        values = value.values() if isinstance(value, dict) else [value]
        if key not in PER_CLASS and isinstance(value, dict):
            raise CriteriaError(f'{path}: {key} takes one number')
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or v < 0:
                raise CriteriaError(f'{path}: {key}: {v!r} is not a non-negative number')
    return data


def check(criteria: Dict[str, object], summary: Dict[str, object]) -> List[str]:
    """The failed criteria, one line each (empty: pass)."""
    failed = []
    cam, lidar, scan = summary.get('camera'), summary.get('lidar'), summary.get('scan')
    fusion = summary.get('fusion')

    def low(name, value, limit):
        if value is None:
            failed.append(f'{name}: not measured (limit {limit})')
        elif value < limit:
            failed.append(f'{name}: {value:.4f} < {limit}')

    for key, field in (('min_map_50', 'map_50'), ('min_map_50_95', 'map_50_95')):
        if key in criteria:
            low(key, (cam or {}).get(field), criteria[key])
    for cls, limit in (criteria.get('min_ap_50') or {}).items():
        low(f'min_ap_50.{cls}', ((cam or {}).get('per_class', {}).get(cls) or {}).get('ap_50'), limit)
    for cls, limit in (criteria.get('min_bev_ap') or {}).items():
        low(f'min_bev_ap.{cls}', ((lidar or {}).get('per_class', {}).get(cls) or {}).get('bev_ap_r40'), limit)
    for cls, limit in (criteria.get('min_fused_bev_ap') or {}).items():
        low(f'min_fused_bev_ap.{cls}', ((fusion or {}).get('per_class', {}).get(cls) or {}).get('bev_ap_r40'), limit)
    if 'max_fused_distance_error_m' in criteria:
        limit = criteria['max_fused_distance_error_m']
        error = ((fusion or {}).get('distance_error') or {}).get('median_abs_m')
        if error is None:
            failed.append(f'max_fused_distance_error_m: not measured (limit {limit})')
        elif error > limit:
            failed.append(f'max_fused_distance_error_m: {error:.4f} > {limit}')
    if 'min_leg_recall' in criteria:
        low('min_leg_recall', ((scan or {}).get('legs') or {}).get('leg_recall'), criteria['min_leg_recall'])
    if 'min_person_recall' in criteria:
        low('min_person_recall', ((scan or {}).get('persons') or {}).get('recall'), criteria['min_person_recall'])
    for sensor, s in (('camera', cam), ('lidar', lidar), ('fusion', fusion), ('scan', scan)):
        if not s:
            continue
        if 'max_latency_p99_ms' in criteria:
            p99 = (s.get('latency_ms') or {}).get('p99')
            if p99 is None or p99 > criteria['max_latency_p99_ms']:
                failed.append(f'max_latency_p99_ms ({sensor}): {p99} > {criteria["max_latency_p99_ms"]}')
        if 'max_drop_rate' in criteria:
            rate = s.get('drop_rate')
            if rate is None or rate > criteria['max_drop_rate']:
                failed.append(f'max_drop_rate ({sensor}): {rate} > {criteria["max_drop_rate"]}')
    return failed


def _flatten(d, prefix=''):
    out = {}
    if isinstance(d, dict):
        for k, v in d.items():
            if k in ('pr_curves', 'histogram', 'confusion'):
                continue
            out.update(_flatten(v, f'{prefix}.{k}' if prefix else str(k)))
    elif isinstance(d, (int, float)) and not isinstance(d, bool):
        out[prefix] = float(d)
    return out


def differences(baseline: Dict[str, object], current: Dict[str, object]) -> List[str]:
    """One line per numeric figure that changed: name, baseline -> current (difference)."""
    lines = []
    for sensor in sorted(set(baseline) | set(current)):
        if (sensor in baseline) != (sensor in current):
            lines.append(f'{sensor}: only in the {"baseline" if sensor in baseline else "this run"}')
    shared = set(baseline) & set(current)
    old = _flatten({k: v for k, v in baseline.items() if k in shared})
    new = _flatten({k: v for k, v in current.items() if k in shared})
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if a is None or b is None:
            lines.append(f'{key}: {a} -> {b}')
        else:
            lines.append(f'{key}: {a:.4g} -> {b:.4g} ({b - a:+.4g})')
    return lines
