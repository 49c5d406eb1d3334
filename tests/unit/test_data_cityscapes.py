"""Cityscapes gtFine reader: instance polygons -> boxes, group -> ignore, sequences, broken inputs."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from aiat_training.data import DatasetError
from aiat_training.data.readers import read_cityscapes


def write(root, stem, objects, image=True, size=(100, 50), raw=None):
    city = stem.split('_')[0]
    gt = root / 'gtFine' / 'train' / city
    img = root / 'leftImg8bit' / 'train' / city
    gt.mkdir(parents=True, exist_ok=True)
    img.mkdir(parents=True, exist_ok=True)
    if image:
        cv2.imwrite(str(img / f'{stem}_leftImg8bit.png'), np.zeros((size[1], size[0], 3), np.uint8))
    text = raw if raw is not None else json.dumps({'imgHeight': size[1], 'imgWidth': size[0], 'objects': objects})
    (gt / f'{stem}_gtFine_polygons.json').write_text(text)


def poly(label, points, **extra):
    return {'label': label, 'polygon': points, **extra}


def test_polygons_to_boxes(tmp_path):
    write(tmp_path, 'aachen_000001_000019', [
        poly('road', [[0, 30], [99, 30], [99, 49], [0, 49]]),
        poly('car', [[10, 20], [30, 18], [40, 35], [12, 36]]),
        poly('persongroup', [[50, 10], [70, 10], [70, 40]]),
        poly('person', [[80, 5], [85, 5], [85, 30]], deleted=1),
    ])
    write(tmp_path, 'aachen_000001_000020', [poly('person', [[0, 0], [99, 0], [99, 49]])])
    write(tmp_path, 'bremen_000002_000001', [])
    ds = read_cityscapes(tmp_path)
    assert len(ds) == 3 and not ds.issues
    np.testing.assert_allclose(ds[0].boxes, [[10, 18, 41, 37]])
    assert ds.class_names[ds[0].labels[0]] == 'car'
    np.testing.assert_allclose(ds[0].ignore, [[50, 10, 71, 41]])
    np.testing.assert_allclose(ds[1].boxes, [[0, 0, 100, 50]])
    assert [s.sequence for s in ds] == ['aachen_000001', 'aachen_000001', 'bremen_000002']


BROKEN = {
    'box_outside_image': poly('car', [[10, 10], [150, 10], [150, 30]]),
    'unknown_class': poly('spaceship', [[10, 10], [20, 10], [20, 30]]),
    'malformed': poly('car', [[10, 10], [20, 10]]),
}


@pytest.mark.parametrize('kind', sorted(BROKEN))
def test_broken_object(tmp_path, kind):
    write(tmp_path, 'ulm_000001_000001', [poly('car', [[1, 1], [9, 1], [9, 9]]), BROKEN[kind]])
    with pytest.raises(DatasetError) as err:
        read_cityscapes(tmp_path)
    assert err.value.issue.kind == kind and 'objects[1]' in str(err.value)
    assert 'ulm_000001_000001_gtFine_polygons.json' in err.value.issue.file
    ds = read_cityscapes(tmp_path, on_error='skip')
    assert ds.box_count() == 1 and [i.kind for i in ds.issues] == [kind]


def test_missing_image_and_malformed_file(tmp_path):
    write(tmp_path, 'ulm_000001_000001', [poly('car', [[1, 1], [9, 1], [9, 9]])])
    write(tmp_path, 'ulm_000001_000002', [poly('car', [[1, 1], [9, 1], [9, 9]])], image=False)
    write(tmp_path, 'ulm_000001_000003', [], raw='{"imgHeight": 50,\n "objects": [')
    with pytest.raises(DatasetError, match='000002.*missing_image'):
        read_cityscapes(tmp_path)
    ds = read_cityscapes(tmp_path, on_error='skip')
    assert len(ds) == 1 and sorted(i.kind for i in ds.issues) == ['malformed_file', 'missing_image']


@pytest.mark.parametrize('height', [10 ** 400, -10 ** 400], ids=['huge', 'huge-negative'])
def test_image_size_beyond_float_range_is_a_malformed_file(tmp_path, height):
    # found by tests/fuzz (issue 10): math.isfinite() of the int raised OverflowError
    write(tmp_path, 'aachen_000001_000019', [], raw=json.dumps({'imgWidth': 100, 'imgHeight': height, 'objects': []}))
    with pytest.raises(DatasetError, match='aachen_000001_000019_gtFine_polygons.json: malformed_file'):
        read_cityscapes(tmp_path)
    ds = read_cityscapes(tmp_path, on_error='skip')
    assert len(ds) == 0 and [i.kind for i in ds.issues] == ['malformed_file']
