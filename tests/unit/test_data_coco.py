"""COCO JSON reader: boxes, crowd -> ignore, sequences, every broken input."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from aiat_training.data import DatasetError
from aiat_training.data.readers import read_coco


def write(tmp_path, annotations, images=None, categories=None, make_images=('a.jpg', 'b.jpg')):
    (tmp_path / 'img').mkdir(exist_ok=True)
    for name in make_images:
        cv2.imwrite(str(tmp_path / 'img' / name), np.zeros((50, 80, 3), np.uint8))
    data = {'images': images or [{'id': 1, 'file_name': 'a.jpg', 'width': 80, 'height': 50, 'video_id': 7},
                                 {'id': 2, 'file_name': 'b.jpg', 'width': 80, 'height': 50}],
            'annotations': annotations,
            'categories': categories or [{'id': 3, 'name': 'person'}, {'id': 1, 'name': 'car'}]}
    path = tmp_path / 'ann.json'
    path.write_text(json.dumps(data))
    return path


GOOD = [{'id': 10, 'image_id': 1, 'category_id': 1, 'bbox': [10, 5, 20, 10]},
        {'id': 11, 'image_id': 1, 'category_id': 3, 'bbox': [40, 0, 10, 30]},
        {'id': 12, 'image_id': 2, 'category_id': 3, 'bbox': [0, 0, 80, 50], 'iscrowd': 1}]


def test_reads_boxes_crowd_and_sequence(tmp_path):
    ds = read_coco(write(tmp_path, GOOD), tmp_path / 'img')
    assert ds.class_names == ['car', 'person']            # ordered by category id
    np.testing.assert_allclose(ds[0].boxes, [[10, 5, 30, 15], [40, 0, 50, 30]])
    assert ds[0].labels.tolist() == [0, 1]
    assert ds[0].sequence == '7' and ds[1].sequence is None
    assert len(ds[1].boxes) == 0
    np.testing.assert_allclose(ds[1].ignore, [[0, 0, 80, 50]])


BROKEN = {
    'box_outside_image': {'id': 20, 'image_id': 2, 'category_id': 1, 'bbox': [70, 0, 30, 10]},
    'invalid_box': {'id': 20, 'image_id': 2, 'category_id': 1, 'bbox': [10, 10, 0, 5]},
    'unknown_class': {'id': 20, 'image_id': 2, 'category_id': 99, 'bbox': [1, 1, 5, 5]},
    'malformed': {'id': 20, 'image_id': 2, 'category_id': 1, 'bbox': [1, 1]},
}


@pytest.mark.parametrize('kind', sorted(BROKEN))
def test_broken_annotation(tmp_path, kind):
    path = write(tmp_path, GOOD + [BROKEN[kind]])
    with pytest.raises(DatasetError) as err:
        read_coco(path, tmp_path / 'img')
    assert err.value.issue.kind == kind
    assert 'annotations[3] (id 20)' in str(err.value) and 'ann.json' in str(err.value)
    ds = read_coco(path, tmp_path / 'img', on_error='skip')
    assert ds.box_count() == 2 and [i.kind for i in ds.issues] == [kind]


def test_missing_image_and_unknown_image_id(tmp_path):
    path = write(tmp_path, GOOD + [{'id': 30, 'image_id': 5, 'category_id': 1, 'bbox': [1, 1, 2, 2]}],
                 make_images=('a.jpg',))
    ds = read_coco(path, tmp_path / 'img', on_error='skip')
    assert len(ds) == 1
    assert sorted(i.kind for i in ds.issues) == ['malformed', 'missing_image']
    assert any('images[1]' in str(i) for i in ds.issues)


def test_malformed_file(tmp_path):
    (tmp_path / 'ann.json').write_text('{"images": [')
    with pytest.raises(DatasetError, match='malformed_file'):
        read_coco(tmp_path / 'ann.json', tmp_path)
    ds = read_coco(tmp_path / 'ann.json', tmp_path, on_error='skip')
    assert len(ds) == 0 and ds.issues[0].kind == 'malformed_file' and ds.issues[0].line == 1


@pytest.mark.parametrize('file_name', ['x' * 300, 'a\0.jpg'])
def test_file_name_the_system_refuses_is_a_missing_image(tmp_path, file_name):
    # found by tests/fuzz (issue 10): Path.is_file() raised OSError (File name too long)
    images = [{'id': 1, 'file_name': 'a.jpg', 'width': 80, 'height': 50},
              {'id': 2, 'file_name': file_name, 'width': 80, 'height': 50}]
    path = write(tmp_path, GOOD[:1], images=images)
    with pytest.raises(DatasetError, match=r'ann.json \(images\[1\]\): missing_image'):
        read_coco(path, tmp_path / 'img')
    ds = read_coco(path, tmp_path / 'img', on_error='skip')
    assert len(ds) == 1 and [i.kind for i in ds.issues] == ['missing_image']


def test_error_about_a_file_name_with_a_line_break_is_one_line(tmp_path):
    # found by tests/fuzz (issue 10): 'no image .../a\nb.jpg' spread the error over two lines
    images = [{'id': 1, 'file_name': 'a\nb.jpg', 'width': 80, 'height': 50}]
    path = write(tmp_path, [], images=images)
    with pytest.raises(DatasetError) as err:
        read_coco(path, tmp_path / 'img')
    assert str(err.value).isprintable() and str(err.value).endswith('a\\nb.jpg')
    assert str(path) in str(err.value) and err.value.issue.kind == 'missing_image'


def test_image_size_beyond_float_range_is_a_malformed_entry(tmp_path):
    # found by tests/fuzz (issue 10): math.isfinite() of the int raised OverflowError
    images = [{'id': 1, 'file_name': 'a.jpg', 'width': 80, 'height': 50},
              {'id': 2, 'file_name': 'b.jpg', 'width': 10 ** 400, 'height': 50}]
    path = write(tmp_path, GOOD[:2], images=images)
    with pytest.raises(DatasetError, match=r'ann.json \(images\[1\]\): malformed'):
        read_coco(path, tmp_path / 'img')
    ds = read_coco(path, tmp_path / 'img', on_error='skip')
    assert len(ds) == 1 and ds.box_count() == 2 and [i.kind for i in ds.issues] == ['malformed']
