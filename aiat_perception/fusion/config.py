"""Settings of camera-lidar fusion, validated (a bad value names the field and the problem)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Dict, Tuple

# Typical depth of an object along the line of sight (metres): the visible surface is this much
# nearer than the centre x 2. Half of (length + width) of the usual sizes (a car 4.0 x 1.7 m is
# seen from any side: between 1.7 and 4.0 m deep); a person about 0.5 m.
DEFAULT_CLASS_DEPTH: Dict[str, float] = {
    'person': 0.5, 'pedestrian': 0.5, 'bicycle': 1.2, 'cyclist': 1.2, 'motorcycle': 1.4,
    'car': 2.8, 'truck': 5.0, 'bus': 7.0, 'train': 8.0,
}


class FusionConfigError(ValueError):
    pass


@dataclass
class FusionConfig:
    min_points: int = 5                  # fewer supporting points: the box is "unsupported"
    box_shrink: float = 0.6              # use the central box_shrink x box_shrink part of each 2D box
    depth_gap: float = 1.0               # metres: a gap this large in range splits depth clusters
    min_range: float = 0.5               # metres from the camera: nearer points are ignored
    max_range: float = 120.0             # metres from the camera: farther points are ignored
    association_iou: float = 0.3         # projected lidar box vs camera box IoU to associate
    use_lidar_center: bool = True        # an associated lidar box gives the centre (else surface + depth/2)
    range_noise: float = 0.05            # metres (1 sigma): added to the covariance's diagonal
    class_depth: Dict[str, float] = field(default_factory=lambda: dict(DEFAULT_CLASS_DEPTH))
    default_depth: float = 0.5           # metres: object depth of classes not in class_depth
    # lidar classes the camera should see: only these count as "missed" when no camera box matches
    # (walls, poles and trees are lidar clusters of no class a camera detector reports)
    miss_classes: Tuple[str, ...] = ('car', 'pedestrian', 'cyclist', 'person')
    # camera classes the lidar should confirm: only these count in the confirm rate (a traffic light
    # or a sign is nothing the lidar detector reports); empty: every class
    confirm_classes: Tuple[str, ...] = ('person', 'bicycle', 'car', 'motorcycle', 'bus', 'truck')
    # metres: camera detections fused farther than this do not count in the confirm rate. Default:
    # no limit in practice; set it to the lidar detector's reach when the camera sees much farther
    # (a 16-ring lidar). Not lower than needed: under a wrong calibration a box's points may be
    # background farther away, and the box would drop out of the count instead of counting as
    # unconfirmed.
    confirm_max_distance: float = 200.0

    def __post_init__(self):
        def number(name, low, high, integer=False, low_open=False):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise FusionConfigError(f'fusion config {name}: must be a number, got {value!r}')
            if not math.isfinite(value):
                raise FusionConfigError(f'fusion config {name}: must be finite, got {value!r}')
            if integer and not float(value).is_integer():
                raise FusionConfigError(f'fusion config {name}: must be a whole number, got {value!r}')
            if value < low or value > high or (low_open and value == low):
                raise FusionConfigError(f'fusion config {name}: must be in {"(" if low_open else "["}{low}, '
                                        f'{high}], got {value!r}')
            setattr(self, name, int(value) if integer else float(value))

        number('min_points', 1, 1_000_000, integer=True)
        number('box_shrink', 0.0, 1.0, low_open=True)
        number('depth_gap', 0.0, 100.0, low_open=True)
        number('min_range', 0.0, 1000.0)
        number('max_range', 0.0, 10_000.0, low_open=True)
        number('association_iou', 0.0, 1.0, low_open=True)
        number('range_noise', 0.0, 100.0)
        number('default_depth', 0.0, 100.0)
        number('confirm_max_distance', 0.0, 10_000.0, low_open=True)
        if self.max_range <= self.min_range:
            raise FusionConfigError(f'fusion config max_range ({self.max_range}) must exceed min_range '
                                    f'({self.min_range})')
        if not isinstance(self.use_lidar_center, bool):
            raise FusionConfigError(f'fusion config use_lidar_center: must be true or false, got '
                                    f'{self.use_lidar_center!r}')
        if not isinstance(self.class_depth, dict):
            raise FusionConfigError(f'fusion config class_depth: must be a mapping class -> metres, got '
                                    f'{type(self.class_depth).__name__}')
        for name, depth in self.class_depth.items():
            if isinstance(depth, bool) or not isinstance(depth, (int, float)) or not 0.0 <= depth <= 100.0:
                raise FusionConfigError(f'fusion config class_depth[{name!r}]: must be a number of metres in '
                                        f'[0, 100], got {depth!r}')
        self.class_depth = {str(k): float(v) for k, v in self.class_depth.items()}
        for name in ('miss_classes', 'confirm_classes'):
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(c, str) for c in value):
                raise FusionConfigError(f'fusion config {name}: must be a list of class names, got {value!r}')
            setattr(self, name, tuple(value))

    def depth_of(self, class_name: str) -> float:
        return self.class_depth.get(class_name, self.default_depth)

    @classmethod
    def from_dict(cls, values: Dict[str, object], source: str = 'fusion config') -> 'FusionConfig':
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise FusionConfigError(f'{source}: unknown setting(s) {", ".join(unknown)}; known: '
                                    f'{", ".join(sorted(known))}')
        try:
            return cls(**values)
        except FusionConfigError as exc:
            raise FusionConfigError(f'{source}: {exc}') from exc
