"""Parameters of the camera_detector node (documented in config/camera_detector.yaml), and the
ROS-free decisions they drive: which backend, device and provider options a set of values gives on a
machine (:func:`inference_plan`), and why a requested device or backend cannot run there."""
from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from aiat_perception.parameters import INT64_MAX, Param, ParameterError, ParameterTable, non_empty
from aiat_perception.pipeline_health import HealthThresholds

THRESHOLD_KEYS = ('processing_budget_ms', 'pipeline_budget_ms', 'error_after_violations',
                  'stale_input_s', 'no_input_warn_s', 'lost_warn_fraction')
POSITIVE = (0.0, math.inf)
DEVICES = ('auto', 'cpu', 'cuda', 'tensorrt')
GPU_LOAD_SOURCES = ('auto', 'nvml', 'tegrastats', 'jtop', 'none')
ORT_PROVIDER = {'cuda': 'CUDAExecutionProvider', 'tensorrt': 'TensorrtExecutionProvider'}
ORT_EP_OPTIONS = ('trt_fp16', 'trt_cache_dir', 'trt_timing_cache')
ENGINE_OPTIONS = ('engine_path', 'engine_precision', 'engine_cache_dir', 'build_engine_if_missing',
                  'engine_max_size')
ORT_GPU_HINT = ('install onnxruntime-gpu (x86_64: pip install "onnxruntime-gpu[cuda,cudnn]"; Jetson: '
                "NVIDIA's wheel for your JetPack, see docs/jetson.md) in place of onnxruntime")

HEALTH = HealthThresholds()     # the health defaults are defined once, in pipeline_health


def _health(key: str, description: str, range=POSITIVE, open_low: bool = True) -> Param:
    return Param(key, getattr(HEALTH, key), description, range=range, open_low=open_low, dynamic=True)


TABLE = ParameterTable('camera_detector', [
    Param('bundle_path', '', 'model bundle directory; empty = pretrained COCO bundle in the cache'),
    Param('backend', 'onnxruntime', 'inference backend: onnxruntime, tensorrt (a serialized TensorRT '
          'engine) or torch', choices=('onnxruntime', 'tensorrt', 'torch')),
    Param('device', 'auto', 'where inference runs: auto (the best this machine has), cpu, cuda or tensorrt',
          choices=DEVICES),
    Param('device_id', 0, 'GPU index (CUDA device ordinal); also the GPU whose load is reported',
          range=(0, 1023)),
    Param('trt_fp16', False, 'onnxruntime TensorRT execution provider: allow FP16 kernels'),
    Param('trt_cache_dir', '', 'onnxruntime TensorRT execution provider: engine cache directory; '
          'empty = <engine cache>/onnxruntime-trt/<bundle>-<sha>-ort<version>'),
    Param('trt_timing_cache', True, 'onnxruntime TensorRT execution provider: keep the timing cache '
          'in trt_cache_dir (faster rebuilds)'),
    Param('trt_workspace_mb', 0, 'TensorRT builder workspace limit in MiB (execution provider or '
          'engine build); 0 = TensorRT default', range=(0, 1 << 20)),
    Param('engine_path', '', 'backend tensorrt: serialized engine file (metadata next to it); empty = '
          'the engine cache'),
    Param('engine_precision', 'fp16', 'backend tensorrt: precision of the cached engine: fp32, fp16 or '
          'int8 (int8 needs engine_path: build it with aiat-engine --calibration)',
          choices=('fp32', 'fp16', 'int8')),
    Param('engine_cache_dir', '', 'backend tensorrt: engine cache root; empty = $AIAT_ENGINE_CACHE or '
          '~/.cache/aiat/engines'),
    Param('engine_max_size', '', 'backend tensorrt, flexible bundles: largest input HEIGHTxWIDTH of the '
          'cached engine\'s optimization profile (e.g. 448x1536 for a wide camera); empty = a square '
          'holding keep_aspect inputs of the trained pixel count up to 4:1 (832x832 for 416x416)'),
    Param('build_engine_if_missing', True, 'backend tensorrt: build a missing engine into the cache at '
          'start (minutes on a Jetson); false = stop naming the aiat-engine command'),
    Param('build_engine_only', False, 'build (or find) the TensorRT engine, log where it is and exit 0 '
          'without subscribing (backend tensorrt, or device tensorrt for the execution provider cache)'),
    Param('gpu_load_source', 'auto', 'GPU load in /diagnostics from: auto (nvml, tegrastats, jtop: the '
          'first that works), nvml, tegrastats, jtop or none', choices=GPU_LOAD_SOURCES),
    Param('num_threads', 0, 'inference threads (0 = backend default)', range=(0, INT64_MAX)),
    Param('ort_allow_spinning', True,
          'onnxruntime threads busy-wait between the operators of a run instead of sleeping'),
    Param('ort_spin_between_runs', False,
          'onnxruntime threads also keep spinning for a while after each run (onnxruntime default; '
          'burns a core between frames)'),
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
], check=lambda values: cross_field_problems(values))


def _changed(values: Dict[str, object], names: Sequence[str]) -> List[str]:
    return [n for n in names if n in values and values[n] != TABLE[n].default]


def cross_field_problems(values: Dict[str, object]) -> List[str]:
    """Rules across parameters: options that do nothing with the chosen backend/device are refused
    (a silently ignored FP16 switch is worse than an error)."""
    problems = []
    backend, device = values['backend'], values['device']
    if backend == 'tensorrt' and device in ('cpu', 'cuda'):
        problems.append(f'device: backend tensorrt runs a TensorRT engine on the GPU; use device auto or '
                        f'tensorrt, not {device} (or backend onnxruntime for {device})')
    if backend == 'torch' and device == 'tensorrt':
        problems.append('device: tensorrt is not a torch device; use backend tensorrt, or backend '
                        'onnxruntime with device tensorrt (its TensorRT execution provider)')
    ort_trt = backend == 'onnxruntime' and device in ('auto', 'tensorrt')
    for name in _changed(values, ORT_EP_OPTIONS):
        if not ort_trt:
            hint = ' (backend tensorrt: engine_precision / engine_cache_dir)' if backend == 'tensorrt' else ''
            problems.append(f'{name}: only used by the onnxruntime TensorRT execution provider (backend '
                            f'onnxruntime with device tensorrt or auto), not backend {backend} with '
                            f'device {device}{hint}')
    if values['trt_workspace_mb'] and not (ort_trt or backend == 'tensorrt'):
        problems.append(f'trt_workspace_mb: only used by TensorRT (device tensorrt or backend tensorrt), '
                        f'not backend {backend} with device {device}')
    if backend != 'tensorrt':
        problems += [f'{name}: only used by backend tensorrt (backend is {backend})'
                     for name in _changed(values, ENGINE_OPTIONS)]
    elif values.get('engine_max_size'):
        from ..engine.profile import ProfileError, parse_size
        try:
            parse_size(str(values['engine_max_size']))
        except ProfileError as exc:
            problems.append(f'engine_max_size: {exc}')
    if backend == 'tensorrt' and values['engine_precision'] == 'int8' and not values['engine_path']:
        problems.append('engine_precision: an int8 engine needs calibration data; build it with '
                        '`aiat-engine build BUNDLE --precision int8 --calibration DATA` and set engine_path')
    if values['build_engine_only']:
        if backend == 'torch' or (backend == 'onnxruntime' and device in ('cpu', 'cuda')):
            problems.append(f'build_engine_only: there is no engine to build with backend {backend} on '
                            f'device {device} (use backend tensorrt, or device tensorrt)')
        elif backend == 'tensorrt' and not values['build_engine_if_missing'] and not values['engine_path']:
            problems.append('build_engine_only: contradicts build_engine_if_missing: false')
    return problems


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


# --- device and backend: what runs where ------------------------------------------------------------

@dataclass(frozen=True)
class Availability:
    """What this machine offers the detector (gathered by :meth:`probe`, given by tests)."""
    ort_providers: Tuple[str, ...] = ('CPUExecutionProvider',)
    tensorrt_problem: Optional[str] = None     # why the native TensorRT backend cannot run; None = it can
    torch_problem: Optional[str] = None        # why backend torch cannot run; None = it can
    torch_cuda: bool = False

    @classmethod
    def probe(cls, backend: str) -> 'Availability':
        """Only what ``backend`` needs is imported (onnxruntime, TensorRT's import check, or torch)."""
        if backend == 'onnxruntime':
            import onnxruntime
            return cls(ort_providers=tuple(onnxruntime.get_available_providers()))
        if backend == 'tensorrt':
            from aiat_perception.inference.backends import backend_problem
            return cls(ort_providers=(), tensorrt_problem=backend_problem('tensorrt'))
        if importlib.util.find_spec('torch') is None:
            return cls(ort_providers=(), torch_problem='torch is not installed (pip install ".[training]"; '
                                                        'the vehicle runs onnxruntime or tensorrt)')
        import torch
        return cls(ort_providers=(), torch_cuda=bool(torch.cuda.is_available()))


@dataclass(frozen=True)
class InferencePlan:
    backend: str
    requested: str        # the device parameter
    device: str           # what it resolved to here: cpu, cuda or tensorrt ('auto' for torch's own pick)
    options: Dict[str, Any] = field(default_factory=dict)   # keyword options of the backend
    why: str = ''         # how 'auto' decided, for the start-up log

    def describe(self) -> str:
        picked = f'device {self.requested}' + (f' -> {self.device}' if self.requested != self.device else '')
        return f'backend {self.backend}, {picked}' + (f' ({self.why})' if self.why else '')


def resolve_ort_device(requested: str, providers: Sequence[str]) -> str:
    """'auto' -> the best execution provider the ONNX Runtime build has (TensorRT, CUDA, CPU)."""
    if requested != 'auto':
        return requested
    for device in ('tensorrt', 'cuda'):
        if ORT_PROVIDER[device] in providers:
            return device
    return 'cpu'


def availability_problem(values: Dict[str, object], facts: Availability) -> Optional[str]:
    """Why the requested backend/device cannot run on a machine with ``facts`` ('name: ...'), or None."""
    backend, device = values['backend'], values['device']
    if backend == 'onnxruntime' and device in ORT_PROVIDER:
        provider = ORT_PROVIDER[device]
        if provider not in facts.ort_providers:
            extra = (' with TensorRT, or use backend:=tensorrt' if device == 'tensorrt' else '')
            return (f'device: {device} requested but onnxruntime has no {provider} (this build has '
                    f'{", ".join(facts.ort_providers) or "none"}); {ORT_GPU_HINT}{extra}')
    if backend == 'tensorrt' and facts.tensorrt_problem:
        return f'backend: tensorrt requested but it cannot run here: {facts.tensorrt_problem}'
    if backend == 'torch':
        if facts.torch_problem:
            return f'backend: torch requested but {facts.torch_problem}'
        if device == 'cuda' and not facts.torch_cuda:
            return ('device: cuda requested but torch has no CUDA device (torch.cuda.is_available() is '
                    'False); install a CUDA build of torch, or use device cpu')
    return None


def inference_plan(values: Dict[str, object], facts: Availability,
                   ort_trt_cache: Optional[str] = None) -> InferencePlan:
    """The backend and its options for checked parameter ``values`` on a machine with ``facts``;
    :class:`ParameterError` naming the parameter when it cannot run there. ``ort_trt_cache``: the
    default ``trt_cache_dir`` (depends on the bundle, so the node passes it)."""
    problem = availability_problem(values, facts)
    if problem:
        raise ParameterError(problem)
    backend, requested = values['backend'], values['device']
    device_id = int(values['device_id'])
    workspace = int(values['trt_workspace_mb']) or None
    if backend == 'onnxruntime':
        device = resolve_ort_device(requested, facts.ort_providers)
        why = f'onnxruntime providers: {", ".join(facts.ort_providers)}' if requested == 'auto' else ''
        options: Dict[str, Any] = {'device': device, 'allow_spinning': bool(values['ort_allow_spinning']),
                                   'spin_between_runs': bool(values['ort_spin_between_runs'])}
        if values['num_threads']:
            options['intra_op_threads'] = int(values['num_threads'])
        if device != 'cpu':
            options['device_id'] = device_id
        if device == 'tensorrt':
            options.update(trt_fp16=bool(values['trt_fp16']),
                           trt_cache_dir=str(values['trt_cache_dir'] or ort_trt_cache or '') or None,
                           trt_timing_cache=bool(values['trt_timing_cache']), trt_workspace_mb=workspace)
        if values['build_engine_only'] and device != 'tensorrt':
            raise ParameterError(f'build_engine_only: device {requested} resolved to {device} here; there '
                                 f'is no engine to build ({", ".join(facts.ort_providers)})')
        return InferencePlan(backend, requested, device, options, why)
    if backend == 'tensorrt':
        options = {'engine': str(values['engine_path']) or None,
                   'precision': str(values['engine_precision']),
                   'cache_dir': str(values['engine_cache_dir']) or None,
                   'build_if_missing': bool(values['build_engine_if_missing'] or values['build_engine_only']),
                   'workspace_mb': workspace, 'device_id': device_id}
        if values.get('engine_max_size'):
            options['max_size'] = str(values['engine_max_size'])
        return InferencePlan(backend, requested, 'tensorrt', options)
    if requested == 'auto':
        device, why = ('cuda', 'torch sees a CUDA device') if facts.torch_cuda else ('cpu', 'torch has no CUDA')
    else:
        device, why = requested, ''
    return InferencePlan(backend, requested, device,
                         {'device': f'cuda:{device_id}' if device == 'cuda' else 'cpu'}, why)


def used_device_problem(plan: InferencePlan, backend_device: str) -> Optional[str]:
    """ONNX Runtime falls back to the next provider when one fails to start (e.g. no driver): a
    requested GPU must not silently become the CPU. ``backend_device`` is the backend's report."""
    if plan.backend != 'onnxruntime' or plan.device == 'cpu':
        return None
    used = backend_device.split(':')[0]
    if used != plan.device:
        return (f'device: {plan.device} requested ({plan.requested}) but ONNX Runtime started the '
                f'session on {backend_device}: the {ORT_PROVIDER[plan.device]} failed to start (driver, '
                f'CUDA/cuDNN/TensorRT libraries?); its log above says why')
    return None
