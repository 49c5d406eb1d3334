"""Parameters of the fusion node (documented in config/fusion.yaml): input pairing, the extrinsic,
the fusion core's settings (:class:`aiat_perception.fusion.config.FusionConfig`, every one dynamic),
the camera-lidar agreement alarm and the node's health thresholds."""
from __future__ import annotations

import math
from typing import Dict, List, Sequence

from aiat_perception.class_names import parse_class_values
from aiat_perception.fusion.agreement import AgreementThresholds
from aiat_perception.fusion.config import FusionConfig
from aiat_perception.node_params.lidar_common import node_params
from aiat_perception.parameters import INT64_MAX, Param, ParameterTable

UNIT = (0.0, 1.0)
# a 128-ring lidar gives about 260k points a turn; 4 million float32 x/y/z is 48 MB
MAX_POINTS = 4_000_000
EXTRINSIC_SOURCES = ('tf_static', 'parameters')
RECTIFIED = ('auto', 'true', 'false')
_CORE = FusionConfig()
_AGREE = AgreementThresholds()

# The fusion core's settings as node parameters (defaults: FusionConfig's); fusion_settings() turns
# them into FusionConfig's keyword arguments.
FUSION_PARAMS = [
    Param('min_points', _CORE.min_points, 'fewer lidar points inside a 2D box: no position for it (dynamic)',
          range=(1, 1_000_000), dynamic=True),
    Param('box_shrink', _CORE.box_shrink, 'use the central box_shrink x box_shrink part of each 2D box: its '
          'corners hold background (dynamic)', range=UNIT, open_low=True, dynamic=True),
    Param('depth_gap', _CORE.depth_gap, 'a gap this large in range (m) splits the points of a box into depth '
          'clusters; the dominant cluster is the object (dynamic)', range=(0.0, 100.0), open_low=True,
          dynamic=True),
    Param('min_range', _CORE.min_range, 'ignore points nearer to the camera than this (m) (dynamic)',
          range=(0.0, 1000.0), dynamic=True),
    Param('max_range', _CORE.max_range, 'ignore points farther from the camera than this (m) (dynamic)',
          range=(0.0, 10_000.0), open_low=True, dynamic=True),
    Param('association_iou', _CORE.association_iou, 'a lidar detection projected into the image belongs to '
          'the camera box it overlaps at least this much (IoU) (dynamic)', range=UNIT, open_low=True,
          dynamic=True),
    Param('use_lidar_center', _CORE.use_lidar_center, 'take the centre of an associated lidar detection; '
          'false: the visible surface plus half the class depth (dynamic)', dynamic=True),
    Param('range_noise', _CORE.range_noise, 'range noise of the lidar (m, 1 sigma), added to the position '
          'covariance (dynamic)', range=(0.0, 100.0), dynamic=True),
    Param('class_depth', [f'{k}:{v:g}' for k, v in _CORE.class_depth.items()],
          "object depth along the line of sight per camera class, 'class:metres': the centre lies half of it "
          'behind the visible surface (dynamic)', dynamic=True),
    Param('default_depth', _CORE.default_depth, 'object depth (m) of classes not in class_depth (dynamic)',
          range=(0.0, 100.0), dynamic=True),
    Param('miss_classes', list(_CORE.miss_classes), 'lidar detection classes a camera should see: only these '
          'count as missed by the camera (dynamic)', dynamic=True),
    Param('confirm_classes', list(_CORE.confirm_classes), 'camera classes the lidar should confirm: only these '
          "count in the confirm rate (a traffic light is nothing a lidar detector reports); [''] = every class "
          '(dynamic)', dynamic=True),
    Param('confirm_max_distance', _CORE.confirm_max_distance, 'camera detections fused farther than this (m) do '
          "not count in the confirm rate: set it to the lidar detector's reach when the camera sees much farther "
          '(dynamic)', range=(0.0, 10_000.0), open_low=True, dynamic=True),
]
FUSION_KEYS = tuple(p.name for p in FUSION_PARAMS)

# The agreement alarm (defaults: AgreementThresholds'); agreement_thresholds() builds it.
AGREEMENT_PARAMS = [
    Param('agreement_window', 50, 'fused frames over which the agreement figures are pooled',
          range=(1, INT64_MAX)),
    Param('agreement_min_detections', _AGREE.min_detections, 'judge the confirm and miss rates only with at '
          'least this many camera detections (lidar detections in view) in the window (dynamic)',
          range=(1, INT64_MAX), dynamic=True),
    Param('agreement_min_pairs', _AGREE.min_pairs, 'judge the mean IoU only with at least this many associated '
          'camera-lidar pairs in the window (dynamic)', range=(1, INT64_MAX), dynamic=True),
    Param('warn_mean_iou', _AGREE.warn_mean_iou, 'WARN when the windowed mean IoU of camera boxes and their '
          'projected lidar boxes is below it (dynamic)', range=UNIT, dynamic=True),
    Param('error_mean_iou', _AGREE.error_mean_iou, 'ERROR when it is below this (dynamic)', range=UNIT,
          dynamic=True),
    Param('warn_confirm_rate', _AGREE.warn_confirm_rate, 'WARN when the windowed share of camera detections a '
          'lidar detection confirms is below it (dynamic)', range=UNIT, dynamic=True),
    Param('error_confirm_rate', _AGREE.error_confirm_rate, 'ERROR when it is below this (dynamic)', range=UNIT,
          dynamic=True),
    Param('warn_miss_rate', _AGREE.warn_miss_rate, 'WARN when the windowed share of lidar detections (of '
          'miss_classes) in the image that no camera box matches is above it (dynamic)', range=UNIT,
          dynamic=True),
    Param('error_miss_rate', _AGREE.error_miss_rate, 'ERROR when it is above this (dynamic)', range=UNIT,
          dynamic=True),
]
AGREEMENT_KEYS = ('warn_mean_iou', 'error_mean_iou', 'warn_confirm_rate', 'error_confirm_rate',
                  'warn_miss_rate', 'error_miss_rate')


def parse_class_depth(items: Sequence[str]) -> Dict[str, float]:
    """``['class:metres' | 'class=metres', ...]`` (blanks ignored) -> ``{class: metres}``, each in [0, 100]."""
    return parse_class_values(items, 'class_depth', 'metres', 0.0, 100.0)


def fusion_settings(p: Dict[str, object]) -> Dict[str, object]:
    """The node's parameter values -> keyword arguments of FusionConfig."""
    values = {k: p[k] for k in FUSION_KEYS}
    values['class_depth'] = parse_class_depth(p['class_depth'])
    values['miss_classes'] = tuple(c for c in p['miss_classes'] if c)
    values['confirm_classes'] = tuple(c for c in p['confirm_classes'] if c)
    return values


def agreement_thresholds(p: Dict[str, object]) -> AgreementThresholds:
    return AgreementThresholds(**{k: p[k] for k in AGREEMENT_KEYS}, min_detections=p['agreement_min_detections'],
                               min_pairs=p['agreement_min_pairs'])


def extrinsic_problem(values: Sequence[float]) -> str:
    """Why a ``camera_from_lidar`` value (x y z qx qy qz qw) is unusable, or ''."""
    if len(values) != 7:
        return f'camera_from_lidar: needs 7 numbers (x y z qx qy qz qw), got {len(values)}'
    if not all(math.isfinite(v) for v in values):
        return f'camera_from_lidar: contains NaN or infinite values: {list(values)}'
    if not all(abs(v) <= 1000.0 for v in values[:3]):
        return f'camera_from_lidar: translation over 1000 m: {list(values[:3])}'
    if math.sqrt(sum(v * v for v in values[3:])) < 1e-6:
        return 'camera_from_lidar: the quaternion is zero'
    return ''


def _check(p: Dict[str, object]) -> List[str]:
    problems = []
    if p['max_range'] <= p['min_range']:
        problems.append(f'min_range: must be < max_range ({p["min_range"]} vs {p["max_range"]})')
    try:
        parse_class_depth(p['class_depth'])
    except ValueError as exc:
        problems.append(str(exc))
    problem = extrinsic_problem(p['camera_from_lidar'])
    if problem:
        problems.append(problem)
    for metric, low_is_bad in (('mean_iou', True), ('confirm_rate', True), ('miss_rate', False)):
        warn, error = p[f'warn_{metric}'], p[f'error_{metric}']
        if (error > warn) if low_is_bad else (error < warn):
            problems.append(f'error_{metric}: must be {"<=" if low_is_bad else ">="} warn_{metric} '
                            f'({error} vs {warn})')
    return problems


_NODE = {p.name: p for p in node_params('PointCloud2', MAX_POINTS, processing_budget_ms=80.0,
                                        pipeline_budget_ms=250.0)}

TABLE = ParameterTable('fusion', [
    # inputs
    Param('reliability', 'best_effort', 'QoS reliability of the points subscription (sensor data, depth 1)',
          choices=('best_effort', 'reliable')),
    Param('detections_reliability', 'reliable', 'QoS reliability of the detections (and lidar_detections) '
          'subscriptions (depth 10)', choices=('best_effort', 'reliable')),
    Param('use_lidar_detections', False, 'also pair each frame with the lidar detector\'s Detection3DArray '
          '(lidar_detections) and take associated objects\' geometry from it'),
    Param('time_offset_s', 0.0, 'camera stamp minus lidar stamp of the same instant (s): added to the lidar '
          'stamps before pairing (dynamic)', range=(-10.0, 10.0), dynamic=True),
    Param('pair_tolerance_s', 0.05, 'a camera frame pairs with the cloud nearest in stamp within this (s); '
          'keep it below half the slower sensor\'s period (dynamic)', range=(0.0, 10.0), dynamic=True),
    Param('pair_timeout_s', 1.0, 'drop unpaired messages this much older than the newest stamp (s)',
          range=(0.0, 60.0), open_low=True),
    Param('image_rectified', 'auto', 'the detections\' pixels are of a rectified image (project with '
          'CameraInfo P and R) or raw (K and the distortion D); auto: rectified when D is all zero',
          choices=RECTIFIED),
    # extrinsic and output frame
    Param('extrinsic_source', 'tf_static', 'where the camera-lidar transform comes from: /tf_static (the '
          'camera frame = the CameraInfo\'s frame_id, the lidar frame = the cloud\'s) or camera_from_lidar',
          choices=EXTRINSIC_SOURCES),
    Param('camera_from_lidar', [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0], 'with extrinsic_source: parameters, the '
          'lidar\'s pose in the camera frame: x y z (m) qx qy qz qw (maps lidar points into the camera frame) '
          '(dynamic)', dynamic=True),
    Param('target_frame', '', 'publish in this frame when its static transform (/tf_static) from the camera '
          'frame is known; empty = the camera frame'),
    _NODE['publish_markers'],
    _NODE['max_input_size'],
    # the fusion core
    *FUSION_PARAMS,
    # camera-lidar agreement
    *AGREEMENT_PARAMS,
    # health
    *(_NODE[name] for name in ('processing_budget_ms', 'pipeline_budget_ms', 'error_after_violations',
                               'stale_input_s', 'no_input_warn_s', 'problem_window_s', 'diagnostics_period_s',
                               'stats_window')),
], check=_check)
