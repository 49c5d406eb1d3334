"""YOLO txt + data YAML reader: normalised boxes, names as list/dict, every broken input."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from aiat_training.data import DatasetError
from aiat_training.data.readers import read_yolo


def make(tmp_path, labels: dict[str, str], names='[car, person]', images=('a', 'b')):
    for stem in images:
        (tmp_path / 'images' / 'train').mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(tmp_path / 'images' / 'train' / f'{stem}.jpg'), np.zeros((50, 100, 3), np.uint8))
    (tmp_path / 'labels' / 'train').mkdir(parents=True, exist_ok=True)
    for stem, text in labels.items():
        (tmp_path / 'labels' / 'train' / f'{stem}.txt').write_text(text)
    data = tmp_path / 'data.yaml'
    data.write_text(f'path: .\ntrain: images/train\nval: images/train\nnames: {names}\n')
    return data


def test_reads_normalised_boxes(tmp_path):
    data = make(tmp_path, {'a': '0 0.5 0.5 0.2 0.4\n1 0.1 0.2 0.1 0.2\n'}, names='{0: car, 1: person}')
    ds = read_yolo(data)
    assert ds.class_names == ['car', 'person'] and len(ds) == 2 and not ds.issues
    np.testing.assert_allclose(ds[0].boxes, [[40, 15, 60, 35], [5, 5, 15, 15]], atol=1e-4)
    assert ds[0].labels.tolist() == [0, 1]
    assert len(ds[1].boxes) == 0          # b has no label file: background image


BROKEN = {
    'box_outside_image': '0 0.95 0.5 0.3 0.2',
    'invalid_box': '0 0.5 0.5 0.0 0.2',
    'unknown_class': '5 0.5 0.5 0.2 0.2',
    'malformed': '0 0.5 0.5 0.2',
}


@pytest.mark.parametrize('kind', sorted(BROKEN))
def test_broken_line(tmp_path, kind):
    data = make(tmp_path, {'a': f'0 0.5 0.5 0.2 0.2\n{BROKEN[kind]}\n'})
    with pytest.raises(DatasetError) as err:
        read_yolo(data)
    assert err.value.issue.kind == kind and err.value.issue.line == 2
    assert err.value.issue.file.endswith('a.txt')
    ds = read_yolo(data, on_error='skip')
    assert ds.box_count() == 1 and [(i.kind, i.line) for i in ds.issues] == [(kind, 2)]


def test_label_without_image_is_missing_image(tmp_path):
    data = make(tmp_path, {'a': '0 0.5 0.5 0.2 0.2\n', 'ghost': '0 0.5 0.5 0.2 0.2\n'})
    with pytest.raises(DatasetError, match='ghost.txt.*missing_image'):
        read_yolo(data)
    ds = read_yolo(data, on_error='skip')
    assert len(ds) == 2 and [i.kind for i in ds.issues] == ['missing_image']


def test_image_list_with_missing_image(tmp_path):
    make(tmp_path, {'a': '0 0.5 0.5 0.2 0.2\n'})
    (tmp_path / 'train.txt').write_text('images/train/a.jpg\nimages/train/nope.jpg\n')
    (tmp_path / 'data.yaml').write_text('path: .\ntrain: train.txt\nnames: [car]\n')
    ds = read_yolo(tmp_path / 'data.yaml', on_error='skip')
    assert len(ds) == 1 and ds.issues[0].kind == 'missing_image' and 'nope.jpg' in str(ds.issues[0])


def test_bad_yaml_names_key(tmp_path):
    (tmp_path / 'data.yaml').write_text('path: .\ntrain: images\n')
    with pytest.raises(ValueError, match='data.yaml: names'):
        read_yolo(tmp_path / 'data.yaml')
    make(tmp_path, {})
    with pytest.raises(ValueError, match='test: no such split'):
        read_yolo(tmp_path / 'data.yaml', split='test')


def test_image_source_name_the_system_refuses_is_not_found(tmp_path):
    # found by tests/fuzz (issue 10): Path.is_dir() raised OSError (File name too long)
    make(tmp_path, {'a': '0 0.5 0.5 0.2 0.2\n'})
    (tmp_path / 'data.yaml').write_text(f'path: .\ntrain: {"x" * 300}\nnames: [car]\n')
    with pytest.raises(FileNotFoundError, match='image source .*xxx is neither a directory nor a .txt list'):
        read_yolo(tmp_path / 'data.yaml', on_error='skip')


def test_image_list_line_the_system_refuses_is_a_missing_image(tmp_path):
    make(tmp_path, {'a': '0 0.5 0.5 0.2 0.2\n'})
    (tmp_path / 'train.txt').write_text(f'images/train/a.jpg\nimages/train/{"x" * 300}.jpg\n')
    (tmp_path / 'data.yaml').write_text('path: .\ntrain: train.txt\nnames: [car]\n')
    ds = read_yolo(tmp_path / 'data.yaml', on_error='skip')
    assert len(ds) == 1 and [i.kind for i in ds.issues] == ['missing_image']
