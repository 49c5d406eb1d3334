"""Parameters of the camera_detector node (documented in config/camera_detector.yaml)."""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence

from aiat_perception.parameters import INT64_MAX, Param, ParameterTable, non_empty
from aiat_perception.pipeline_health import HealthThresholds

THRESHOLD_KEYS = ('processing_budget_ms', 'pipeline_budget_ms', 'error_after_violations',
                  'stale_input_s', 'no_input_warn_s', 'lost_warn_fraction')
POSITIVE = (0.0, math.inf)
HEALTH = HealthThresholds()     # the health defaults are defined once, in pipeline_health


def _health(key: str, description: str, range=POSITIVE, open_low: bool = True) -> Param:
    return Param(key, getattr(HEALTH, key), description, range=range, open_low=open_low, dynamic=True)


TABLE = ParameterTable('camera_detector', [
    Param('bundle_path', '', 'model bundle directory; empty = pretrained COCO bundle in the cache'),
    Param('backend', 'onnxruntime', 'inference backend: onnxruntime or torch',
          choices=('onnxruntime', 'torch')),
    Param('num_threads', 0, 'inference threads (0 = backend default)', range=(0, INT64_MAX)),
    Param('ort_allow_spinning', True,
          'onnxruntime threads spin briefly after each run (lower latency, more CPU)'),
    Param('compressed', False, 'subscribe to image/compressed (CompressedImage) instead of image'),
    Param('reliability', 'best_effort', 'input QoS reliability: best_effort or reliable',
          choices=('best_effort', 'reliable')),
    Param('score_threshold', -1.0, 'minimum score; < 0 = the bundle default (dynamic)',
          range=(-math.inf, 1.0), dynamic=True),
    Param('nms_iou_threshold', -1.0, 'NMS IoU threshold; < 0 = the bundle default (dynamic)',
          range=(-math.inf, 1.0), dynamic=True),
    Param('max_detections', -1, 'detections per image; < 0 = the bundle default (dynamic)', dynamic=True),
    Param('class_filter', [''], 'publish only these class names; empty = all (dynamic)', dynamic=True),
    Param('debug_image', True, 'publish detections/image while it has subscribers (dynamic)', dynamic=True),
    _health('processing_budget_ms', 'WARN when p95 processing time exceeds it (dynamic)'),
    _health('pipeline_budget_ms', 'WARN when p95 stamp-to-publish latency exceeds it (dynamic)'),
    _health('error_after_violations', 'ERROR after this many consecutive over-budget frames (dynamic)',
            range=(1, INT64_MAX), open_low=False),
    _health('stale_input_s', 'ERROR when no frame arrived for this long (dynamic)'),
    _health('no_input_warn_s', 'WARN when no frame arrived since start for this long (dynamic)'),
    Param('diagnostics_period_s', 1.0, 'period of /diagnostics', range=POSITIVE, open_low=True),
    Param('stats_window', 100, 'frames in the latency percentile window', range=(1, INT64_MAX)),
    Param('problem_window_s', 10.0, 'malformed, failed and lost frames make the level WARN for this long',
          range=POSITIVE, open_low=True),
    _health('lost_warn_fraction', "WARN when more than this share of the window's frames was lost (dynamic)",
            range=(0.0, 1.0), open_low=False),
    Param('lost_source', 'auto', 'how lost frames are counted: auto, publication_sequence, '
          'message_lost_event or none',
          choices=('auto', 'publication_sequence', 'message_lost_event', 'none')),
    Param('max_decoded_pixels', 0, 'largest input image in pixels (width x height); 0 = automatic: '
          '4x the first valid frame, at most DEFAULT_MAX_PIXELS', range=(0, INT64_MAX)),
    Param('resize', '', "how frames reach the network input: stretch, letterbox, keep_aspect "
          "(flexible bundles: an input per camera resolution keeping the aspect ratio); '' = the bundle's",
          choices=('', 'stretch', 'letterbox', 'keep_aspect')),
    Param('pixel_budget', 0, 'keep_aspect: most network input pixels; 0 = the bundle trained size '
          '(416x416 = 173056 for the pretrained bundle), at most MAX_INPUT_PIXELS', range=(0, INT64_MAX)),
    Param('tiling', False, 'also run overlapping tiles of each frame and merge them with the full '
          'frame by NMS: finds farther, smaller objects at about 3-4x the inference cost'),
    Param('tile_overlap', 0.2, 'tiling: share of a tile overlapping its neighbour', range=(0.0, 0.9)),
])


def validate(values: Dict[str, object], classes: Optional[Sequence[str]] = None) -> List[str]:
    """Problems with a set of parameter values (names included); empty when all are valid.
    With the bundle's ``classes``, also checks ``class_filter`` against them."""
    problems = TABLE.problems(values)
    if classes is not None and 'class_filter' in values and not problems:
        unknown = [c for c in non_empty(values['class_filter']) if c not in classes]
        if unknown:
            problems.append(f'class_filter: unknown class(es) {unknown}; the bundle has '
                            f'{len(classes)} classes, e.g. {list(classes)[:8]}')
    return problems
