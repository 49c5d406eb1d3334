"""TensorRT with flexible bundles, everything that runs without TensorRT: the profile's size box
from the bundle's input spec, its record in the engine metadata and cache key, the per-run shape
check and its refusal message, the buffer growth rule, and the Detector's keep_aspect sizes inside
a backend's box."""
from __future__ import annotations

import dataclasses
import json
import shlex

import numpy as np
import pytest

from aiat_perception.engine.cache import (ENGINE_FILE, EngineMissing, cache_entry, cache_key,
                                          ensure_engine, find_cached_engine)
from aiat_perception.engine.metadata import (EngineMetadata, EngineMetadataError, EngineMismatch,
                                             MachineFacts, build_command, check_engine, differences,
                                             read_metadata, write_metadata)
from aiat_perception.engine.trt_api import tensorrt_problem
from aiat_perception.engine.profile import (ProfileError, SizeRange, check_input_shape, default_max_size,
                                            input_size_range, parse_size, profile_shapes,
                                            size_range_of_shapes)
from aiat_perception.inference import Detector
from aiat_perception.inference.backends import create_backend
from aiat_perception.inference.bundle import MAX_INPUT_PIXELS, load_bundle
from aiat_perception.inference.input_size import aspect_input_size
from aiat_perception.inference.synthetic import make_synthetic_bundle
from aiat_perception.inference.tensorrt_backend import (check_engine_io, grown_buffers, shape_refusal,
                                                        tensor_nbytes)

ORIN = MachineFacts('10.3.0', 'Orin', '8.7')


@pytest.fixture(scope='module')
def flexible(tmp_path_factory):
    return load_bundle(make_synthetic_bundle(tmp_path_factory.mktemp('f') / 'flex', height=64, width=64,
                                             resize='keep_aspect', flexible=True))


@pytest.fixture(scope='module')
def fixed(tmp_path_factory):
    return load_bundle(make_synthetic_bundle(tmp_path_factory.mktemp('x') / 'fixed'))


def _meta(bundle, sizes=None, **changes):
    spec = bundle.input
    fields = dict(tensorrt_version='10.3.0', gpu_name='Orin', compute_capability='8.7', precision='fp16',
                  batch=(1, 1, 2), bundle_sha256=bundle.model.sha256, bundle_name=bundle.name,
                  input_name=spec.name, input_shape=(spec.channels, spec.height, spec.width),
                  builder_flags=('FP16',), input_sizes=sizes)
    fields.update(changes)
    return EngineMetadata(**fields)


# --- the profile box -------------------------------------------------------------------------

def test_flexible_profile_box_from_the_input_spec(flexible):
    spec = flexible.input
    sizes = input_size_range(spec)
    assert sizes == SizeRange((32, 32), (64, 64), (128, 128), 32)    # 64x64 x 4:1 aspect -> 128 side
    assert profile_shapes(spec, (1, 2, 4)) == {
        'images': ((1, 3, 32, 32), (2, 3, 64, 64), (4, 3, 128, 128))}
    assert profile_shapes(spec, (1, 1, 1), (96, 320), (64, 32))['images'] == (
        (1, 3, 64, 32), (1, 3, 64, 64), (1, 3, 96, 320))
    assert sizes.describe() == 'min 32x32, opt 64x64, max 128x128'
    assert sizes.admits(32, 128) and not sizes.admits(32, 160) and not sizes.admits(160, 32)


def test_default_max_size_holds_kitti_keep_aspect_inputs_of_the_trained_pixel_count():
    spec = dataclasses.replace(make_spec(416, 416), flexible=True, size_multiple=32)
    assert default_max_size(spec) == (832, 832)
    box = input_size_range(spec)
    for image in ((1242, 375), (1280, 720), (640, 480), (375, 1242), (1600, 400)):    # up to 4:1
        assert box.admits(*aspect_input_size(*image, 416 * 416, 32))
    huge = dataclasses.replace(spec, height=4096, width=2048)
    h, w = default_max_size(huge)
    assert h * w <= MAX_INPUT_PIXELS and h % 32 == 0 and (h, w) == (4096, 4096)


def make_spec(h, w):
    from aiat_perception.inference.bundle import InputSpec
    return InputSpec('images', h, w, 'BGR', 'stretch', (0.0,) * 3, (1.0,) * 3)


@pytest.mark.parametrize('min_size, max_size, message', [
    (None, (96, 100), 'multiples of the bundle\'s size_multiple 32'),
    ((48, 32), None, 'multiples'),
    ((96, 32), None, 'at most the trained 64x64'),
    (None, (32, 128), 'at least the trained 64x64'),
    (None, (4096, 4128), 'over MAX_INPUT_PIXELS'),
])
def test_bad_profile_boxes_are_refused(flexible, min_size, max_size, message):
    with pytest.raises(ProfileError, match=message):
        input_size_range(flexible.input, min_size, max_size)


def test_fixed_bundle_box_is_its_size(fixed):
    spec = fixed.input
    sizes = input_size_range(spec)
    assert sizes.fixed and sizes.min == sizes.max == (spec.height, spec.width)
    with pytest.raises(ProfileError, match='needs a flexible bundle'):
        input_size_range(spec, None, (spec.height * 2, spec.width))


@pytest.mark.parametrize('text, expected', [('448x1280', (448, 1280)), (' 96 X 160', (96, 160)),
                                            ((32, 64), (32, 64))])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize('text', ['448', '448x', 'ax3', '0x32', '-32x32', (1.5, 2), (True, 3), (1, 2, 3)])
def test_parse_size_refuses_bad_sizes(text):
    with pytest.raises(ProfileError, match='size'):
        parse_size(text)


def test_profile_shapes_as_tensorrt_returns_them_give_the_box():
    sizes = size_range_of_shapes([(1, 3, 32, 32), (1, 3, 64, 64), (2, 3, 96, 320)], 32)
    assert sizes == SizeRange((32, 32), (64, 64), (96, 320), 32)
    with pytest.raises(ProfileError, match='NCHW'):
        size_range_of_shapes([(1, 3, 32), (1, 3, 64), (1, 3, 96)])


# --- per-run shape checks and buffers -----------------------------------------------------------

def test_input_shapes_outside_the_profile_are_refused_with_the_rebuild_command(flexible):
    sizes = SizeRange((32, 32), (64, 64), (96, 160), 32)
    assert check_input_shape((1, 3, 96, 160), sizes, (1, 1, 2)) is None
    assert check_input_shape((2, 3, 32, 32), sizes, (1, 1, 2)) is None
    assert check_input_shape((3, 3, 64, 64), sizes, (1, 1, 2)) == 'batch 3 is outside 1..2'
    assert check_input_shape((1, 3, 64, 192), sizes, (1, 1, 2)) == (
        'input 64x192 is outside the profile box height 32..96, width 32..160')
    command = build_command(flexible.path, 'fp16', (1, 1, 2), '/cache/model.engine', sizes=sizes)
    assert shape_refusal('/cache/model.engine', (1, 3, 64, 64), sizes, (1, 1, 2), command) is None
    message = shape_refusal('/cache/model.engine', (1, 3, 64, 192), sizes, (1, 1, 2), command)
    assert message.startswith('tensorrt backend: engine /cache/model.engine cannot take input [1, 3, 64, 192]: '
                              'input 64x192 is outside the profile box height 32..96, width 32..160')
    assert '(profile: batch 1:1:2, min 32x32, opt 64x64, max 96x160)' in message
    assert message.endswith(command)
    words = shlex.split(command)
    assert words[:3] == ['aiat-engine', 'build', str(flexible.path)]
    assert words[words.index('--min-size') + 1] == '32x32' and words[words.index('--max-size') + 1] == '96x160'


def test_buffers_grow_only_when_a_shape_needs_more():
    assert tensor_nbytes((1, 3, 64, 64), np.float32) == 3 * 64 * 64 * 4
    assert tensor_nbytes((2, 84, 10), np.float16) == 2 * 84 * 10 * 2
    with pytest.raises(ValueError, match='dynamic'):
        tensor_nbytes((-1, 3, 64, 64), np.float32)
    first = {'images': 100, 'scores': 40}
    assert grown_buffers({}, first) == first                     # first run allocates everything
    assert grown_buffers(first, {'images': 60, 'scores': 40}) == {}   # smaller frame: reuse
    assert grown_buffers(first, {'images': 160, 'scores': 40}) == {'images': 160}
    assert grown_buffers(first, {'images': 100, 'scores': 40, 'box_dist': 8}) == {'box_dist': 8}


def test_engine_io_with_dynamic_height_and_width_fits_a_flexible_bundle(flexible):
    classes, box = flexible.num_classes, flexible.outputs['boxes'].shape[2]
    assert check_engine_io(flexible, {'images': (-1, 3, -1, -1)},
                           {'scores': (-1, -1, classes), 'box_dist': (-1, -1, box)}) == []
    problems = check_engine_io(flexible, {'images': (-1, 1, -1, -1)},
                               {'scores': (-1, -1, classes + 1), 'box_dist': (-1, -1, box)})
    assert len(problems) == 2 and "engine input 'images' is [-1, 1, -1, -1]" in problems[0]


# --- metadata and cache ---------------------------------------------------------------------------

def test_metadata_records_the_size_box(flexible, tmp_path):
    sizes = input_size_range(flexible.input, None, (96, 160))
    engine = tmp_path / 'model.engine'
    write_metadata(engine, _meta(flexible, sizes))
    data = json.loads((tmp_path / 'model.engine.json').read_text())
    assert data['input_sizes'] == {'min': [32, 32], 'opt': [64, 64], 'max': [96, 160], 'multiple': 32}
    assert read_metadata(engine).input_sizes == sizes
    write_metadata(engine, _meta(flexible))                 # files from before flexible bundles
    assert json.loads((tmp_path / 'model.engine.json').read_text())['input_sizes'] is None
    assert read_metadata(engine).input_sizes is None


@pytest.mark.parametrize('value, message', [
    ('96x160', 'expected {min, opt, max}'),
    ({'min': [32, 32], 'opt': [64, 64]}, 'size None: expected HEIGHTxWIDTH'),
    ({'min': [32, 32], 'opt': [64, 64], 'max': [48, 160]}, 'needs min <= opt <= max'),
    ({'min': [32, 32], 'opt': [32, 64], 'max': [96, 160]}, 'differs from input_shape'),
    ({'min': [32, 32], 'opt': [64, 64], 'max': [8192, 8192]}, 'over MAX_INPUT_PIXELS'),
    ({'min': [32, 32], 'opt': [64, 64], 'max': [96, 160], 'multiple': 0}, 'multiple'),
    ({'min': [32, 32], 'opt': [64, 64], 'max': [96, 1.5e300]}, 'positive whole numbers'),
])
def test_bad_size_boxes_in_metadata_are_refused(flexible, tmp_path, value, message):
    engine = tmp_path / 'model.engine'
    write_metadata(engine, _meta(flexible))
    path = tmp_path / 'model.engine.json'
    data = json.loads(path.read_text())
    data['input_sizes'] = value
    path.write_text(json.dumps(data))
    with pytest.raises(EngineMetadataError, match=f'{path}: input_sizes.*{message}'.replace('{', r'\{')):
        read_metadata(engine)


def test_an_input_size_outside_the_engine_is_a_difference_with_a_widened_rebuild(flexible):
    meta = _meta(flexible, SizeRange((32, 32), (64, 64), (96, 160), 32))
    assert differences(meta, ORIN, flexible, 'fp16', 1, (96, 160)) == []
    found = differences(meta, ORIN, flexible, 'fp16', 1, (64, 224))
    assert found == ['input size: engine profile min 32x32, opt 64x64, max 96x160 does not admit 64x224']
    with pytest.raises(EngineMismatch) as caught:
        check_engine('/e/model.engine', meta, ORIN, flexible, 'fp16', 1, (64, 224))
    words = shlex.split(caught.value.command)
    assert words[words.index('--max-size') + 1] == '96x224'       # widened to hold the wanted size
    # an engine without a recorded box takes its input_shape only
    old = _meta(flexible)
    assert differences(old, input_size=(64, 64)) == []
    assert differences(old, input_size=(64, 96))[0].startswith('input size: engine profile min 64x64')


def test_cache_key_and_entry_follow_the_size_box(flexible, fixed, tmp_path):
    args = dict(bundle_sha256='a' * 64, input_shape=(3, 64, 64), machine=ORIN, precision='fp16',
                batch=(1, 1, 1))
    plain = cache_key(**args)
    assert cache_key(**args, input_sizes=SizeRange((64, 64), (64, 64), (64, 64))) == plain   # fixed: old key
    wide = cache_key(**args, input_sizes=SizeRange((32, 32), (64, 64), (96, 160), 32))
    assert wide != plain != cache_key(**args, input_sizes=SizeRange((32, 32), (64, 64), (128, 128), 32))
    assert cache_entry(tmp_path, flexible, ORIN, 'fp16', (1, 1, 1)) != \
        cache_entry(tmp_path, flexible, ORIN, 'fp16', (1, 1, 1), max_size=(96, 160))

    entry = cache_entry(tmp_path, flexible, ORIN, 'fp16', (1, 1, 1), max_size=(96, 160))
    entry.mkdir(parents=True)
    engine = entry / ENGINE_FILE
    engine.write_bytes(b'engine bytes')
    box = input_size_range(flexible.input, None, (96, 160))
    write_metadata(engine, _meta(flexible, box, batch=(1, 1, 1)))
    assert find_cached_engine(entry, ORIN, flexible, 'fp16', (1, 1, 1), box) == engine
    assert find_cached_engine(entry, ORIN, flexible, 'fp16', (1, 1, 1), input_size_range(flexible.input)) is None
    assert ensure_engine(flexible, 'fp16', (1, 1, 1), tmp_path, build_if_missing=False, machine=ORIN,
                         max_size=(96, 160)) == engine
    with pytest.raises(EngineMissing, match='--min-size 32x32 --max-size 128x128'):
        ensure_engine(flexible, 'fp16', (1, 1, 1), tmp_path, build_if_missing=False, machine=ORIN)


# --- the Detector's size picker inside a backend's box ----------------------------------------------

@pytest.mark.parametrize('image, box, expected', [
    ((1242, 375), None, (224, 768)),
    ((1242, 375), ((32, 32), (832, 832)), (224, 768)),
    ((1242, 375), ((32, 32), (416, 640)), (224, 640)),     # the width cap: a smaller, aspect-kept scale
    ((1242, 375), ((256, 32), (832, 832)), (256, 672)),    # the height floor: the width pays for it
    ((375, 1242), ((32, 32), (640, 416)), (640, 224)),
    ((4000, 10), ((32, 32), (416, 640)), (32, 640)),        # a sliver
])
def test_aspect_input_size_stays_inside_the_box(image, box, expected):
    low, high = box or (None, None)
    size = aspect_input_size(*image, 416 * 416, 32, low, high)
    assert size == expected
    if box:
        assert low[0] <= size[0] <= high[0] and low[1] <= size[1] <= high[1]
    assert size[0] * size[1] <= max(416 * 416, low[0] * low[1] if low else 0)


def test_detector_keeps_keep_aspect_sizes_inside_the_backend_box(flexible):
    backend = create_backend('onnxruntime', flexible, device='cpu')
    backend.input_sizes = SizeRange((32, 32), (64, 64), (64, 96), 32)   # as a TensorRT engine reports it
    detector = Detector(flexible, backend=backend, pixel_budget=64 * 64)
    wide = np.random.default_rng(0).integers(0, 255, (60, 200, 3), np.uint8)
    assert Detector(flexible, pixel_budget=64 * 64).preprocessor.input_size(200, 60) == (32, 128)
    assert detector.preprocessor.input_size(200, 60) == (32, 96)
    detector.detect_one(wide)
    assert detector.last_input_size == (32, 96)


@pytest.mark.parametrize('args, message', [
    (['--max-size', '100x100'], "max size 100x100: height and width must be multiples of the bundle's size_multiple 32"),
    (['--max-size', 'wide'], "size 'wide': expected HEIGHTxWIDTH, e.g. 448x1280"),
    (['--min-size', '128x32'], 'min size 128x32: at most the trained 64x64'),
])
def test_engine_cli_refuses_bad_size_boxes_before_tensorrt(flexible, capsys, args, message):
    from aiat_perception.engine.cli import main
    assert main(['build', str(flexible.path), '--precision', 'fp32', *args]) == 1
    err = capsys.readouterr().err
    assert err == f'aiat-engine build: {message}\n'


def test_engine_cli_without_tensorrt_still_says_what_to_install_for_a_flexible_bundle(flexible, capsys):
    from aiat_perception.engine.cli import main
    from aiat_perception.engine.trt_api import tensorrt_problem
    if tensorrt_problem() is None:
        pytest.skip('TensorRT is installed here: the message for a missing TensorRT cannot be checked')
    assert main(['build', str(flexible.path), '--max-size', '96x160']) == 1
    assert capsys.readouterr().err.startswith('aiat-engine build: TensorRT is not installed')


def test_int8_calibration_of_a_keep_aspect_bundle_letterboxes_into_the_trained_size(flexible, tmp_path):
    """Calibration runs at one shape (the profile's opt, the trained size): images of any aspect
    are letterboxed into it, the aspect-keeping preprocessing at that size."""
    import cv2

    from aiat_perception.engine.calibration import CalibrationBatches, calibration_image_paths
    from aiat_perception.inference.preprocess import Preprocessor
    rng = np.random.default_rng(4)
    for i, (h, w) in enumerate([(60, 200), (120, 90), (64, 64), (40, 160)]):
        cv2.imwrite(str(tmp_path / f'img{i}.png'), rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    batches = CalibrationBatches(flexible, tmp_path, batch_size=2)
    assert batches.shape == (2, 3, 64, 64)
    letterbox = Preprocessor(dataclasses.replace(flexible.input, resize='letterbox'))
    paths = calibration_image_paths(tmp_path)
    for k, batch in enumerate(batches):
        want, _ = letterbox([cv2.imread(str(p)) for p in paths[2 * k:2 * k + 2]], 'bgr8')
        np.testing.assert_array_equal(batch, want)


@pytest.mark.skipif(tensorrt_problem() is not None,
                    reason=f'needs TensorRT and a GPU (never available where this was written): {tensorrt_problem()}')
def test_flexible_engine_runs_several_sizes_like_onnxruntime_and_refuses_others(flexible, tmp_path):
    """Runs only where TensorRT and an NVIDIA GPU exist: never run yet (see docs/jetson.md)."""
    from aiat_perception.engine.builder import BuildOptions, build_engine
    result = build_engine(flexible, tmp_path / 'model.engine',
                          BuildOptions(precision='fp32', batch=(1, 1, 2), max_size=(96, 160)))
    assert result.metadata.input_sizes == SizeRange((32, 32), (64, 64), (96, 160), 32)
    backend = create_backend('tensorrt', flexible, engine=result.engine_path, warmup=1)
    assert backend.input_sizes == result.metadata.input_sizes
    reference = create_backend('onnxruntime', flexible, device='cpu')
    rng = np.random.default_rng(0)
    for shape in ((1, 3, 64, 64), (2, 3, 96, 160), (1, 3, 32, 96), (2, 3, 64, 64)):   # grows, then reuses
        batch = rng.normal(0, 1, shape).astype(np.float32)
        got, want = backend.run(batch), reference.run(batch)
        for name in want:
            assert got[name].shape == want[name].shape
            np.testing.assert_allclose(got[name], want[name], atol=1e-3)
    with pytest.raises(ValueError, match=r'outside the profile box .* --max-size 96x160'):
        backend.run(np.zeros((1, 3, 64, 192), np.float32))
    detector = Detector(flexible, backend=backend, pixel_budget=64 * 64 * 4)
    detector.detect_one(np.zeros((60, 400, 3), np.uint8))
    assert backend.input_sizes.admits(*detector.last_input_size)
    backend.close()
