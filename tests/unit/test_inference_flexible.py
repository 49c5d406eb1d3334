"""Flexible (fully convolutional) bundles: validation, aspect-keeping input sizes, decoding per size."""
from __future__ import annotations

import numpy as np
import pytest
import yaml

from aiat_perception.inference import Detector
from aiat_perception.inference.bundle import MAX_INPUT_PIXELS, BundleError, load_bundle
from aiat_perception.inference.cells import num_cells
from aiat_perception.inference.input_size import aspect_input_size
from aiat_perception.inference.preprocess import Preprocessor
from aiat_perception.inference.synthetic import make_synthetic_bundle


@pytest.fixture(scope='module')
def flexible(tmp_path_factory):
    return make_synthetic_bundle(tmp_path_factory.mktemp('f') / 'flex', height=64, width=64,
                                 resize='keep_aspect', flexible=True)


@pytest.mark.parametrize('image, budget, expected', [
    ((1242, 375), 416 * 416, (224, 768)),      # KITTI
    ((1280, 720), 416 * 416, (288, 544)),      # 16:9
    ((640, 480), 416 * 416, (352, 480)),       # 4:3
    ((416, 416), 416 * 416, (416, 416)),
    ((375, 1242), 416 * 416, (768, 224)),      # portrait
])
def test_aspect_input_size_keeps_aspect_within_budget(image, budget, expected):
    net_h, net_w = aspect_input_size(*image, budget, 32)
    assert (net_h, net_w) == expected
    assert net_h % 32 == 0 and net_w % 32 == 0 and net_h * net_w <= budget
    w, h = image
    assert abs((net_w / w) - (net_h / h)) / max(net_w / w, net_h / h) < 0.15


def test_aspect_input_size_limits():
    assert aspect_input_size(100000, 10, 416 * 416, 32)[0] == 32      # a sliver stays inside the budget
    h, w = aspect_input_size(100000, 10, 416 * 416, 32)
    assert h * w <= 416 * 416
    with pytest.raises(ValueError, match='MAX_INPUT_PIXELS'):
        aspect_input_size(640, 480, MAX_INPUT_PIXELS + 1, 32)
    with pytest.raises(ValueError, match='pixel budget'):
        aspect_input_size(640, 480, 100, 32)
    with pytest.raises(ValueError, match='whole number'):
        aspect_input_size(640, 480, 1.5e5, 32)


def test_flexible_bundle_round_trip_and_old_bundles_load(flexible, tmp_path):
    b = load_bundle(flexible)
    assert b.input.flexible and b.input.size_multiple == 32 and b.input.resize == 'keep_aspect'
    assert b.outputs['scores'].shape[1] == 'cells'
    assert yaml.safe_load((flexible / 'bundle.yaml').read_text())['input']['flexible'] is True
    fixed = load_bundle(make_synthetic_bundle(tmp_path / 'fixed'))
    assert not fixed.input.flexible and 'flexible' not in fixed.to_dict()['input']


def _edit(bundle_dir, **changes):
    data = yaml.safe_load((bundle_dir / 'bundle.yaml').read_text())
    for key, value in changes.items():
        section, name = key.split('__')
        if value is None:
            data[section].pop(name, None)
        else:
            data[section][name] = value
    (bundle_dir / 'bundle.yaml').write_text(yaml.safe_dump(data))


@pytest.mark.parametrize('changes, message', [
    ({'input__size_multiple': 48}, 'not a multiple of the largest stride'),
    ({'input__size_multiple': 'x'}, 'size_multiple'),
    ({'input__height': 80}, 'not a multiple of size_multiple'),
    ({'input__flexible': 'yes'}, 'flexible'),
    ({'input__flexible': None, 'input__size_multiple': None}, 'keep_aspect'),
    ({'input__flexible': None}, 'size_multiple'),
    ({'input__max_stretch': 0.5}, 'max_stretch'),
    ({'input__max_stretch': float('nan')}, 'max_stretch'),
    ({'input__max_stretch': 5.0}, 'max_stretch'),
    ({'input__flexible': None, 'input__size_multiple': None, 'input__resize': 'letterbox',
      'input__max_stretch': 1.2}, 'max_stretch'),
])
def test_flexible_metadata_is_validated(tmp_path, changes, message):
    path = make_synthetic_bundle(tmp_path / 'b', resize='keep_aspect', flexible=True)
    _edit(path, **changes)
    with pytest.raises(BundleError, match=message) as info:
        load_bundle(path)
    assert 'bundle.yaml' in str(info.value)


def test_flexible_metadata_needs_a_graph_with_dynamic_size(tmp_path):
    path = make_synthetic_bundle(tmp_path / 'b')          # graph fixed at 64x64
    _edit(path, input__flexible=True)
    data = yaml.safe_load((path / 'bundle.yaml').read_text())
    for out in data['outputs'].values():
        out['shape'][1] = 'cells'
    (path / 'bundle.yaml').write_text(yaml.safe_dump(data))
    with pytest.raises(BundleError, match='fixed at 64 in the graph'):
        load_bundle(path)


def test_keep_aspect_needs_flexible_bundle(tmp_path):
    fixed = make_synthetic_bundle(tmp_path / 'fixed')
    with pytest.raises(ValueError, match='flexible'):
        Detector(fixed, resize='keep_aspect')
    with pytest.raises(ValueError, match='resize'):
        Detector(fixed, resize='squash')


def test_detector_picks_input_per_resolution_and_decodes_its_cells(flexible):
    detector = Detector(flexible, score_threshold=0.3, pixel_budget=64 * 64)
    rng = np.random.default_rng(0)
    wide = rng.integers(0, 255, (60, 200, 3), np.uint8)
    square = rng.integers(0, 255, (64, 64, 3), np.uint8)
    assert detector.preprocessor.input_size(200, 60) == (32, 128)
    results = detector.detect([wide, square, wide])
    assert len(results) == 3
    # same image -> same detections, batched among other sizes
    np.testing.assert_array_equal(results[0].boxes, results[2].boxes)
    alone = detector.detect_one(wide)
    np.testing.assert_allclose(alone.boxes, results[0].boxes, atol=1e-4)
    assert detector.decoder_for(32, 128).num_cells == num_cells(32, 128, (8, 16, 32))
    for det, img in ((results[0], wide), (results[1], square)):
        assert np.all(det.boxes[:, 2] <= img.shape[1]) and np.all(det.boxes[:, 3] <= img.shape[0])
    # stretch and letterbox still run the trained size
    for mode in ('stretch', 'letterbox'):
        other = Detector(flexible, resize=mode)
        other.detect_one(wide)
        assert other.last_input_size == (64, 64)


def test_keep_aspect_letterboxes_into_the_chosen_size(flexible):
    spec = load_bundle(flexible).input
    pre = Preprocessor(spec, pixel_budget=64 * 64)
    image = np.full((60, 200, 3), 200, np.uint8)
    tensor, (t,) = pre(image)
    assert tensor.shape == (1, 3, 32, 128)
    assert t.scale_x == pytest.approx(t.scale_y, rel=0.02)      # aspect kept
    resized, t2 = pre.resize(image)
    assert resized.shape == (32, 128, 3) and t2 == t
    with pytest.raises(ValueError, match='one network input size'):
        pre([image, np.zeros((64, 64, 3), np.uint8)])


@pytest.mark.parametrize('image, expected_size, expected_stretch', [
    ((640, 480), (64, 64), 4.0 / 3.0),     # 4:3 is within max_stretch: the trained square, stretched
    ((500, 400), (64, 64), 1.25),
    ((400, 500), (64, 64), 0.8),           # portrait: squeezed vertically
    ((1280, 720), (64, 64), 4.0 / 3.0),    # 16:9 -> 4:3 at most, the rest letterboxed (64x48)
    ((64, 64), (64, 64), 1.0),
])
def test_keep_aspect_stretches_toward_the_trained_aspect_by_at_most_max_stretch(
        flexible, image, expected_size, expected_stretch):
    import dataclasses
    spec = dataclasses.replace(load_bundle(flexible).input, max_stretch=4.0 / 3.0)
    pre = Preprocessor(spec)
    w, h = image
    assert pre.stretch(w, h) == pytest.approx(expected_stretch)
    assert pre.input_size(w, h) == expected_size
    transform, region_w, region_h = pre.geometry(w, h)
    assert transform.scale_x / transform.scale_y == pytest.approx(1.0 / expected_stretch, rel=0.05)
    assert region_w <= expected_size[1] and region_h <= expected_size[0]
    # without max_stretch the aspect ratio is kept exactly as before
    plain = Preprocessor(dataclasses.replace(spec, max_stretch=1.0))
    assert plain.stretch(w, h) == 1.0
    assert plain.input_size(w, h) == aspect_input_size(w, h, 64 * 64, 32)


def test_max_stretch_round_trips_through_bundle_yaml(tmp_path):
    path = make_synthetic_bundle(tmp_path / 'b', resize='keep_aspect', flexible=True)
    _edit(path, input__max_stretch=1.25)
    b = load_bundle(path)
    assert b.input.max_stretch == 1.25 and b.to_dict()['input']['max_stretch'] == 1.25
    assert 'max_stretch' not in load_bundle(make_synthetic_bundle(tmp_path / 'f')).to_dict()['input']


def test_cached_pretrained_bundle_of_an_older_version_is_outdated(tmp_path):
    import dataclasses

    from aiat_perception.pretrained import PRETRAINED_VERSION, VERSION_KEY, outdated_reason
    old = load_bundle(make_synthetic_bundle(tmp_path / 'old'))     # no version: the stretch bundle
    assert 'version 1' in outdated_reason(old)
    current = dataclasses.replace(old, provenance={VERSION_KEY: PRETRAINED_VERSION})
    assert outdated_reason(current) is None


def test_tile_windows_cover_the_frame_with_overlap():
    from aiat_perception.inference.tiling import auto_grid, cut_by_tile_edge, parse_grid, tile_windows
    assert auto_grid(1242, 375) == (1, 3) and auto_grid(375, 1242) == (3, 1) and auto_grid(640, 480) == (1, 1)
    assert tile_windows(640, 480, 1, 1, 0.2) == []
    wins = tile_windows(1242, 375, 1, 3, 0.2)
    assert len(wins) == 3 and wins[0][0] == 0 and wins[-1][2] == 1242
    assert all(y0 == 0 and y1 == 375 for _, y0, _, y1 in wins)
    for (a0, _, a1, _), (b0, _, b1, _) in zip(wins, wins[1:]):
        assert b0 < a1 and (a1 - b0) == pytest.approx(0.2 * (a1 - a0), abs=2)
    boxes = np.array([[10, 10, 50, 50], [wins[1][0] + 1, 10, wins[1][0] + 40, 60],
                      [wins[1][2] - 30, 10, wins[1][2] - 1, 60]], np.float32)
    assert cut_by_tile_edge(boxes, wins[1], 1242, 375).tolist() == [True, True, True]
    assert cut_by_tile_edge(boxes[:1], wins[0], 1242, 375).tolist() == [False]
    for bad in ((1, 0), (17, 1), (1,)):
        with pytest.raises(ValueError):
            parse_grid(bad)
    with pytest.raises(ValueError):
        tile_windows(100, 100, 1, 2, 1.0)


def test_tiling_merges_full_frame_and_tiles(flexible):
    rng = np.random.default_rng(3)
    image = rng.integers(0, 255, (60, 200, 3), np.uint8)
    plain = Detector(flexible, score_threshold=0.3, pixel_budget=64 * 64)
    tiled = Detector(flexible, score_threshold=0.3, pixel_budget=64 * 64, tiling=True)
    full = plain.detect_one(image)
    merged, again = tiled.detect([image, image])
    np.testing.assert_array_equal(merged.boxes, again.boxes)
    assert tiled.last_input_size == (32, 128)          # the full frame's input
    assert np.all(merged.boxes[:, 2] <= 200) and np.all(merged.boxes[:, 3] <= 60)
    assert np.all(np.diff(merged.scores) <= 0) and len(merged) <= tiled.max_detections
    # every full-frame detection survives or is replaced by a higher-scoring overlapping box
    assert merged.scores.max(initial=0) >= full.scores.max(initial=0)
    with pytest.raises(ValueError, match='tile_overlap'):
        Detector(flexible, tiling=True, tile_overlap=1.0)
