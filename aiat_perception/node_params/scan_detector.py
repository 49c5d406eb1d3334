"""Parameters of the scan_detector node (documented in config/scan_detector.yaml): the 2D core's
table (:data:`aiat_perception.lidar.scan.SCAN_PARAMETERS`, every entry dynamic) plus the node's own."""
from __future__ import annotations

from typing import Dict, List

from aiat_perception.lidar.scan import SCAN_PARAMETERS as CORE
from aiat_perception.node_params.lidar_common import core_params, node_params, ordered
from aiat_perception.parameters import ParameterTable

# scanners give 270-4000 beams a turn
MAX_BEAMS = 100_000


def _check(p: Dict[str, object]) -> List[str]:
    return ordered(p, [('range_min', 'range_max')], strict=True) + \
        ordered(p, [('leg_min_width', 'leg_max_width'), ('two_leg_min_width', 'two_leg_max_width'),
                    ('min_points', 'max_points')])


TABLE = ParameterTable('scan_detector', [
    *core_params(CORE),
    *node_params('LaserScan', MAX_BEAMS, processing_budget_ms=10.0, pipeline_budget_ms=50.0),
], check=_check)
