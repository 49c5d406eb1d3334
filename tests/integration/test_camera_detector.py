"""camera_detector as a real process over DDS: real photos in, Detection2DArray and diagnostics out."""
from __future__ import annotations

import time

import numpy as np
import pytest

from aiat_perception import assets
from tests.conftest import spin_until

ROOT = __import__('pathlib').Path(__file__).resolve().parent.parent.parent
PARAMS = str(ROOT / 'config' / 'camera_detector.yaml')


@pytest.fixture
def detector(start_node):
    def start(**params):
        proc = start_node('aiat_perception.nodes.camera_detector', params_file=PARAMS, params=params)
        return proc
    return start


class Collector:
    """Subscribes the test node to the detector's outputs and keeps what arrives."""

    def __init__(self, node, images=True, detections='detections', node_name='camera_detector',
                 image_reliability='best_effort'):
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import Image
        from std_msgs.msg import Float64MultiArray
        from vision_msgs.msg import Detection2DArray, LabelInfo

        from aiat_perception.nodes.common import latched_qos, sensor_qos
        self.node = node
        self.status_prefix = f'/{node_name}: '
        self.detections, self.images, self.statuses, self.labels, self.debug = [], [], [], [], []
        self.latency = []
        node.create_subscription(Detection2DArray, detections, self.detections.append, 50)
        node.create_subscription(Float64MultiArray, f'/{node_name}/latency', self.latency.append, 50)
        if images:
            node.create_subscription(Image, 'image', self.images.append, sensor_qos(image_reliability, 50))
        node.create_subscription(DiagnosticArray, '/diagnostics', self.on_diagnostics, 10)
        node.create_subscription(LabelInfo, 'label_info', lambda m: self.labels.append(m), latched_qos())

    def on_diagnostics(self, msg):
        self.statuses += [s for s in msg.status if s.name.startswith(self.status_prefix)]

    def latest_values(self):
        from aiat_perception.vision_conversions import diagnostic_values
        return diagnostic_values(self.statuses[-1]) if self.statuses else {}


def labels_of(msg):
    return {d.results[0].hypothesis.class_id for d in msg.detections}


def test_real_photos_give_classes_header_and_diagnostics(test_node, start_node, detector):
    collect = Collector(test_node, image_reliability='reliable')
    # Budgets far above this machine's worst case under load: the test checks that a healthy node
    # reports OK, not how fast the machine is (benchmarks/camera_pipeline.py measures that).
    # and reliable transport: a best-effort frame lost on a loaded machine is rightly a WARN (the
    # lost-frame tests below check that), not what this test is about. The bundle's default
    # resize (keep_aspect, max_stretch 4:3) gives the 4:3 photo the trained 416x416 input.
    detector(processing_budget_ms=5000.0, pipeline_budget_ms=10000.0, reliability='reliable')
    start_node('aiat_perception.nodes.image_publisher',
               params={'images': [str(assets.darknet_image('dog.jpg'))], 'rate_hz': 4.0,
                       'reliability': 'reliable', 'depth': 10, 'frame_id': 'front_camera',
                       # the node and this process both get every frame from the first (on a loaded
                       # run discovery matched the node first and this process missed the first frame)
                       'wait_for_subscribers': 2})
    assert spin_until(test_node, lambda: len(collect.detections) >= 3 and len(collect.statuses) >= 2
                      and collect.latest_values().get('frames_processed', '0') != '0', timeout=60)
    msg = collect.detections[-1]
    assert {'bicycle', 'dog', 'truck'} <= labels_of(msg)
    assert msg.header.frame_id == 'front_camera'

    # the input's own stamp. The 1.3 MB frames can reach this busy process later than the node (and
    # depth 10: with keep-last 1 a frame still being repaired here is replaced by the next one)
    def stamps(msgs):
        return {(m.header.stamp.sec, m.header.stamp.nanosec) for m in msgs}
    assert spin_until(test_node, lambda: stamps([msg]) <= stamps(collect.images), timeout=10), \
        (stamps([msg]), sorted(stamps(collect.images)))
    bike = next(d for d in msg.detections if d.results[0].hypothesis.class_id == 'bicycle')
    assert abs(bike.bbox.center.position.x - 346) < 30 and abs(bike.bbox.center.position.y - 276) < 30
    assert collect.labels and len(collect.labels[0].class_map) == 80
    assert collect.labels[0].class_map[1].class_name == 'bicycle'

    # ~/latency: named fields; the time before processing splits into transport to the callback and
    # the hand-off to the worker, and the three parts add up to the stamp-to-publish latency
    from aiat_perception.nodes.camera_detector import LATENCY_LABELS
    assert collect.latency and collect.latency[-1].layout.dim[0].label == ','.join(LATENCY_LABELS)
    field = {name: np.array([m.data[i] for m in collect.latency]) for i, name in enumerate(LATENCY_LABELS)}
    assert np.all(field['received_ms'] > -1.0) and np.all(field['handoff_ms'] >= 0.0), field
    parts = field['received_ms'] + field['handoff_ms'] + field['processing_ms']
    assert abs(np.median(field['pipeline_ms'] - parts)) < 5.0, (field['pipeline_ms'], parts)

    values = collect.latest_values()
    assert float(values['input_rate_hz']) > 1.0 and float(values['output_rate_hz']) > 1.0
    assert float(values['processing_ms_p50']) > 0 and float(values['inference_ms_p50']) > 0
    assert 0 < float(values['pipeline_latency_ms_p50']) < 1000
    assert collect.statuses[-1].level == b'\x00', collect.statuses[-1].message
    # the config's device: auto, resolved to what this ONNX Runtime build has and reported
    assert values['device_requested'] == 'auto'
    assert values['device'].split(':')[0] == expected_auto_device(), values


def test_publisher_faster_than_model_keeps_output_fresh(test_node, start_node, detector):
    """Input well above the node's capacity: frames are dropped, latency does not grow."""
    collect = Collector(test_node, images=False)  # receiving 60 Hz 720p here would delay this process
    detector(num_threads=1)
    start_node('aiat_perception.nodes.image_publisher',
               params={'images': [str(assets.darknet_image('dog.jpg'))], 'rate_hz': 60.0,
                       'width': 1280, 'height': 720})
    assert spin_until(test_node, lambda: len(collect.detections) >= 60 and len(collect.latency) >= 60, timeout=90)
    # The node's own input-stamp-to-publish time (its latency topic): this process's receive times also
    # carry its own scheduling, and a loaded run stalled it 0.6 s and then drained the backlog (a falling
    # 500, 450, ... 80 ms tail that was this process, not the node).
    labels = collect.latency[0].layout.dim[0].label.split(',')
    latency_ms = np.array([m.data[labels.index('pipeline_ms')] for m in collect.latency])[10:]
    spin_until(test_node, lambda: False, timeout=1.2)
    values = collect.latest_values()
    processing_p95 = float(values['processing_ms_p95'])
    print(f'\n60 Hz 720p into one inference thread: pipeline_ms p50 {np.median(latency_ms):.0f}, p90 '
          f'{np.percentile(latency_ms, 90):.0f}; processing_ms p95 {processing_p95:.0f}; '
          f"frames_dropped {values['frames_dropped']}")
    assert int(values['frames_dropped']) > 0
    # Output lags by at most about one frame's processing: the newest frame waits for the current one.
    assert np.percentile(latency_ms, 90) < 2 * processing_p95 + 60, (latency_ms, processing_p95)
    # No growing queue: the last third is not slower than the first third.
    third = len(latency_ms) // 3
    assert np.median(latency_ms[-third:]) < np.median(latency_ms[:third]) + processing_p95, latency_ms


def test_malformed_frames_are_counted_and_skipped(test_node, detector):
    from sensor_msgs.msg import Image

    from aiat_perception.msg_conversions import numpy_to_image
    from aiat_perception.nodes.common import sensor_qos
    import cv2

    collect = Collector(test_node)
    detector(reliability='reliable')
    pub = test_node.create_publisher(Image, 'image', sensor_qos('reliable'))
    assert spin_until(test_node, lambda: pub.get_subscription_count() > 0, timeout=30)
    good = numpy_to_image(cv2.imread(str(assets.darknet_image('dog.jpg'))), 'bgr8')
    bad = [Image(height=10, width=10, encoding='bgr8', step=5, data=bytes(300)),       # wrong step
           Image(height=10, width=10, encoding='bgr8', step=30, data=bytes(100)),      # truncated
           Image(height=10, width=10, encoding='yuv_unknown', step=30, data=bytes(300)),
           Image(height=0, width=0, encoding='bgr8', step=0, data=b''),                # empty
           numpy_to_image(np.zeros((10, 10), np.float32), '32FC1')]                    # not a colour image
    good.header.frame_id = 'warm_up'  # the first reliable samples can precede the match; settle first
    while not any(m.header.frame_id == 'warm_up' for m in collect.detections):
        pub.publish(good)
        assert spin_until(test_node, lambda: any(m.header.frame_id == 'warm_up'
                                                 for m in collect.detections), timeout=1.0) or \
            len(collect.detections) < 100
    for msg in bad:
        pub.publish(msg)
        spin_until(test_node, lambda: False, timeout=0.15)
    good.header.frame_id = 'after_bad_frames'
    good.header.stamp = test_node.get_clock().now().to_msg()
    pub.publish(good)
    assert spin_until(test_node, lambda: any(m.header.frame_id == 'after_bad_frames'
                                             for m in collect.detections), timeout=30)
    assert spin_until(test_node, lambda: int(collect.latest_values().get('frames_malformed', 0)) >= 5,
                      timeout=10), (collect.latest_values()["frames_malformed"], collect.latest_values()["frames_received"], collect.latest_values()["last_problem"])
    status = collect.statuses[-1]
    assert status.level == b'\x01' and 'malformed' in status.message
    assert 'Image.' in collect.latest_values()['last_problem']


def test_invalid_parameters_stop_with_names(start_node):
    proc = start_node('aiat_perception.nodes.camera_detector',
                      params={'score_threshold': 2.0, 'reliability': 'sometimes', 'stats_window': 0})
    assert proc.wait(timeout=60) == 2
    out = proc.output()
    for name in ('score_threshold', 'reliability', 'stats_window'):
        assert name in out, out
    proc = start_node('aiat_perception.nodes.camera_detector',
                      params={'bundle_path': '/nonexistent/bundle'})
    assert proc.wait(timeout=60) == 2
    assert 'bundle_path' in proc.output() and '/nonexistent/bundle' in proc.output()
    proc = start_node('aiat_perception.nodes.camera_detector', params={'class_filter': ['unicorn']})
    assert proc.wait(timeout=60) == 2 and 'unicorn' in proc.output()


# --- device, backend and GPU load (issues 14 and 17) ---------------------------------------------

def ort_providers():
    import onnxruntime
    return onnxruntime.get_available_providers()


def expected_auto_device():
    from aiat_perception.node_params.camera_detector import resolve_ort_device
    return resolve_ort_device('auto', ort_providers())


def gpu_load_here():
    from aiat_perception.gpu_load import GpuLoad
    with GpuLoad() as load:
        return load.source, load.problems


def await_status(test_node, collect, count=2, timeout=60):
    assert spin_until(test_node, lambda: len(collect.statuses) >= count, timeout=timeout)
    return collect.latest_values()


@pytest.mark.parametrize('device', ['cpu', 'auto'])
def test_device_runs_and_diagnostics_report_it_without_gpu_keys(test_node, detector, device):
    collect = Collector(test_node, images=False)
    detector(device=device, diagnostics_period_s=0.5)
    values = await_status(test_node, collect)
    resolved = 'cpu' if device == 'cpu' else expected_auto_device()
    assert values['device'].split(':')[0] == resolved and values['device_requested'] == device, values
    assert values['backend'].startswith(f'onnxruntime on {resolved}')
    source, problems = gpu_load_here()
    if source is not None:
        pytest.skip(f'GPU load is readable here ({source}): the absent-keys check needs a machine without')
    # no GPU load source here: the keys are absent (unknown), never zeros
    assert not [k for k in values if k.startswith('gpu_')], (values, problems)


def test_unavailable_device_or_backend_stops_naming_the_parameter_and_what_to_install(start_node):
    from aiat_perception.inference.backends import backend_problem

    providers = ort_providers()
    cases = []
    if 'CUDAExecutionProvider' not in providers:
        cases.append(({'device': 'cuda'}, 'device: cuda requested but onnxruntime has no '
                      'CUDAExecutionProvider', 'install onnxruntime-gpu'))
    if 'TensorrtExecutionProvider' not in providers:
        cases.append(({'device': 'tensorrt'}, 'device: tensorrt requested but onnxruntime has no '
                      'TensorrtExecutionProvider', 'install onnxruntime-gpu'))
    if backend_problem('tensorrt'):
        cases.append(({'backend': 'tensorrt'}, 'backend: tensorrt requested but it cannot run here',
                      'install'))
    if not cases:
        pytest.skip(f'this machine has every device and backend ({providers}, TensorRT)')
    # and an option that would do nothing with the chosen device: refused before any model loads
    cases.append(({'device': 'cpu', 'trt_fp16': True}, 'trt_fp16: only used by the onnxruntime '
                  'TensorRT execution provider', 'device tensorrt'))
    procs = [(start_node('aiat_perception.nodes.camera_detector', params=params), first, hint)
             for params, first, hint in cases]
    for proc, first, hint in procs:
        assert proc.wait(timeout=90) == 2, proc.output()
        out = proc.output()
        assert first in out and hint in out, out
        assert 'Traceback' not in out, out


def test_gpu_device_runs_and_reports_gpu_load(test_node, detector):
    providers = ort_providers()
    if 'CUDAExecutionProvider' not in providers:
        pytest.skip(f'needs onnxruntime-gpu and a CUDA GPU (this ONNX Runtime has {providers})')
    collect = Collector(test_node, images=False)
    detector(device='cuda', diagnostics_period_s=0.5)
    values = await_status(test_node, collect)
    assert values['device'] == 'cuda:0' and values['device_requested'] == 'cuda'
    source, problems = gpu_load_here()
    if source is None:
        pytest.skip(f'no GPU load source readable here: {problems}')
    assert values['gpu_source'] == source and float(values['gpu_memory_total_mb']) > 0, values


def test_tensorrt_backend_builds_the_engine_only_and_exits(start_node, tmp_path):
    from aiat_perception.inference.backends import backend_problem
    problem = backend_problem('tensorrt')
    if problem:
        pytest.skip(f'needs TensorRT and a GPU: {problem}')
    proc = start_node('aiat_perception.nodes.camera_detector',
                      params={'backend': 'tensorrt', 'build_engine_only': True,
                              'engine_cache_dir': str(tmp_path / 'engines')})
    assert proc.wait(timeout=600) == 0, proc.output()
    assert 'build_engine_only: TensorRT engine ready in' in proc.output()
    assert list((tmp_path / 'engines').rglob('model.engine'))


def test_debug_image_only_when_subscribed_and_dynamic_filter(test_node, start_node, detector):
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters
    from sensor_msgs.msg import Image

    from aiat_perception.nodes.common import sensor_qos

    collect = Collector(test_node)
    detector()
    start_node('aiat_perception.nodes.image_publisher',
               params={'images': [str(assets.darknet_image('dog.jpg'))], 'rate_hz': 5.0})
    assert spin_until(test_node, lambda: int(collect.latest_values().get('frames_processed', 0)) >= 5,
                      timeout=60)
    assert collect.latest_values()['debug_images_published'] == '0'

    debug = []
    test_node.create_subscription(Image, 'detections/image', debug.append, sensor_qos('reliable'))
    assert spin_until(test_node, lambda: len(debug) >= 2, timeout=30)
    assert debug[-1].encoding == 'rgb8' and (debug[-1].width, debug[-1].height) == (768, 576)

    client = test_node.create_client(SetParameters, '/camera_detector/set_parameters')
    assert client.wait_for_service(timeout_sec=10)
    request = SetParameters.Request(parameters=[Parameter(
        name='class_filter', value=ParameterValue(type=ParameterType.PARAMETER_STRING_ARRAY,
                                                  string_array_value=['dog']))])
    future = client.call_async(request)
    assert spin_until(test_node, future.done, timeout=10) and future.result().results[0].successful
    count = len(collect.detections)
    assert spin_until(test_node, lambda: len(collect.detections) >= count + 3, timeout=30)
    assert labels_of(collect.detections[-1]) == {'dog'}

    bad = SetParameters.Request(parameters=[Parameter(
        name='score_threshold', value=ParameterValue(type=ParameterType.PARAMETER_DOUBLE,
                                                     double_value=3.0))])
    future = client.call_async(bad)
    assert spin_until(test_node, future.done, timeout=10)
    result = future.result().results[0]
    assert not result.successful and 'score_threshold' in result.reason


# --- hostile input (issue 10) -------------------------------------------------------------------
# Quick diagnostics and a short problem window, budgets and staleness out of the way: these tests
# check the accounting and the return to OK, not the machine's speed.
HOSTILE_PARAMS = {'reliability': 'reliable', 'diagnostics_period_s': 0.25, 'problem_window_s': 1.5,
                  'stale_input_s': 60.0, 'no_input_warn_s': 60.0, 'processing_budget_ms': 10000.0,
                  'pipeline_budget_ms': 20000.0, 'debug_image': False, 'num_threads': 1}


def settle(test_node, pub, collect, good, timeout=30.0):
    """Publish ``good`` until the node answers: the first reliable samples can precede the match."""
    good.header.frame_id = 'warm_up'
    deadline = time.monotonic() + timeout
    while not any(m.header.frame_id == 'warm_up' for m in collect.detections):
        assert time.monotonic() < deadline, 'the node never answered'
        good.header.stamp = test_node.get_clock().now().to_msg()
        pub.publish(good)
        spin_until(test_node, lambda: any(m.header.frame_id == 'warm_up' for m in collect.detections),
                   timeout=1.0)


def send_and_await(test_node, pub, collect, msg, frame_id, timeout=30.0):
    msg.header.frame_id = frame_id
    msg.header.stamp = test_node.get_clock().now().to_msg()
    pub.publish(msg)
    return spin_until(test_node, lambda: any(m.header.frame_id == frame_id for m in collect.detections),
                      timeout=timeout)


def await_values(test_node, collect, predicate, timeout=10.0):
    spin_until(test_node, lambda: collect.statuses and predicate(collect.latest_values()), timeout=timeout)
    return collect.latest_values()


def test_any_exception_from_conversion_is_malformed_input(test_node, start_node):
    """Defect 2: a frame whose conversion raises something other than MessageFormatError (numpy
    1.21's ValueError on padded 16-bit rows, MemoryError, ...) is counted as malformed; the node
    lives on and detects the next frame. Before the fix the first such frame ended the process."""
    from sensor_msgs.msg import Image

    import cv2

    from aiat_perception.msg_conversions import numpy_to_image
    from aiat_perception.nodes.common import sensor_qos

    collect = Collector(test_node, images=False)
    proc = start_node('tests.integration.peers.camera_detector_conversion_faults', params_file=PARAMS,
                      params=dict(HOSTILE_PARAMS, problem_window_s=60.0))
    pub = test_node.create_publisher(Image, 'image', sensor_qos('reliable'))
    good = numpy_to_image(cv2.imread(str(assets.darknet_image('dog.jpg'))), 'bgr8')
    settle(test_node, pub, collect, good)
    faults = ['raise_value_error', 'raise_memory_error', 'raise_key_error']
    for fault in faults:
        good.header.frame_id = fault
        pub.publish(good)
        spin_until(test_node, lambda: False, timeout=0.2)
    assert send_and_await(test_node, pub, collect, good, 'after_faults'), proc.output()[-3000:]
    values = await_values(test_node, collect, lambda v: int(v['frames_malformed']) >= len(faults))
    assert proc.alive(), proc.output()[-3000:]
    assert values['frames_malformed'] == str(len(faults)), values
    assert values['frames_failed'] == '0', values
    assert values['last_problem'].startswith('KeyError'), values['last_problem']
    assert 'skipping malformed frame: ValueError: When changing to a larger dtype' in proc.output()


def jpeg_bomb(width=32768, height=32767) -> bytes:
    """A few hundred bytes of real JPEG whose frame header (SOF0) claims width x height."""
    import cv2
    import struct
    data = bytearray(cv2.imencode('.jpg', np.full((16, 16, 3), 127, np.uint8))[1].tobytes())
    sof = data.index(b'\xff\xc0')
    struct.pack_into('>HH', data, sof + 5, height, width)
    return bytes(data)


def test_mixed_malformed_and_valid_frames_counted_exactly_then_ok(test_node, start_node):
    """Raw and compressed instances fed malformed frames between valid ones: both stay up, every
    valid frame is detected, every malformed one is counted, and the level returns to OK once the
    problem window is clean (issue 10: the standing DDS-level check, defects 1, 2 and 4)."""
    from sensor_msgs.msg import CompressedImage, Image

    import cv2

    from aiat_perception.msg_conversions import numpy_to_image
    from aiat_perception.nodes.common import sensor_qos

    raw_collect = Collector(test_node, images=False)
    comp_collect = Collector(test_node, images=False, detections='detections_compressed',
                             node_name='camera_detector_compressed')
    raw_node = start_node('aiat_perception.nodes.camera_detector', params_file=PARAMS,
                          params=HOSTILE_PARAMS)      # max_decoded_pixels 0: 4x the first frame
    comp_node = start_node('aiat_perception.nodes.camera_detector',
                           params=dict(HOSTILE_PARAMS, compressed=True, max_decoded_pixels=1_000_000),
                           remap={'__node': 'camera_detector_compressed',
                                  'detections': 'detections_compressed'})
    raw_pub = test_node.create_publisher(Image, 'image', sensor_qos('reliable'))
    comp_pub = test_node.create_publisher(CompressedImage, 'image/compressed', sensor_qos('reliable'))

    dog = cv2.imread(str(assets.darknet_image('dog.jpg')))             # 768x576
    valid_raw = [numpy_to_image(dog, 'bgr8'), numpy_to_image(dog[:, :, ::-1].copy(), 'rgb8'),
                 numpy_to_image(cv2.cvtColor(dog, cv2.COLOR_BGR2GRAY), 'mono8'),
                 numpy_to_image(cv2.cvtColor(dog, cv2.COLOR_BGR2BGRA), 'bgra8')]
    mono16 = Image(height=4, width=3, encoding='mono16', step=8, data=bytes(32))  # padded rows
    big = numpy_to_image(cv2.resize(dog, (2000, 1000)), 'bgr8')      # 2 Mpx > 4 x 768 x 576
    bad_raw = [Image(height=10, width=10, encoding='bgr8', step=5, data=bytes(300)),   # bad step
               Image(height=10, width=10, encoding='bgr8', step=30, data=bytes(100)),  # short data
               Image(height=10, width=10, encoding='yuv_unknown', step=30, data=bytes(300)),
               Image(height=0, width=0, encoding='bgr8', step=0, data=b''),            # empty
               numpy_to_image(np.zeros((10, 10), np.float32), '32FC1'),                # not colour
               mono16,                                                                 # not colour
               big,                                                                    # too large
               Image(height=100000, width=100000, encoding='rgb8', step=300000, data=bytes(64))]

    def compressed(data, fmt='jpeg'):
        return CompressedImage(format=fmt, data=bytes(data))
    jpeg = cv2.imencode('.jpg', dog)[1].tobytes()
    valid_comp = [compressed(jpeg), compressed(cv2.imencode('.png', dog)[1].tobytes(), 'png')]
    png16 = cv2.imencode('.png', np.full((20, 20), 4000, np.uint16))[1].tobytes()
    lying_png = bytearray(cv2.imencode('.png', dog[:8, :8])[1].tobytes())
    lying_png[16:24] = (2 ** 31 - 1).to_bytes(4, 'big') + (2 ** 31 - 1).to_bytes(4, 'big')
    bad_comp = [compressed(jpeg_bomb()),                                       # 32768x32767 bomb
                compressed(b'\x00garbage' * 50),
                compressed(jpeg[:len(jpeg) // 2]),                              # truncated
                compressed(b''),
                compressed(cv2.imencode('.jpg', cv2.resize(dog, (1400, 1000)))[1].tobytes()),
                compressed(png16, 'png'),                                        # 16-bit: not colour
                compressed(bytes(lying_png), 'png')]

    for pub, collect, good in ((raw_pub, raw_collect, numpy_to_image(dog, 'bgr8')),
                               (comp_pub, comp_collect, compressed(jpeg))):
        settle(test_node, pub, collect, good)
    for name, pub, collect, bad, valid in (('raw', raw_pub, raw_collect, bad_raw, valid_raw),
                                           ('compressed', comp_pub, comp_collect, bad_comp, valid_comp)):
        for i, msg in enumerate(bad):
            pub.publish(msg)
            spin_until(test_node, lambda: False, timeout=0.2)
            assert send_and_await(test_node, pub, collect, valid[i % len(valid)], f'{name}_valid_{i}'), \
                f'{name}: valid frame {i} (after malformed frame {i}) got no detections'
            if i % len(valid) == 0:
                assert 'dog' in labels_of(next(m for m in collect.detections
                                               if m.header.frame_id == f'{name}_valid_{i}'))
    for node, collect, bad in ((raw_node, raw_collect, bad_raw), (comp_node, comp_collect, bad_comp)):
        values = await_values(test_node, collect, lambda v: int(v['frames_malformed']) >= len(bad))
        assert node.alive(), node.output()[-3000:]
        assert values['frames_malformed'] == str(len(bad)), values
        assert values['frames_failed'] == '0' and values['frames_lost'] == '0', values
        assert any(s.level == b'\x01' and 'malformed' in s.message for s in collect.statuses)
    assert 'max_decoded_pixels' in raw_collect.latest_values()['last_problem'] or \
        'pixels' in ''.join(s.message for s in raw_collect.statuses)
    assert raw_collect.latest_values()['max_decoded_pixels'] == str(4 * 768 * 576)
    assert comp_collect.latest_values()['max_decoded_pixels'] == '1000000'
    for collect in (raw_collect, comp_collect):        # the problems age out of the 1.5 s window
        values = await_values(test_node, collect, lambda v: v['frames_malformed_in_window'] == '0',
                              timeout=10.0)
        spin_until(test_node, lambda: False, timeout=0.6)
        status = collect.statuses[-1]
        assert status.level == b'\x00', (status.message, values)
        assert collect.latest_values()['frames_malformed'] != '0'   # the lifetime total stays


def kernel_socket_limits() -> dict:
    limits = {}
    for name in ('rmem_max', 'rmem_default'):
        try:
            limits[name] = int(open(f'/proc/sys/net/core/{name}').read())
        except OSError:
            limits[name] = None
    return limits


def publish_frames(test_node, width, height, reliability, driver_profile, count=6, rate=10.0,
                   subscribers=1, depth=1):
    """image_publisher as a camera driver: on Fast DDS defaults (driver_profile None: no profile
    file, AIAT_FASTDDS_PROFILE=0) or with a system-wide profile file; spins the test node until done."""
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items()
           if k not in ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE')}
    if driver_profile is None:
        env['AIAT_FASTDDS_PROFILE'] = '0'
    else:
        from aiat_perception.nodes.common import fast_dds_major, profile_variables
        env.update({variable: str(driver_profile) for variable in profile_variables(fast_dds_major())})
    proc = subprocess.Popen(
        [sys.executable, '-m', 'aiat_perception.nodes.image_publisher', '--ros-args',
         '-p', f"images:=['{assets.darknet_image('dog.jpg')}']", '-p', f'width:={width}',
         '-p', f'height:={height}', '-p', f'rate_hz:={rate}', '-p', f'count:={count}',
         '-p', f'reliability:={reliability}', '-p', f'wait_for_subscribers:={subscribers}',
         '-p', f'depth:={depth}', '--log-level', 'warn'], env=env, cwd=str(ROOT), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    assert spin_until(test_node, lambda: proc.poll() is not None, timeout=60), 'publisher hung'
    assert proc.returncode == 0, proc.stdout.read()[-2000:]
    spin_until(test_node, lambda: False, timeout=0.5)   # the last frames are in flight
    return count


@pytest.mark.slow  # seven publisher processes: about 25 s, 40 s on a loaded machine
def test_large_images_from_a_camera_driver_on_fast_dds_defaults(test_node, start_node):
    """Defect 7: a driver on Fast DDS defaults (no profile file) sending 640x480 and 1280x720 frames
    to the node on our profile.

    What holds, and is asserted: with reliable QoS the default driver delivers every frame; with the
    system-wide profile (README, Transport) best effort delivers every frame; a best-effort frame
    smaller than the default driver's 512 KiB shared-memory segment (320x240) always arrives.
    "Delivers" means every frame reached a reader on our profile: the node or a depth-10 reader in
    this process. Either alone can fall short on a loaded machine: the node's input (sensor QoS,
    depth 1) keeps only the newest frame, by design, and this busy process's reader was seen to miss
    default-driver frames the node took. The node must take some.
    What cannot be fixed from the node's side, and is only printed: best-effort frames larger than
    that segment from the default driver are often lost (measured here: 0-30 % delivered at 10-30 Hz
    in earlier rounds, the same with a UDP-only node and an 8 MiB socket buffer, the kernel counting no
    receive-buffer drop; in December 0-6 of 6 per reader at 10 Hz, differing between the node and
    this process's reader within one run)."""
    from sensor_msgs.msg import Image

    from aiat_perception.nodes.common import FASTDDS_PROFILE_LOCALHOST, sensor_qos

    limits = kernel_socket_limits()
    print(f'\nkernel socket receive buffer: net.core.rmem_max={limits["rmem_max"]} '
          f'net.core.rmem_default={limits["rmem_default"]} (our profile asks for 8388608; the '
          f'kernel clamps the request to rmem_max)')
    collect = Collector(test_node, images=False)
    node = start_node('aiat_perception.nodes.camera_detector', params_file=PARAMS,
                      params=dict(HOSTILE_PARAMS, reliability='best_effort', problem_window_s=60.0))
    # depth 10: these count what the transport delivers, not what a process busy on this loaded
    # machine had time to take (the node's own depth-1 input keeps only the newest frame, by design)
    reliable_frames, best_effort_frames = [], []
    test_node.create_subscription(Image, 'image', reliable_frames.append, sensor_qos('reliable', depth=10))
    test_node.create_subscription(Image, 'image', best_effort_frames.append,
                                  sensor_qos('best_effort', depth=10))
    assert spin_until(test_node, lambda: len(collect.statuses) > 0, timeout=60)

    def node_totals():
        seen = len(collect.statuses)
        spin_until(test_node, lambda: len(collect.statuses) >= seen + 2, timeout=5)
        values = collect.latest_values()
        return int(values['frames_received']), int(values['frames_lost'])

    def delivered(frames, width):
        return sum(1 for m in frames if m.width == width)

    def best_effort_run(width, height, profile, driver):
        best_effort_frames.clear()
        before = node_totals()
        # subscribers: the node and the test's best-effort reader (the reliable one cannot match)
        sent = publish_frames(test_node, width, height, 'best_effort', profile, subscribers=2)
        received, lost = (a - b for a, b in zip(node_totals(), before))
        transported = delivered(best_effort_frames, width)
        report.append(f'{width}x{height} ({width * height * 3} bytes), {driver}, best_effort: '
                      f'{transported}/{sent} delivered by the transport, {received}/{sent} taken by the '
                      f'node, {lost} counted lost')
        return sent, transported, received

    report = []
    for width, height in ((320, 240), (640, 480), (1280, 720)):
        sent, transported, received = best_effort_run(width, height, None, 'driver on defaults')
        if width * height * 3 < 512 * 1024:
            assert max(transported, received) >= sent - 1 and received >= 1, report[-1]
            continue
        reliable_frames.clear()
        # a reliable driver keeps ROS's default depth 10: with depth 1 a frame not yet acknowledged by
        # a subscriber busy on this loaded machine is replaced by the next one (keep last)
        sent = publish_frames(test_node, width, height, 'reliable', None, subscribers=3, depth=10)
        report.append(f'{width}x{height}, driver on defaults, reliable: '
                      f'{delivered(reliable_frames, width)}/{sent} delivered')
        assert delivered(reliable_frames, width) >= sent - 1, report[-1]

        sent, transported, received = best_effort_run(width, height, FASTDDS_PROFILE_LOCALHOST,
                                                       'driver with the system-wide profile')
        assert max(transported, received) >= sent - 1 and received >= 1, report[-1]
    print('\n'.join(report))
    assert node.alive()
