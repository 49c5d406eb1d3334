"""Pascal VOC XML reader: 1-based coordinates, difficult -> ignore, image sets, every broken input."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from aiat_training.data import DatasetError
from aiat_training.data.readers import read_voc
from aiat_training.data.readers.voc import VOC_CLASSES


def obj(name, box, difficult=0, truncated=0):
    x1, y1, x2, y2 = box
    return (f'<object><name>{name}</name><truncated>{truncated}</truncated><difficult>{difficult}</difficult>'
            f'<bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>')


def write(root, stem, objects, image=True, size=(64, 48)):
    (root / 'Annotations').mkdir(parents=True, exist_ok=True)
    (root / 'JPEGImages').mkdir(exist_ok=True)
    if image:
        cv2.imwrite(str(root / 'JPEGImages' / f'{stem}.jpg'), np.zeros((size[1], size[0], 3), np.uint8))
    (root / 'Annotations' / f'{stem}.xml').write_text(
        f'<annotation><filename>{stem}.jpg</filename><size><width>{size[0]}</width>'
        f'<height>{size[1]}</height><depth>3</depth></size>{"".join(objects)}</annotation>')


def test_reads_boxes_difficult_and_image_set(tmp_path):
    write(tmp_path, 'x1', [obj('dog', (1, 1, 10, 20), truncated=1), obj('cat', (20, 5, 30, 15), difficult=1)])
    write(tmp_path, 'x2', [obj('cat', (5, 5, 64, 48))])
    (tmp_path / 'ImageSets' / 'Main').mkdir(parents=True)
    (tmp_path / 'ImageSets' / 'Main' / 'val.txt').write_text('x2\n')
    ds = read_voc(tmp_path)
    assert ds.class_names == ['cat', 'dog']               # open set, sorted
    np.testing.assert_allclose(ds[0].boxes, [[0, 0, 10, 20]])
    assert ds[0].labels.tolist() == [1] and ds[0].attributes['truncation'].tolist() == [1]
    np.testing.assert_allclose(ds[0].ignore, [[19, 4, 30, 15]])
    val = read_voc(tmp_path, split='val', classes=VOC_CLASSES)
    assert len(val) == 1 and val.class_names[val[0].labels[0]] == 'cat'


BROKEN = {
    'box_outside_image': obj('dog', (1, 1, 90, 20)),
    'invalid_box': obj('dog', (30, 1, 10, 20)),
    'unknown_class': obj('spaceship', (1, 1, 10, 20)),
    'malformed': obj('dog', (1, 1, 'ten', 20)),
}


@pytest.mark.parametrize('kind', sorted(BROKEN))
def test_broken_object(tmp_path, kind):
    write(tmp_path, 'x1', [obj('dog', (1, 1, 10, 10)), BROKEN[kind]])
    with pytest.raises(DatasetError) as err:
        read_voc(tmp_path, classes=VOC_CLASSES)
    assert err.value.issue.kind == kind and err.value.issue.file.endswith('x1.xml')
    assert 'object[1]' in str(err.value)
    ds = read_voc(tmp_path, classes=VOC_CLASSES, on_error='skip')
    assert ds.box_count() == 1 and [i.kind for i in ds.issues] == [kind]


def test_missing_image_and_malformed_file(tmp_path):
    write(tmp_path, 'a', [obj('dog', (1, 1, 10, 10))])
    write(tmp_path, 'b', [obj('dog', (1, 1, 10, 10))], image=False)
    (tmp_path / 'Annotations' / 'c.xml').write_text('<annotation><object>\n<name>dog</name>')
    with pytest.raises(DatasetError, match='b.xml: missing_image'):
        read_voc(tmp_path)
    ds = read_voc(tmp_path, on_error='skip')
    assert len(ds) == 1
    assert sorted(i.kind for i in ds.issues) == ['malformed_file', 'missing_image']
    bad = next(i for i in ds.issues if i.kind == 'malformed_file')
    assert bad.file.endswith('c.xml') and bad.line == 2


def test_file_name_the_system_refuses_is_a_missing_image(tmp_path):
    # found by tests/fuzz (issue 10): Path.is_file() raised OSError (File name too long)
    write(tmp_path, 'a', [obj('dog', (1, 1, 10, 10))])
    (tmp_path / 'Annotations' / 'b.xml').write_text(
        f'<annotation><filename>{"x" * 300}.jpg</filename><size><width>64</width><height>48</height></size>'
        f'{obj("dog", (1, 1, 10, 10))}</annotation>')
    with pytest.raises(DatasetError, match='b.xml: missing_image'):
        read_voc(tmp_path)
    ds = read_voc(tmp_path, on_error='skip')
    assert len(ds) == 1 and [i.kind for i in ds.issues] == ['missing_image']


def test_image_set_naming_an_annotation_the_system_refuses_is_malformed(tmp_path):
    write(tmp_path, 'a', [obj('dog', (1, 1, 10, 10))])
    (tmp_path / 'ImageSets' / 'Main').mkdir(parents=True)
    (tmp_path / 'ImageSets' / 'Main' / 'train.txt').write_text(f'a\n{"x" * 300}\n')
    ds = read_voc(tmp_path, 'train', on_error='skip')
    assert len(ds) == 1 and [i.kind for i in ds.issues] == ['malformed_file']
