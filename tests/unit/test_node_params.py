"""Parameter tables of the nodes and the table mechanism, without ROS."""
from __future__ import annotations

import math

import pytest

from aiat_perception.node_params import MODULES, table_for
from aiat_perception.node_params.camera_detector import validate as camera_detector_problems
from aiat_perception.node_params.iou_monitor import level_for, parse_aliases
from aiat_perception.node_params.sim import parse_waits
from aiat_perception.parameters import INT64_MAX, Param, ParameterError, ParameterTable, parameter_type


def test_parameter_types():
    assert [parameter_type(v) for v in (True, 1, 1.0, 's', [''], [1, 2.0], [], [1, 'a'])] == [
        'bool', 'integer', 'double', 'string', 'string array', 'double array', None, None]


def test_param_checks_type_range_and_choices():
    rate = Param('rate_hz', 5.0, 'rate', range=(0.0, math.inf), open_low=True)
    assert rate.problem(2.5) is None and rate.problem(1e300) is None
    assert rate.problem(0.0) == 'must be > 0, got 0.0'
    assert rate.problem(float('nan')) == 'must be > 0, got nan'
    assert rate.problem(20) == 'is 20 (integer) but the node declares a double (default 5.0)'
    unit = Param('score', 0.5, 'score', range=(0.0, 1.0))
    assert unit.problem(1.0) is None and unit.problem(1.5) == 'must be in [0, 1], got 1.5'
    count = Param('count', 0, 'count', range=(0, INT64_MAX))
    assert count.problem(-1) == 'must be >= 0, got -1' and count.problem(True).startswith('is True (bool)')
    below = Param('dropout', -1.0, 'p', range=(-math.inf, 1.0))
    assert below.problem(-5.0) is None and below.problem(2.0) == 'must be <= 1, got 2.0'
    mode = Param('mode', 'a', 'mode', choices=('a', 'b'))
    assert mode.problem('c') == "must be one of a, b, not 'c'"
    names = Param('names', [''], 'names')
    assert names.problem([]) is None and names.problem(['x', 'y']) is None
    assert names.problem([1]).startswith('is [1] (integer array)')


def test_table_problems_defaults_coercion_and_cross_field_checks():
    table = ParameterTable('n', [Param('low', 0.2, 'low', range=(0.0, 1.0)),
                                 Param('high', 0.5, 'high', range=(0.0, 1.0), dynamic=True)],
                           check=lambda p: ['low: must be <= high'] if p['low'] > p['high'] else [])
    assert table.defaults == {'low': 0.2, 'high': 0.5} and table.dynamic == {'high'}
    assert table.problems({'low': 0.4}) == []
    assert table.problems({'low': 0.7}) == ['low: must be <= high']
    assert table.problems({'low': 2.0, 'nope': 1}) == ['nope: not a parameter of n',
                                                        'low: must be in [0, 1], got 2.0']
    assert table.validated({'high': 1}) == {'low': 0.2, 'high': 1.0}  # integer for a double: coerced
    with pytest.raises(ParameterError, match='low: must be <= high'):
        table.validated({'low': 0.9})
    with pytest.raises(ValueError, match='default of bad'):
        ParameterTable('n', [Param('bad', 5, 'b', range=(0, 1))])


@pytest.mark.parametrize('executable', sorted(MODULES))
def test_every_table_is_complete_and_its_defaults_valid(executable):
    table = table_for(executable)
    assert table.node == executable and table.problems({}) == []
    for param in table:
        assert param.description, f'{executable}.{param.name}: no description'
        assert param.type is not None
        if param.range is not None:
            assert param.type in ('integer', 'double'), f'{executable}.{param.name}: range on {param.type}'
        if param.choices:
            assert param.default in param.choices


def test_camera_detector_table_keeps_todays_validation():
    assert camera_detector_problems({'backend': 'tensorflow'}) == [
        "backend: must be one of onnxruntime, tensorrt, torch, not 'tensorflow'"]
    assert camera_detector_problems({'num_threads': -1}) == ['num_threads: must be >= 0, got -1']
    assert camera_detector_problems({'score_threshold': 1.5}) == ['score_threshold: must be <= 1, got 1.5']
    assert camera_detector_problems({'score_threshold': -3.0, 'nms_iou_threshold': 0.4}) == []
    assert camera_detector_problems({'stale_input_s': 0.0}) == ['stale_input_s: must be > 0, got 0.0']
    assert camera_detector_problems({'error_after_violations': 0}) == [
        'error_after_violations: must be >= 1, got 0']
    assert camera_detector_problems({'class_filter': ['person', 'unicorn']}, ['person', 'car']) == [
        "class_filter: unknown class(es) ['unicorn']; the bundle has 2 classes, e.g. ['person', 'car']"]
    assert camera_detector_problems({'class_filter': ['']}, ['person']) == []
    table = table_for('camera_detector')
    assert table.dynamic == {'score_threshold', 'nms_iou_threshold', 'max_detections', 'class_filter',
                             'debug_image', 'processing_budget_ms', 'pipeline_budget_ms',
                             'error_after_violations', 'stale_input_s', 'no_input_warn_s',
                             'lost_warn_fraction'}


def test_image_publisher_needs_width_and_height_together():
    table = table_for('image_publisher')
    assert table.problems({'width': 64, 'height': 48}) == []
    assert table.problems({'width': 64}) == ['width, height: give both or neither, got 64x0']
    assert table.problems({'rate_hz': 0.0}) == ['rate_hz: must be > 0, got 0.0']


def test_iou_monitor_cross_field_checks_and_levels():
    table = table_for('iou_monitor')
    assert table.problems({'error_recall': 0.6}) == ['error_recall: must be <= warn_recall (0.6 > 0.5)']
    assert table.problems({'class_aliases': ['truck']}) == [
        "class_aliases: expected 'from:to' or 'from=to', got 'truck'"]
    assert parse_aliases(['truck:car', '', 'bus=car']) == {'truck': 'car', 'bus': 'car'}
    th = {'warn_recall': 0.5, 'error_recall': 0.2, 'warn_mean_iou': 0.5, 'error_mean_iou': 0.3,
          'warn_precision': 0.5, 'error_precision': 0.2}
    ok = {'recall': 0.9, 'mean_iou': 0.8, 'precision': 0.9, 'tp': 5, 'fn': 0}
    assert level_for(ok, th) == 0
    assert level_for(dict(ok, recall=0.4), th) == 1
    assert level_for(dict(ok, mean_iou=0.1), th) == 2
    assert level_for(dict(ok, mean_iou=float('nan'), tp=0, fn=3), th) == 2


def test_sim_waits_and_ranges():
    table = table_for('sim')
    assert parse_waits(['', 'ground_truth/detections_2d:1', '/a:b:2']) == {
        'ground_truth/detections_2d': 1, '/a:b': 2}
    assert table.problems({'wait_for_subscribers': ['topic']}) == [
        "wait_for_subscribers: expected 'topic:count', got 'topic'"]
    assert table.problems({'lidar_2d_dropout': 1.5}) == ['lidar_2d_dropout: must be <= 1, got 1.5']
    assert table.problems({'mode': 'fast'}) == ["mode: must be one of realtime, lockstep, not 'fast'"]
    assert table.problems({'lockstep_timeout_s': 0.0}) == ['lockstep_timeout_s: must be > 0, got 0.0']


# --- camera_detector: device / backend decisions (ROS-free; GPU builds given as facts) --------------

from aiat_perception.node_params.camera_detector import (  # noqa: E402
    Availability, inference_plan, resolve_ort_device, used_device_problem)

CPU_ORT = Availability(ort_providers=('AzureExecutionProvider', 'CPUExecutionProvider'))
CUDA_ORT = Availability(ort_providers=('CUDAExecutionProvider', 'CPUExecutionProvider'))
GPU_ORT = Availability(ort_providers=('TensorrtExecutionProvider', 'CUDAExecutionProvider',
                                      'CPUExecutionProvider'))
TRT_MISSING = 'TensorRT is not installed; install TensorRT 8.6-10.x: on a Jetson ...'


def detector_values(**changes):
    values = table_for('camera_detector').defaults
    values.update(changes)
    assert camera_detector_problems(changes) == [], camera_detector_problems(changes)
    return values


def test_auto_picks_the_best_provider_the_onnxruntime_build_has():
    assert resolve_ort_device('auto', CPU_ORT.ort_providers) == 'cpu'
    assert resolve_ort_device('auto', CUDA_ORT.ort_providers) == 'cuda'
    assert resolve_ort_device('auto', GPU_ORT.ort_providers) == 'tensorrt'
    plan = inference_plan(detector_values(), CPU_ORT)
    assert (plan.backend, plan.requested, plan.device) == ('onnxruntime', 'auto', 'cpu')
    assert plan.options == {'device': 'cpu', 'allow_spinning': True, 'spin_between_runs': False}
    assert 'device auto -> cpu' in plan.describe() and 'CPUExecutionProvider' in plan.describe()
    plan = inference_plan(detector_values(num_threads=2, ort_allow_spinning=False,
                                          ort_spin_between_runs=True), CUDA_ORT)
    assert plan.options == {'device': 'cuda', 'allow_spinning': False, 'spin_between_runs': True,
                            'intra_op_threads': 2, 'device_id': 0}


def test_tensorrt_provider_options_come_from_the_parameters():
    values = detector_values(device='tensorrt', device_id=1, trt_fp16=True, trt_cache_dir='/cache/ort',
                             trt_timing_cache=False, trt_workspace_mb=2048)
    plan = inference_plan(values, GPU_ORT, ort_trt_cache='/default/cache')
    assert plan.device == 'tensorrt' and plan.describe() == 'backend onnxruntime, device tensorrt'
    assert plan.options == {'device': 'tensorrt', 'allow_spinning': True, 'spin_between_runs': False,
                            'device_id': 1,
                            'trt_fp16': True, 'trt_cache_dir': '/cache/ort', 'trt_timing_cache': False,
                            'trt_workspace_mb': 2048}
    # defaults: the bundle's own cache directory, no workspace limit, timing cache on, FP32
    plan = inference_plan(detector_values(device='tensorrt'), GPU_ORT, ort_trt_cache='/default/cache')
    assert plan.options['trt_cache_dir'] == '/default/cache' and plan.options['trt_workspace_mb'] is None
    assert plan.options['trt_timing_cache'] is True and plan.options['trt_fp16'] is False
    # auto on a GPU build applies the TensorRT options too
    assert inference_plan(detector_values(trt_fp16=True), GPU_ORT).options['trt_fp16'] is True


def test_the_options_reach_onnxruntime_as_provider_options(tmp_path):
    from aiat_perception.inference.backends import OnnxRuntimeBackend
    plan = inference_plan(detector_values(device='tensorrt', trt_fp16=True, trt_timing_cache=False,
                                          trt_cache_dir=str(tmp_path), trt_workspace_mb=512), GPU_ORT)
    o = plan.options
    providers = OnnxRuntimeBackend._providers_for(o['device'], GPU_ORT.ort_providers, o['device_id'],
                                                  o['trt_fp16'], o['trt_cache_dir'], o['trt_workspace_mb'],
                                                  o['trt_timing_cache'])
    assert providers[0] == ('TensorrtExecutionProvider', {
        'device_id': 0, 'trt_fp16_enable': True, 'trt_engine_cache_enable': True,
        'trt_engine_cache_path': str(tmp_path), 'trt_max_workspace_size': 512 << 20})
    assert providers[1:] == [('CUDAExecutionProvider', {'device_id': 0}), 'CPUExecutionProvider']


@pytest.mark.parametrize('device, provider', [('cuda', 'CUDAExecutionProvider'),
                                              ('tensorrt', 'TensorrtExecutionProvider')])
def test_a_gpu_device_onnxruntime_lacks_stops_naming_the_parameter_and_the_package(device, provider):
    with pytest.raises(ParameterError) as info:
        inference_plan(detector_values(device=device), CPU_ORT)
    message = str(info.value)
    assert message.startswith(f'device: {device} requested but onnxruntime has no {provider}'), message
    assert 'install onnxruntime-gpu' in message and 'CPUExecutionProvider' in message
    with pytest.raises(ParameterError, match='no TensorrtExecutionProvider'):
        inference_plan(detector_values(device='tensorrt'), CUDA_ORT)
    assert inference_plan(detector_values(device='cuda'), CUDA_ORT).device == 'cuda'


def test_native_tensorrt_backend_options_and_unavailability():
    values = detector_values(backend='tensorrt', engine_precision='fp32', engine_cache_dir='/engines',
                             trt_workspace_mb=1024, device_id=2)
    plan = inference_plan(values, Availability(ort_providers=()))
    assert (plan.backend, plan.device) == ('tensorrt', 'tensorrt')
    assert plan.options == {'engine': None, 'precision': 'fp32', 'cache_dir': '/engines',
                            'build_if_missing': True, 'workspace_mb': 1024, 'device_id': 2}
    plan = inference_plan(detector_values(backend='tensorrt', engine_path='/e/model.engine',
                                          engine_precision='int8', build_engine_if_missing=False),
                          Availability(ort_providers=()))
    assert plan.options['engine'] == '/e/model.engine' and plan.options['build_if_missing'] is False
    plan = inference_plan(detector_values(backend='tensorrt', engine_max_size='448x1536'),
                          Availability(ort_providers=()))
    assert plan.options['max_size'] == '448x1536'        # the cached engine's profile box (flexible bundles)
    with pytest.raises(ParameterError) as info:
        inference_plan(detector_values(backend='tensorrt'), Availability(tensorrt_problem=TRT_MISSING))
    assert str(info.value) == f'backend: tensorrt requested but it cannot run here: {TRT_MISSING}'


def test_build_engine_only():
    plan = inference_plan(detector_values(backend='tensorrt', build_engine_only=True),
                          Availability(ort_providers=()))
    assert plan.options['build_if_missing'] is True
    assert inference_plan(detector_values(device='tensorrt', build_engine_only=True), GPU_ORT).device == 'tensorrt'
    assert inference_plan(detector_values(build_engine_only=True), GPU_ORT).device == 'tensorrt'
    with pytest.raises(ParameterError, match='build_engine_only: device auto resolved to cpu here'):
        inference_plan(detector_values(build_engine_only=True), CPU_ORT)


def test_torch_backend_devices():
    torch_gpu = Availability(ort_providers=(), torch_cuda=True)
    torch_cpu = Availability(ort_providers=())
    assert inference_plan(detector_values(backend='torch'), torch_gpu).options == {'device': 'cuda:0'}
    assert inference_plan(detector_values(backend='torch'), torch_cpu).options == {'device': 'cpu'}
    assert inference_plan(detector_values(backend='torch', device='cuda', device_id=1),
                          torch_gpu).options == {'device': 'cuda:1'}
    with pytest.raises(ParameterError, match=r'^device: cuda requested but torch has no CUDA device'):
        inference_plan(detector_values(backend='torch', device='cuda'), torch_cpu)
    with pytest.raises(ParameterError, match=r'^backend: torch requested but torch is not installed'):
        inference_plan(detector_values(backend='torch'),
                       Availability(torch_problem='torch is not installed (pip install ".[training]")'))


def test_options_that_would_do_nothing_are_refused():
    problems = camera_detector_problems
    assert problems({'backend': 'tensorrt', 'device': 'cpu'}) == [
        'device: backend tensorrt runs a TensorRT engine on the GPU; use device auto or tensorrt, '
        'not cpu (or backend onnxruntime for cpu)']
    assert problems({'backend': 'torch', 'device': 'tensorrt'})[0].startswith(
        'device: tensorrt is not a torch device')
    for name, value in (('trt_fp16', True), ('trt_cache_dir', '/c'), ('trt_timing_cache', False)):
        assert problems({'device': 'cuda', name: value}) == [
            f'{name}: only used by the onnxruntime TensorRT execution provider (backend onnxruntime '
            f'with device tensorrt or auto), not backend onnxruntime with device cuda']
        assert problems({'device': 'tensorrt', name: value}) == []
        assert problems({'device': 'auto', name: value}) == []
        assert 'engine_precision' in problems({'backend': 'tensorrt', name: value})[0]
    assert problems({'device': 'cpu', 'trt_workspace_mb': 64})[0].startswith('trt_workspace_mb: only used by TensorRT')
    assert problems({'backend': 'tensorrt', 'trt_workspace_mb': 64}) == []
    for name, value in (('engine_path', '/e'), ('engine_precision', 'fp32'), ('engine_cache_dir', '/c'),
                        ('build_engine_if_missing', False)):
        assert problems({name: value}) == [f'{name}: only used by backend tensorrt (backend is onnxruntime)']
    assert problems({'engine_max_size': '448x1536'}) == [
        'engine_max_size: only used by backend tensorrt (backend is onnxruntime)']
    assert problems({'backend': 'tensorrt', 'engine_max_size': '448x1536'}) == []
    assert problems({'backend': 'tensorrt', 'engine_max_size': 'wide'}) == [
        "engine_max_size: size 'wide': expected HEIGHTxWIDTH, e.g. 448x1280"]
    assert problems({'backend': 'tensorrt', 'engine_precision': 'int8'})[0].startswith(
        'engine_precision: an int8 engine needs calibration data')
    assert problems({'build_engine_only': True, 'device': 'cpu'})[0].startswith(
        'build_engine_only: there is no engine to build with backend onnxruntime on device cpu')
    assert problems({'build_engine_only': True, 'backend': 'torch'})[0].startswith('build_engine_only:')
    assert problems({'build_engine_only': True, 'backend': 'tensorrt',
                     'build_engine_if_missing': False}) == [
        'build_engine_only: contradicts build_engine_if_missing: false']
    assert problems({'device': 'gpu'}) == ["device: must be one of auto, cpu, cuda, tensorrt, not 'gpu'"]
    assert problems({'device_id': -1}) == ['device_id: must be in [0, 1023], got -1']
    assert problems({'gpu_load_source': 'nvidia-smi'})[0].startswith('gpu_load_source: must be one of')


def test_a_silent_fallback_to_the_cpu_is_an_error():
    plan = inference_plan(detector_values(device='cuda'), CUDA_ORT)
    assert used_device_problem(plan, 'cuda:0') is None
    assert used_device_problem(plan, 'cpu').startswith(
        'device: cuda requested (cuda) but ONNX Runtime started the session on cpu: the '
        'CUDAExecutionProvider failed to start')
    plan = inference_plan(detector_values(), GPU_ORT)   # auto -> tensorrt: falling back is an error too
    assert 'requested (auto)' in used_device_problem(plan, 'cuda:0')
    assert used_device_problem(inference_plan(detector_values(), CPU_ORT), 'cpu') is None


def test_probe_reads_the_installed_onnxruntime():
    import onnxruntime  # every environment has it (vehicle runtime)
    facts = Availability.probe('onnxruntime')
    assert facts.ort_providers == tuple(onnxruntime.get_available_providers())
    from aiat_perception.inference.backends import backend_problem
    assert Availability.probe('tensorrt').tensorrt_problem == backend_problem('tensorrt')


def test_the_profile_variable_follows_the_fast_dds_version(monkeypatch):
    """Fast DDS 2.x (Humble, Jazzy) reads only FASTRTPS_DEFAULT_PROFILES_FILE, Fast DDS 3 (Kilted)
    FASTDDS_DEFAULT_PROFILES_FILE: setting the wrong one silently left Jazzy on the defaults."""
    from aiat_perception.nodes.common import fast_dds_major, profile_variables
    for distro, major in (('humble', 2), ('jazzy', 2), ('kilted', 3), ('rolling', 3)):
        monkeypatch.setenv('ROS_DISTRO', distro)
        assert fast_dds_major() == major
    assert profile_variables(2) == ('FASTRTPS_DEFAULT_PROFILES_FILE',)
    assert profile_variables(3) == ('FASTDDS_DEFAULT_PROFILES_FILE',)
    assert set(profile_variables(None)) == {'FASTRTPS_DEFAULT_PROFILES_FILE', 'FASTDDS_DEFAULT_PROFILES_FILE'}
