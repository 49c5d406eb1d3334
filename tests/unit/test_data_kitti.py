"""KITTI object reader: boxes, DontCare, attributes, calibration, class mapping, every broken input."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from aiat_training.data import ClassMapping, DatasetError
from aiat_training.data.readers import read_dataset, read_kitti

W, H = 120, 40
TAIL = '1.50 1.60 3.90 1.00 1.50 20.00 0.10'


def write_frame(root, stem, lines, image=True, calib=None):
    (root / 'image_2').mkdir(parents=True, exist_ok=True)
    (root / 'label_2').mkdir(parents=True, exist_ok=True)
    if image:
        cv2.imwrite(str(root / 'image_2' / f'{stem}.png'), np.zeros((H, W, 3), np.uint8))
    (root / 'label_2' / f'{stem}.txt').write_text('\n'.join(lines) + '\n')
    if calib is not None:
        (root / 'calib').mkdir(exist_ok=True)
        (root / 'calib' / f'{stem}.txt').write_text(calib)


@pytest.fixture
def good(tmp_path):
    write_frame(tmp_path, '000000', [
        f'Car 0.00 0 -1.5 10.00 5.00 50.00 30.00 {TAIL}',
        f'Pedestrian 0.30 2 0.2 60.50 8.25 70.00 39.00 {TAIL}',
        'DontCare -1 -1 -10 90.00 0.00 110.00 20.00 -1 -1 -1 -1000 -1000 -1000 -10',
        f'Van 0.00 1 0.0 0.00 0.00 120.00 40.00 {TAIL} 0.95',   # 16 fields (with score)
    ], calib='P2: 700 0 600 45 0 700 170 0 0 0 1 0\nR0_rect: 1 0 0 0 1 0 0 0 1\n')
    write_frame(tmp_path, '000001', [''])   # empty frame
    return tmp_path


def test_reads_boxes_ignore_attributes_and_calib(good):
    ds = read_kitti(good)
    assert len(ds) == 2 and not ds.issues
    s = ds[0]
    assert (s.width, s.height) == (W, H)
    np.testing.assert_allclose(s.boxes, [[10, 5, 50, 30], [60.5, 8.25, 70, 39], [0, 0, 120, 40]])
    assert [ds.class_names[i] for i in s.labels] == ['Car', 'Pedestrian', 'Van']
    np.testing.assert_allclose(s.ignore, [[90, 0, 110, 20]])
    np.testing.assert_allclose(s.attributes['occlusion'], [0, 2, 1])
    np.testing.assert_allclose(s.attributes['truncation'], [0, 0.3, 0])
    assert s.meta['calib']['P2'].shape == (3, 4) and s.meta['calib']['P2'][0, 0] == 700
    assert s.meta['calib']['R0_rect'].shape == (3, 3)
    assert len(ds[1].boxes) == 0
    assert s.load_image().shape == (H, W, 3)


def test_class_mapping_merges_drops_and_ignores(good):
    mapping = ClassMapping(classes=['car', 'pedestrian'],
                           map={'Car': 'car', 'Van': 'car', 'Pedestrian': 'ignore'}, unmapped='drop')
    ds = read_kitti(good, mapping)
    assert ds.class_names == ['car', 'pedestrian'] and ds.mapped
    assert ds[0].labels.tolist() == [0, 0]
    assert len(ds[0].ignore) == 2      # DontCare + Pedestrian mapped to ignore


def test_unmapped_class_is_reported_with_file_and_line(good):
    mapping = ClassMapping(classes=['car'], map={'Car': 'car', 'Van': 'car'}, unmapped='error')
    with pytest.raises(DatasetError) as err:
        read_kitti(good, mapping)
    assert err.value.issue.kind == 'unknown_class'
    assert err.value.issue.line == 2 and err.value.issue.file.endswith('000000.txt')
    assert '000000.txt:2' in str(err.value) and 'Pedestrian' in str(err.value)


BROKEN = {
    'box_outside_image': f'Car 0.00 0 0.0 10.00 5.00 150.00 30.00 {TAIL}',
    'invalid_box': f'Car 0.00 0 0.0 50.00 5.00 10.00 30.00 {TAIL}',
    'unknown_class': f'Spaceship 0.00 0 0.0 10.00 5.00 50.00 30.00 {TAIL}',
    'malformed': 'Car 0.00 0 0.0 10.00 5.00',
}


@pytest.mark.parametrize('kind', sorted(BROKEN))
def test_broken_line_raises_or_is_skipped(tmp_path, kind):
    write_frame(tmp_path, '000007', [f'Car 0.00 0 0.0 1.00 1.00 20.00 20.00 {TAIL}', BROKEN[kind]])
    with pytest.raises(DatasetError) as err:
        read_kitti(tmp_path)
    assert err.value.issue.kind == kind
    assert err.value.issue.line == 2 and err.value.issue.file.endswith('000007.txt')
    ds = read_kitti(tmp_path, on_error='skip')
    assert len(ds) == 1 and len(ds[0].boxes) == 1        # the good line survives
    assert [(i.kind, i.line) for i in ds.issues] == [(kind, 2)]


def test_non_numeric_field_is_malformed(tmp_path):
    write_frame(tmp_path, '000003', [f'Car 0.00 zero 0.0 10.00 5.00 50.00 30.00 {TAIL}'])
    ds = read_kitti(tmp_path, on_error='skip')
    assert [(i.kind, i.line) for i in ds.issues] == [('malformed', 1)]


def test_missing_image(tmp_path):
    write_frame(tmp_path, '000001', [f'Car 0.00 0 0.0 10.00 5.00 50.00 30.00 {TAIL}'])
    write_frame(tmp_path, '000002', [f'Car 0.00 0 0.0 10.00 5.00 50.00 30.00 {TAIL}'], image=False)
    with pytest.raises(DatasetError, match='000002.*missing_image'):
        read_kitti(tmp_path)
    ds = read_kitti(tmp_path, on_error='skip')
    assert len(ds) == 1 and [i.kind for i in ds.issues] == ['missing_image']
    assert ds.issues[0].file.endswith('000002.txt')


def test_box_within_tolerance_is_clipped_not_reported(tmp_path):
    write_frame(tmp_path, '000000', [f'Car 0.00 0 0.0 -0.50 0.00 120.70 40.00 {TAIL}'])
    ds = read_kitti(tmp_path)
    np.testing.assert_allclose(ds[0].boxes, [[0, 0, 120, 40]])


def test_sequence_regex_through_read_dataset(tmp_path):
    for stem in ('010000', '010001', '020000'):
        write_frame(tmp_path, stem, [f'Car 0.00 0 0.0 10.00 5.00 50.00 30.00 {TAIL}'])
    ds = read_dataset('kitti', tmp_path, sequence_regex=r'^(\d{2})')
    assert [s.sequence for s in ds] == ['01', '01', '02']


@pytest.mark.parametrize('box', ['10.00 5.00 10.0000001 30.00', '0 5.00 1e-320 30.00', '10.00 0 50.00 1e-320'])
def test_box_thinner_than_float32_is_invalid_not_kept_with_zero_area(tmp_path, box):
    # found by tests/fuzz (issue 10): the area was checked in float64, the sample stores float32
    write_frame(tmp_path, '000000', [f'Car 0.00 0 0.0 {box} {TAIL}', f'Van 0.00 0 0.0 1 1 20 20 {TAIL}'])
    with pytest.raises(DatasetError, match='000000.txt:1: invalid_box'):
        read_kitti(tmp_path)
    ds = read_kitti(tmp_path, on_error='skip')
    assert [(i.kind, i.line) for i in ds.issues] == [('invalid_box', 1)]
    assert ds[0].boxes.tolist() == [[1, 1, 20, 20]]
