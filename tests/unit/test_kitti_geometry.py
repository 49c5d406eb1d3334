"""KITTI geometry on the REAL calib files: labelled 3D boxes projected through R0_rect and P2 (with its
fourth column) land on their labelled 2D boxes; label <-> velodyne transforms round-trip; the lidar
points inside a labelled box project inside its 2D box."""
from __future__ import annotations

import math

import numpy as np
import pytest

from aiat_perception.assets import shared_data
from aiat_perception.kitti import (KittiCalibration, KittiFormatError, parse_label_line, read_calib,
                                   read_label, read_velodyne)
from aiat_perception.metrics.kitti_rules import ground_truth, not_counted, png_size
from aiat_perception.metrics.matching import iou_matrix
from aiat_perception.metrics.matching_3d import Object3D

FRAMES = ('000134', '000001')


def frame(name):
    root = shared_data('kitti_object', 'training')
    return (KittiCalibration.read(root / 'calib' / f'{name}.txt'), read_label(root / 'label_2' / f'{name}.txt'),
            root)


@pytest.mark.parametrize('name', FRAMES)
def test_projected_3d_boxes_land_on_their_2d_boxes(name):
    calib, labels, root = frame(name)
    width, height = png_size(root / 'image_2' / f'{name}.png')
    checked = 0
    for obj in labels:
        if obj.type == 'DontCare' or obj.truncated > 0.1:
            continue
        projected = calib.image_box(obj.corners())
        assert projected is not None
        clipped = (max(projected[0], 0), max(projected[1], 0), min(projected[2], width - 1), min(projected[3], height - 1))
        x0, y0, x1, y1 = obj.bbox
        # top and bottom agree to a few pixels; the labelled (tight, silhouette) box lies inside the
        # projected 3D box; rigid objects fill their box, pedestrians' swinging arms widen theirs
        assert abs(clipped[1] - y0) < 3 and abs(clipped[3] - y1) < 3, (obj.type, obj.bbox, clipped)
        assert clipped[0] <= x0 + 3 and clipped[2] >= x1 - 3, (obj.type, obj.bbox, clipped)
        iou = iou_matrix([clipped], [obj.bbox])[0, 0]
        assert iou > (0.45 if obj.type == 'Pedestrian' else 0.9), (obj.type, obj.bbox, clipped, iou)
        checked += 1
    assert checked >= (12 if name == '000134' else 3)


def test_p2_fourth_column_matters():
    calib, labels, _ = frame('000134')
    car = labels[0]
    with_offset = calib.image_box(car.corners(), camera=2)
    without = calib.image_box(car.corners(), camera=0)   # P0: same intrinsics, no offset
    shift = with_offset[0] - without[0]
    assert shift == pytest.approx(calib.P[2][0, 3] / car.location[2], rel=0.2) and abs(shift) > 2.0
    assert iou_matrix([with_offset], [car.bbox])[0, 0] > iou_matrix([without], [car.bbox])[0, 0]


@pytest.mark.parametrize('name', FRAMES)
def test_label_velodyne_round_trip_and_points_inside_boxes_project_into_the_2d_box(name):
    calib, labels, root = frame(name)
    points = read_velodyne(root / 'velodyne' / f'{name}.bin')
    pts = points[:, :3].astype(np.float64)
    np.testing.assert_allclose(calib.rect_to_velo(calib.velo_to_rect(pts[:100])), pts[:100], atol=1e-9)
    for obj in labels:
        if obj.type == 'DontCare':
            continue
        center, size, yaw = calib.label_box_velo(obj)
        location, rotation_y = calib.box_velo_to_label(center, size, yaw)
        np.testing.assert_allclose(location, obj.location, atol=1e-6)
        assert math.cos(rotation_y - obj.rotation_y) == pytest.approx(1.0, abs=1e-6)
        np.testing.assert_allclose(size, [obj.dimensions[2], obj.dimensions[1], obj.dimensions[0]])
        d = pts - center
        u = d[:, 0] * math.cos(yaw) + d[:, 1] * math.sin(yaw)
        v = -d[:, 0] * math.sin(yaw) + d[:, 1] * math.cos(yaw)
        inside = (np.abs(u) <= size[0] / 2) & (np.abs(v) <= size[1] / 2) & (np.abs(d[:, 2]) <= size[2] / 2)
        if inside.sum() < 10:
            continue
        uv, depth = calib.project_velo(pts[inside])
        x0, y0, x1, y1 = obj.bbox
        within = (uv[:, 0] >= x0 - 3) & (uv[:, 0] <= x1 + 3) & (uv[:, 1] >= y0 - 3) & (uv[:, 1] <= y1 + 3)
        assert within.mean() > 0.95, (obj.type, within.mean())


def test_frustum_and_dontcare_rules():
    calib, labels, _ = frame('000001')
    gts, dontcare = ground_truth(calib, labels)
    assert {g.class_name for g in gts} == {'truck', 'car', 'cyclist'} and len(dontcare) == 4
    behind = Object3D('car', (-20.0, 0.0, -1.0), (4, 2, 1.5), 0.0)
    ahead = Object3D('car', (20.0, 0.0, -1.0), (4, 2, 1.5), 0.0)
    # a point that projects into the first DontCare box (centre of it, at 60 m)
    x0, y0, x1, y1 = dontcare[0]
    ray = np.linalg.solve(calib.P[2][:, :3], np.array([(x0 + x1) / 2, (y0 + y1) / 2, 1.0]) - calib.P[2][:, 3] / 60.0)
    in_dc = calib.rect_to_velo(ray / ray[2] * 60.0)[0]
    flags = not_counted(calib, [behind, ahead, Object3D('car', tuple(in_dc), (4, 2, 1.5), 0.0)], dontcare)
    assert flags == [True, False, True]


def test_calib_and_label_errors_name_the_file(tmp_path):
    bad = tmp_path / 'calib.txt'
    bad.write_text('P2: 1 2 3\n')
    with pytest.raises(KittiFormatError, match='calib.txt:1: P2 needs 12'):
        read_calib(bad)
    bad.write_text('R0_rect: 1 0 0 0 1 0 0 0 1\n')
    with pytest.raises(KittiFormatError, match='missing P2'):
        KittiCalibration.read(bad)
    with pytest.raises(KittiFormatError, match='non-finite'):
        parse_label_line('Car 0 0 0 0 0 1 1 nan 1 1 1 1 1 0')
