"""What the lidar detectors return."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np


@dataclass
class Detection3D:
    class_name: str                          # car | pedestrian | cyclist | unknown | leg | person | other
    score: float
    center: Tuple[float, float, float]       # box centre in the sensor frame (metres)
    size: Tuple[float, float, float]         # length (along yaw), width, height
    yaw: float                               # heading about +z (radians; boxes are symmetric, so mod pi)
    n_points: int
    shape: str = 'box'                       # box | cylinder

    def to_dict(self, frame_id: str = '') -> Dict[str, object]:
        out = {'class': self.class_name, 'score': round(float(self.score), 4),
               'center': [round(float(v), 3) for v in self.center],
               'size': [round(float(v), 3) for v in self.size],
               'yaw': round(float(self.yaw), 4), 'n_points': int(self.n_points), 'shape': self.shape}
        if frame_id:
            out['frame_id'] = frame_id
        return out

    def corners_bev(self) -> np.ndarray:
        """4x2 footprint corners (counter-clockwise)."""
        return box_corners_bev(np.array([[self.center[0], self.center[1], self.size[0], self.size[1], self.yaw]]))[0]


@dataclass
class DetectionResult:
    detections: List[Detection3D]
    stage_ms: Dict[str, float]               # per-stage wall time, milliseconds
    counts: Dict[str, int] = field(default_factory=dict)   # points in/kept/ground, clusters, ...

    @property
    def total_ms(self) -> float:
        return float(sum(self.stage_ms.values()))


def box_corners_bev(boxes: np.ndarray) -> np.ndarray:
    """Kx4x2 counter-clockwise corners of K BEV boxes given as (x, y, length, width, yaw)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
    c, s = np.cos(boxes[:, 4]), np.sin(boxes[:, 4])
    hl, hw = boxes[:, 2] / 2.0, boxes[:, 3] / 2.0
    local = np.stack([np.stack([hl, hw], 1), np.stack([-hl, hw], 1),
                      np.stack([-hl, -hw], 1), np.stack([hl, -hw], 1)], axis=1)      # K,4,2
    rot = np.stack([np.stack([c, -s], 1), np.stack([s, c], 1)], axis=1)              # K,2,2
    return np.einsum('kij,kpj->kpi', rot, local) + boxes[:, None, :2]
