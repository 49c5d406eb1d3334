"""What the lidar_detector and scan_detector parameter tables share: the core's parameters (one
definition, in :mod:`aiat_perception.lidar.detector` / :mod:`aiat_perception.lidar.scan`) as node
parameters, and the node's own input, output and health parameters."""
from __future__ import annotations

import math
from typing import Dict, List, Sequence, Tuple

from aiat_perception.parameters import INT64_MAX, Param

POSITIVE = (0.0, math.inf)
THRESHOLD_KEYS = ('processing_budget_ms', 'pipeline_budget_ms', 'error_after_violations',
                  'stale_input_s', 'no_input_warn_s', 'lost_warn_fraction')
LOST_SOURCES = ('auto', 'publication_sequence', 'message_lost_event', 'none')


def core_params(core_table) -> List[Param]:
    """One dynamic :class:`Param` per entry of a core table ``name -> (default, description, bounds)``:
    numbers get the bounds as their range (so rclpy refuses values outside), strings as their choices."""
    out = []
    for name, (default, description, bounds) in core_table.items():
        if isinstance(default, bool) or bounds is None:
            out.append(Param(name, default, description + ' (dynamic)', dynamic=True))
        elif isinstance(default, str):
            out.append(Param(name, default, description + ' (dynamic)', choices=tuple(bounds), dynamic=True))
        elif isinstance(default, int):
            out.append(Param(name, default, description + ' (dynamic)', range=(int(bounds[0]), int(bounds[1])),
                             dynamic=True))
        else:
            out.append(Param(name, float(default), description + ' (dynamic)',
                             range=(float(bounds[0]), float(bounds[1])), dynamic=True))
    return out


def node_params(input_name: str, max_input: int, processing_budget_ms: float,
                pipeline_budget_ms: float) -> List[Param]:
    """Input QoS, output frame, markers, input size cap and the health thresholds (as camera_detector)."""
    return [
        Param('reliability', 'best_effort', f'QoS reliability of the {input_name} subscription (sensor data, '
              'depth 1)', choices=('best_effort', 'reliable')),
        Param('target_frame', '', 'publish detections in this frame when its static transform (/tf_static) '
              'from the sensor frame is known; empty = the sensor frame'),
        Param('publish_markers', True, 'publish ~/markers (visualization_msgs/MarkerArray) while it has '
              'subscribers (dynamic)', dynamic=True),
        Param('max_input_size', max_input, f'a {input_name} with more points/beams than this is malformed '
              '(counted, skipped)', range=(1, INT64_MAX)),
        Param('processing_budget_ms', processing_budget_ms, 'WARN when p95 processing time exceeds it (dynamic)',
              range=POSITIVE, open_low=True, dynamic=True),
        Param('pipeline_budget_ms', pipeline_budget_ms, 'WARN when p95 stamp-to-publish latency exceeds it '
              '(dynamic)', range=POSITIVE, open_low=True, dynamic=True),
        Param('error_after_violations', 10, 'ERROR after this many consecutive over-budget frames (dynamic)',
              range=(1, INT64_MAX), dynamic=True),
        Param('stale_input_s', 2.0, 'ERROR when no input arrived for this long (dynamic)',
              range=POSITIVE, open_low=True, dynamic=True),
        Param('no_input_warn_s', 5.0, 'WARN when no input arrived since start for this long (dynamic)',
              range=POSITIVE, open_low=True, dynamic=True),
        Param('problem_window_s', 10.0, 'malformed, failed and lost frames make the level WARN for this long',
              range=POSITIVE, open_low=True),
        Param('lost_warn_fraction', 0.01, "WARN when more than this share of the window's frames was lost "
              '(dynamic)', range=(0.0, 1.0), dynamic=True),
        Param('lost_source', 'auto', 'how lost frames are counted: auto, publication_sequence, '
              'message_lost_event or none', choices=LOST_SOURCES),
        Param('diagnostics_period_s', 1.0, 'period of /diagnostics', range=POSITIVE, open_low=True),
        Param('stats_window', 100, 'frames in the latency percentile window', range=(1, INT64_MAX)),
    ]


def ordered(p: Dict[str, object], pairs: Sequence[Tuple[str, str]], strict: bool = False) -> List[str]:
    """``low: must be <= high`` (or ``<``) for each (low, high) pair of parameter names."""
    problems = []
    for low, high in pairs:
        if p[low] > p[high] or (strict and p[low] == p[high]):
            problems.append(f'{low}: must be {"<" if strict else "<="} {high} ({p[low]} vs {p[high]})')
    return problems


def core_values(p: Dict[str, object], core_table) -> Dict[str, object]:
    """The core's parameters out of a node's parameter values."""
    return {name: p[name] for name in core_table}
