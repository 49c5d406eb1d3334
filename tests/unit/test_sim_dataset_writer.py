"""KITTI/COCO dataset writer: files parse, boxes are consistent, calibration maps lidar to camera."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from aiat_perception.sim import dataset_writer, kitti
from aiat_perception.sim.scenario import parse_scenario

SCENARIO = {
    'name': 'writer_test', 'seed': 2,
    'ego': {'motion': {'type': 'linear', 'position': [0, 0], 'velocity': [1.0, 0]},
            'camera': {'width': 320, 'height': 240, 'fov_deg': 80, 'pose': {'xyz': [0.5, 0.0, 1.4]}},
            'lidar_3d': {'horizontal_resolution_deg': 1.0}},
    'road': {'type': 'straight'},
    'actors': [
        {'type': 'photo', 'photo': 'person_blue_jacket', 'motion': {'type': 'static', 'position': [9, 1.0]}},
        {'type': 'photo', 'photo': 'bicycle_red', 'motion': {'type': 'static', 'position': [11, -2.5]}},
        {'type': 'mesh', 'asset': 'racecar', 'motion': {'type': 'static', 'position': [16, 2.0], 'yaw_deg': 30}},
        {'type': 'mesh', 'asset': 'pedestrian', 'motion': {'type': 'static', 'position': [10, 3.5], 'yaw_deg': 80}},
        {'type': 'mesh', 'asset': 'cube', 'motion': {'type': 'static', 'position': [13, -0.5], 'yaw_deg': 20}},
        {'type': 'mesh', 'asset': 'traffic_cone', 'motion': {'type': 'static', 'position': [7, -1.5]}},
    ],
}


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp('kitti')
    scenario = dataset_writer.randomized(parse_scenario(SCENARIO), placement_jitter=0.5)
    counts = dataset_writer.write_dataset(scenario, out, frames=4, seed=3, frames_per_episode=2)
    return out, counts


def iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_layout_and_files_parse(dataset):
    out, counts = dataset
    assert counts['frames'] == 4 and counts['objects'] >= 8
    names = (out / 'ImageSets' / 'all.txt').read_text().split()
    assert names == ['000000', '000001', '000002', '000003']
    for name in names:
        image = cv2.imread(str(out / 'image_2' / f'{name}.png'))
        assert image.shape == (240, 320, 3)
        labels = kitti.read_label(out / 'label_2' / f'{name}.txt')
        assert labels and {o.type for o in labels} <= {'Car', 'Pedestrian', 'Cyclist', 'Misc'}
        calib = kitti.read_calib(out / 'calib' / f'{name}.txt')
        assert set(calib) == {'P0', 'P1', 'P2', 'P3', 'R0_rect', 'Tr_velo_to_cam', 'Tr_imu_to_velo'}
        velo = kitti.read_velodyne(out / 'velodyne' / f'{name}.bin')
        assert velo.shape[1] == 4 and len(velo) > 1000
        for obj in labels:
            assert 0.0 <= obj.truncated <= 1.0 and obj.occluded in (0, 1, 2)
            assert -np.pi <= obj.rotation_y <= np.pi and -np.pi <= obj.alpha <= np.pi
            assert obj.location[2] > 0 and all(d > 0 for d in obj.dimensions)
            # location is the bottom centre: on the road, 1.4 m below the camera (+y is down)
            assert obj.location[1] == pytest.approx(1.4 - 0.02, abs=1e-2)


def test_3d_box_projects_onto_2d_box(dataset):
    out, _ = dataset
    checked = 0
    for name in ('000000', '000001', '000002', '000003'):
        P2 = kitti.read_calib(out / 'calib' / f'{name}.txt')['P2']
        for obj in kitti.read_label(out / 'label_2' / f'{name}.txt'):
            if obj.truncated > 0.0:
                continue
            corners = obj.corners()
            uvw = np.hstack([corners, np.ones((8, 1))]) @ P2.T
            uv = uvw[:, :2] / uvw[:, 2:]
            projected = (uv[:, 0].min() + 0.5, uv[:, 1].min() + 0.5, uv[:, 0].max() + 0.5, uv[:, 1].max() + 0.5)
            # collision boxes of meshes are a little larger than their visual mesh
            assert iou(projected, obj.bbox) > 0.6, (name, obj)
            checked += 1
    assert checked >= 8


def test_velodyne_points_land_in_the_camera_where_the_camera_sees_the_scene(dataset):
    out, _ = dataset
    calib = kitti.read_calib(out / 'calib' / '000000.txt')
    velo = kitti.read_velodyne(out / 'velodyne' / '000000.bin')
    cam = np.hstack([velo[:, :3], np.ones((len(velo), 1))]) @ calib['Tr_velo_to_cam'].T
    cam = cam @ calib['R0_rect'].T
    front = cam[:, 2] > 1.0
    uvw = np.hstack([cam[front], np.ones((front.sum(), 1))]) @ calib['P2'].T
    uv = uvw[:, :2] / uvw[:, 2:]
    inside = (uv[:, 0] >= 0) & (uv[:, 0] < 320) & (uv[:, 1] >= 0) & (uv[:, 1] < 240)
    assert inside.sum() > 200
    # ground points (most of them) are below the camera: +y in camera coordinates, ~1.4 m down
    ground = cam[front][inside][:, 1]
    assert np.median(ground) > 0.5
    # Tr_imu_to_velo: base_link origin sits 1.9 m below the velodyne
    assert calib['Tr_imu_to_velo'][:, 3] == pytest.approx([0.0, 0.0, -1.9])


def test_coco_json(dataset):
    out, counts = dataset
    coco = json.loads((out / 'coco.json').read_text())
    assert len(coco['images']) == 4 and len(coco['annotations']) == counts['objects']
    categories = {c['id']: c['name'] for c in coco['categories']}
    assert categories[1] == 'person' and categories[2] == 'bicycle'
    for ann in coco['annotations']:
        x, y, w, h = ann['bbox']
        assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= 320 and y + h <= 240
        assert ann['category_id'] in categories and ann['area'] <= w * h


def test_cli(tmp_path: Path, capsys):
    path = tmp_path / 'scene.yaml'
    path.write_text(yaml.safe_dump(SCENARIO))
    rc = dataset_writer.main(['--scenario', str(path), '--frames', '2', '--out', str(tmp_path / 'out'),
                              '--format', 'coco', '--seed', '1'])
    assert rc == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])['frames'] == 2
    assert (tmp_path / 'out' / 'coco.json').exists() and not list((tmp_path / 'out' / 'label_2').iterdir())
    bad = dict(SCENARIO, ego={'camera': {'pose': {'xyz': [0, 0, 1], 'rpy_deg': [0, 10, 0]}}})
    path.write_text(yaml.safe_dump(bad))
    assert dataset_writer.main(['--scenario', str(path), '--frames', '1', '--out', str(tmp_path / 'x')]) == 2
    assert 'ego.camera.pose.rpy_deg' in capsys.readouterr().err
    assert dataset_writer.main(['--scenario', str(tmp_path / 'nope.yaml'), '--frames', '1',
                                '--out', str(tmp_path / 'x')]) == 2
