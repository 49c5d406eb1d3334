"""BDD100K detection JSON reader: boxes, crowd -> ignore, occluded/truncated, every broken input."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from aiat_training.data import ClassMapping, DatasetError
from aiat_training.data.readers import read_bdd100k


def label(category, box, **attributes):
    return {'id': '1', 'category': category, 'attributes': attributes,
            'box2d': dict(zip(('x1', 'y1', 'x2', 'y2'), box))}


def write(tmp_path, frames, images=('f1.jpg', 'f2.jpg')):
    (tmp_path / 'images').mkdir(exist_ok=True)
    for name in images:
        cv2.imwrite(str(tmp_path / 'images' / name), np.zeros((72, 128, 3), np.uint8))
    path = tmp_path / 'det_train.json'
    path.write_text(json.dumps(frames))
    return path


FRAMES = [{'name': 'f1.jpg', 'videoName': 'v1', 'attributes': {'weather': 'clear'}, 'labels': [
    label('car', (10, 10, 50, 40), occluded=True, truncated=False),
    label('pedestrian', (60, 20, 70, 60), occluded=False, truncated=True),
    label('pedestrian', (80, 20, 120, 60), crowd=True),
    {'id': '9', 'category': 'lane', 'poly2d': [{'vertices': [[0, 0], [5, 5]]}]},
]}, {'name': 'f2.jpg', 'labels': None}]


def test_reads_boxes_attributes_crowd(tmp_path):
    ds = read_bdd100k(write(tmp_path, FRAMES), tmp_path / 'images')
    assert len(ds) == 2 and not ds.issues
    np.testing.assert_allclose(ds[0].boxes, [[10, 10, 50, 40], [60, 20, 70, 60]])
    assert [ds.class_names[i] for i in ds[0].labels] == ['car', 'pedestrian']
    assert ds[0].attributes['occlusion'].tolist() == [1, 0]
    assert ds[0].attributes['truncation'].tolist() == [0, 1]
    np.testing.assert_allclose(ds[0].ignore, [[80, 20, 120, 60]])
    assert ds[0].sequence == 'v1' and len(ds[1].boxes) == 0


def test_mapping_onto_model_classes(tmp_path):
    mapping = ClassMapping(classes=['vehicle', 'person'], map={'car': 'vehicle', 'pedestrian': 'person'})
    ds = read_bdd100k(write(tmp_path, FRAMES), tmp_path / 'images', mapping)
    assert ds.class_names == ['vehicle', 'person'] and ds[0].labels.tolist() == [0, 1]


BROKEN = {
    'box_outside_image': label('car', (100, 10, 140, 40)),
    'invalid_box': label('car', (10, 10, 10, 40)),
    'unknown_class': label('ufo', (10, 10, 20, 20)),
    'malformed': {'id': '3', 'category': 'car', 'box2d': {'x1': 1, 'y1': 2}},
}


@pytest.mark.parametrize('kind', sorted(BROKEN))
def test_broken_label(tmp_path, kind):
    frames = [{'name': 'f1.jpg', 'labels': [label('car', (1, 1, 9, 9)), BROKEN[kind]]}]
    path = write(tmp_path, frames)
    with pytest.raises(DatasetError) as err:
        read_bdd100k(path, tmp_path / 'images')
    assert err.value.issue.kind == kind and '[0].labels[1] (f1.jpg)' in str(err.value)
    ds = read_bdd100k(path, tmp_path / 'images', on_error='skip')
    assert ds.box_count() == 1 and [i.kind for i in ds.issues] == [kind]


def test_missing_image_and_bad_json(tmp_path):
    path = write(tmp_path, FRAMES + [{'name': 'gone.jpg', 'labels': []}])
    ds = read_bdd100k(path, tmp_path / 'images', on_error='skip')
    assert len(ds) == 2 and ds.issues[0].kind == 'missing_image' and 'gone.jpg' in str(ds.issues[0])
    path.write_text('[{"name": "f1.jpg",\n "labels": [}')
    with pytest.raises(DatasetError, match=r'det_train.json:2: malformed_file'):
        read_bdd100k(path, tmp_path / 'images')


def test_error_about_a_name_with_line_breaks_is_one_line(tmp_path):
    # found by tests/fuzz (issue 10): the frame name went into the message raw, '\n' included
    path = write(tmp_path, [{'name': 'f1.jpg\n', 'labels': []}, {'name': 'f\u20282.jpg', 'labels': []}])
    with pytest.raises(DatasetError) as err:
        read_bdd100k(path, tmp_path / 'images')
    assert str(err.value).endswith(r"missing_image: no readable image " + str(tmp_path / 'images' / 'f1.jpg\\n'))
    ds = read_bdd100k(path, tmp_path / 'images', on_error='skip')
    assert [len(str(i).splitlines()) for i in ds.issues] == [1, 1]
    assert ds.issues[1].message.endswith('f\u20282.jpg')          # the issue itself keeps the name as it is
    assert str(ds.issues[1]).endswith('f\\u20282.jpg')
