"""Parameters of the iou_monitor node (documented in config/iou_monitor.yaml), and its alarm levels."""
from __future__ import annotations

import math
from typing import Dict, List

from aiat_perception.class_names import parse_aliases, parse_class_values  # noqa: F401 (the node and tests use it from here)
from aiat_perception.parameters import INT64_MAX, Param, ParameterTable

METRICS = ('recall', 'mean_iou', 'precision')
UNIT = (0.0, 1.0)


def parse_class_thresholds(items) -> Dict[str, float]:
    """``['class:iou' | 'class=iou', ...]`` (blanks ignored) -> ``{class: iou}``, each IoU in (0, 1]."""
    return parse_class_values(items, 'class_iou_thresholds', 'iou', 0.0, 1.0, include_low=False)


def thresholds(p) -> Dict[str, float]:
    return {f'{level}_{key}': p[f'{level}_{key}'] for level in ('warn', 'error') for key in METRICS}


def level_for(window: Dict[str, float], thresholds: Dict[str, float]) -> int:
    """0 OK, 1 WARN, 2 ERROR from the windowed recall, mean IoU and precision."""
    level = 0
    for key in METRICS:
        value = window[key]
        if math.isnan(value):
            value = 0.0 if window['tp'] == 0 and window['fn'] > 0 else 1.0
        if value < thresholds[f'error_{key}']:
            level = 2
        elif value < thresholds[f'warn_{key}']:
            level = max(level, 1)
    return level


def _check(p) -> List[str]:
    problems = [f'error_{key}: must be <= warn_{key} ({p[f"error_{key}"]} > {p[f"warn_{key}"]})'
                for key in METRICS if p[f'error_{key}'] > p[f'warn_{key}']]
    for parse, key in ((parse_aliases, 'class_aliases'), (parse_class_thresholds, 'class_iou_thresholds')):
        try:
            parse(p[key])
        except ValueError as exc:
            problems.append(str(exc))
    return problems


TABLE = ParameterTable('iou_monitor', [
    Param('detections_type', '2d', '2d: Detection2DArray, image IoU; 3d: Detection3DArray (lidar), '
          "bird's-eye-view rotated IoU", choices=('2d', '3d')),
    Param('detections_topic', 'detections', 'detector output (Detection2DArray, or Detection3DArray with 3d)'),
    Param('ground_truth_topic', 'ground_truth/detections_2d', 'simulator ground truth (Detection2DArray)'),
    Param('ground_truth_3d_topic', 'ground_truth/detections_3d', '3d: simulator ground truth (Detection3DArray, '
          'in the frame of the detections: run the detector with target_frame = the ground truth frame)'),
    Param('max_range_m', 0.0, '3d: ignore ground truth and detections farther than this from the frame origin '
          '(m, in the ground plane); 0 = no limit', range=(0.0, math.inf)),
    Param('reliability', 'reliable', 'QoS reliability of the detections subscription',
          choices=('best_effort', 'reliable')),
    Param('iou_threshold', 0.5, 'IoU for a detection to match a ground-truth box (dynamic)',
          range=UNIT, open_low=True, dynamic=True),
    Param('class_iou_thresholds', [''], "per ground-truth class IoU thresholds 'class:iou' replacing "
          "iou_threshold for that class (e.g. 'pedestrian:0.3')"),
    Param('class_agnostic', False, 'match regardless of class'),
    Param('classes', [''], 'evaluate only these ground-truth classes; empty = all'),
    Param('class_aliases', [''], "class renames 'from:to' or 'from=to' applied to both sides"),
    Param('min_score', 0.0, 'ignore detections scoring below this (dynamic)', range=UNIT, dynamic=True),
    Param('window', 100, 'paired frames in the running averages', range=(1, INT64_MAX)),
    Param('pair_timeout_s', 5.0, 'drop unpaired messages this much older than the slower stream\'s newest stamp',
          range=(0.0, math.inf)),
    Param('log_every', 0, 'log a summary every N paired frames; 0 = never (dynamic)',
          range=(0, INT64_MAX), dynamic=True),
    *(Param(f'{level}_{key}', default, f'{level.upper()} when the windowed {key} is below it (dynamic)',
            range=UNIT, dynamic=True)
      for level, key, default in (('warn', 'recall', 0.5), ('error', 'recall', 0.2),
                                  ('warn', 'mean_iou', 0.5), ('error', 'mean_iou', 0.3),
                                  ('warn', 'precision', 0.5), ('error', 'precision', 0.2))),
], check=_check)
