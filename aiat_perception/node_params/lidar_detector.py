"""Parameters of the lidar_detector node (documented in config/lidar_detector.yaml): the 3D core's
table (:data:`aiat_perception.lidar.detector.PARAMETERS`, every entry dynamic) plus the node's own."""
from __future__ import annotations

from typing import Dict, List

from aiat_perception.lidar.detector import PARAMETERS as CORE
from aiat_perception.node_params.lidar_common import core_params, node_params, ordered
from aiat_perception.parameters import ParameterTable

# a 128-ring lidar gives about 260k points a turn; 4 million float32 x/y/z is 48 MB
MAX_POINTS = 4_000_000


def _check(p: Dict[str, object]) -> List[str]:
    return ordered(p, [('range_min', 'range_max'), ('z_min', 'z_max')], strict=True) + \
        ordered(p, [('cluster_min_points', 'cluster_max_points')])


TABLE = ParameterTable('lidar_detector', [
    *core_params(CORE),
    *node_params('PointCloud2', MAX_POINTS, processing_budget_ms=80.0, pipeline_budget_ms=150.0),
], check=_check)
