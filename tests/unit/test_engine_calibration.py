"""INT8 calibration batches: the bundle's own preprocessing of a directory or a split file."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from aiat_perception.engine.calibration import (CalibrationBatches, CalibrationError,
                                                calibration_image_paths)
from aiat_perception.inference.bundle import load_bundle
from aiat_perception.inference.preprocess import Preprocessor
from aiat_perception.inference.synthetic import make_synthetic_bundle


@pytest.fixture(scope='module')
def bundle(tmp_path_factory):
    return load_bundle(make_synthetic_bundle(tmp_path_factory.mktemp('b') / 'synthetic'))


@pytest.fixture(scope='module')
def images(tmp_path_factory):
    """Seven photos of different sizes and formats (noise + shapes: exercises resizing)."""
    folder = tmp_path_factory.mktemp('images')
    rng = np.random.default_rng(3)
    sizes = [(48, 80), (120, 90), (64, 64), (33, 200), (240, 320), (100, 100), (17, 29)]
    for i, (h, w) in enumerate(sizes):
        image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        cv2.rectangle(image, (2, 2), (w // 2, h // 2), (0, 200, 50), -1)
        cv2.imwrite(str(folder / f'img{i}.{"png" if i % 2 else "jpg"}'), image)
    (folder / 'notes.txt').write_text('not an image')
    return folder


def _reference(bundle, paths):
    pre = Preprocessor(bundle.input)
    tensor, _ = pre([cv2.imread(str(p), cv2.IMREAD_COLOR) for p in paths], 'bgr8')
    return tensor.copy()


def test_directory_batches_equal_the_bundle_preprocessing(bundle, images):
    batches = CalibrationBatches(bundle, images, batch_size=3)
    paths = calibration_image_paths(images)
    assert [p.name for p in paths] == [f'img{i}.{"png" if i % 2 else "jpg"}' for i in range(7)]
    assert len(batches) == 2 and batches.images_used == 6 and batches.shape == (3, 3, 64, 64)
    got = list(batches)
    assert len(got) == 2
    for k, batch in enumerate(got):
        assert batch.dtype == np.float32 and batch.flags['C_CONTIGUOUS'] and batch.shape == (3, 3, 64, 64)
        np.testing.assert_array_equal(batch, _reference(bundle, paths[3 * k:3 * k + 3]))
    # batches are copies: the preprocessor's reused buffer does not alias them
    assert not np.shares_memory(got[0], got[1])


def test_split_file_batches_equal_the_bundle_preprocessing(bundle, images, tmp_path):
    chosen = ['img4.jpg', 'img1.png', 'img6.jpg', 'img3.png']
    split = tmp_path / 'train.txt'
    # absolute paths as `aiat-data split` writes them, one relative to the split file's directory,
    # a comment and a blank line
    (tmp_path / 'photos').symlink_to(images)
    split.write_text(f'{images / chosen[0]}\n# comment\n\n{images / chosen[1]}\n'
                     f'{images / chosen[2]}\nphotos/{chosen[3]}\n')
    batches = CalibrationBatches(bundle, split, batch_size=2)
    assert [p.name for p in batches.paths] == chosen
    got = np.concatenate(list(batches))
    np.testing.assert_array_equal(got, _reference(bundle, [images / c for c in chosen]))


def test_fewer_images_than_the_batch_size_shrink_the_batch(bundle, images):
    batches = CalibrationBatches(bundle, images, batch_size=32, limit=5)
    assert batches.batch_size == 5 and len(batches) == 1
    np.testing.assert_array_equal(next(iter(batches)), _reference(bundle, batches.paths))
    assert len(batches.fingerprint()) == 64


def test_letterbox_and_gray_bundles_use_their_own_preprocessing(tmp_path, images):
    import yaml
    src = make_synthetic_bundle(tmp_path / 'lb')
    data = yaml.safe_load((src / 'bundle.yaml').read_text())
    data['input']['resize'] = 'letterbox'
    data['input']['color_order'] = 'RGB'
    (src / 'bundle.yaml').write_text(yaml.safe_dump(data))
    bundle = load_bundle(src)
    batches = CalibrationBatches(bundle, images, batch_size=7)
    np.testing.assert_array_equal(next(iter(batches)), _reference(bundle, batches.paths))


def test_bad_sources_are_named(bundle, images, tmp_path):
    with pytest.raises(CalibrationError, match='calibration data not found'):
        CalibrationBatches(bundle, tmp_path / 'nowhere')
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(CalibrationError, match='no images'):
        calibration_image_paths(empty)
    split = tmp_path / 'split.txt'
    split.write_text(f'{images / "img0.jpg"}\nmissing.jpg\n')
    with pytest.raises(CalibrationError, match=r'split.txt:2: image .missing.jpg. does not exist'):
        calibration_image_paths(split)
    split.write_text('# nothing\n')
    with pytest.raises(CalibrationError, match='lists no images'):
        calibration_image_paths(split)
    broken = tmp_path / 'broken'
    broken.mkdir()
    (broken / 'a.jpg').write_bytes(b'not a jpeg')
    with pytest.raises(CalibrationError, match='a.jpg: not an image OpenCV can read'):
        list(CalibrationBatches(bundle, broken, batch_size=1))
    with pytest.raises(CalibrationError, match='batch size 0'):
        CalibrationBatches(bundle, images, batch_size=0)
    with pytest.raises(CalibrationError, match='limit 0'):
        calibration_image_paths(images, limit=0)
