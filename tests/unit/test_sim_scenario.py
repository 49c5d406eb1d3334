"""Scenario files: every shipped file loads, defaults match the brief, errors name file and key."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from aiat_perception.sim.motion import ScriptedMotion
from aiat_perception.sim.scenario import (MotionConfig, ScenarioError, load_scenario, parse_scenario,
                                          scenario_dir)


def test_shipped_scenarios_load():
    files = sorted(scenario_dir().glob('*.yaml'))
    assert len(files) >= 3
    for path in files:
        scenario = load_scenario(path)
        assert scenario.actors, path


def test_defaults():
    sc = parse_scenario({})
    cam = sc.ego.camera
    assert (cam.width, cam.height, cam.rate_hz) == (640, 480, 10.0)
    assert sc.ego.lidar_3d.rings == 16
    assert sc.ego.lidar_2d.beams == 1081 and sc.ego.lidar_2d.fov_deg == 270.0
    K = cam.matrix()
    assert K[0, 2] == pytest.approx(319.5) and K[1, 2] == pytest.approx(239.5)
    assert 2 * math.degrees(math.atan(320 / K[0, 0])) == pytest.approx(70.0)


def test_intrinsics_and_classes():
    sc = parse_scenario({'ego': {'camera': {'intrinsics': {'fx': 500, 'fy': 510, 'cx': 300, 'cy': 200}}},
                         'actors': [{'type': 'photo', 'photo': 'bicycle_red'},
                                    {'type': 'mesh', 'asset': 'pedestrian', 'name': 'bob'},
                                    {'type': 'mesh', 'asset': 'cube', 'class': 'car'}]})
    assert sc.ego.camera.matrix()[0, 0] == 500 and sc.ego.camera.matrix()[1, 2] == 200
    assert [(a.class_name, a.kitti_class) for a in sc.actors] == [
        ('bicycle', 'Cyclist'), ('person', 'Pedestrian'), ('car', 'Car')]
    assert sc.actors[1].name == 'bob'


@pytest.mark.parametrize('data, key', [
    ({'ego': {'camera': {'widht': 640}}}, 'ego.camera.widht'),
    ({'ego': {'camera': {'width': 'big'}}}, 'ego.camera.width'),
    ({'ego': {'lidar_3d': {'vertical_fov_deg': [10, -10]}}}, 'ego.lidar_3d.vertical_fov_deg'),
    ({'ego': {'lidar_2d': {'noise': {'dropout': 1.5}}}}, 'ego.lidar_2d.noise.dropout'),
    ({'actors': [{'type': 'mesh', 'asset': 'spaceship'}]}, 'actors[0].asset'),
    ({'actors': [{'type': 'photo', 'photo': 'bicycle_red', 'motion': {'type': 'waypoints',
                                                                      'waypoints': [[0, 0], [1, 1]]}}]},
     'actors[0].motion.speed'),
    ({'actors': [{'type': 'mesh', 'asset': 'cube', 'name': 'a'}, {'type': 'mesh', 'asset': 'cube', 'name': 'a'}]},
     'actors[1].name'),
    ({'actors': [{'type': 'mesh', 'asset': 'cube', 'kitti_class': 'Tractor'}]}, 'actors[0].kitti_class'),
    ({'road': {'type': 'spiral'}}, 'road.type'),
])
def test_errors_name_file_and_key(tmp_path: Path, data, key):
    import yaml
    path = tmp_path / 'bad.yaml'
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert str(path) in str(err.value) and key in str(err.value)


def test_unreadable_and_invalid_yaml(tmp_path: Path):
    with pytest.raises(ScenarioError, match='cannot read'):
        load_scenario(tmp_path / 'missing.yaml')
    bad = tmp_path / 'broken.yaml'
    bad.write_text('ego: [unclosed')
    with pytest.raises(ScenarioError, match='broken.yaml: not valid YAML'):
        load_scenario(bad)


def test_scripted_motion():
    linear = ScriptedMotion(MotionConfig(type='linear', position=(1.0, 2.0), velocity=(0.0, -2.0)))
    assert linear.pose(1.5) == pytest.approx((1.0, -1.0, -math.pi / 2))
    square = MotionConfig(type='waypoints', waypoints=[(0, 0), (2, 0), (2, 2), (0, 2)], speed=1.0, loop=True)
    motion = ScriptedMotion(square)
    assert motion.pose(1.0) == pytest.approx((1.0, 0.0, 0.0))
    assert motion.pose(3.0) == pytest.approx((2.0, 1.0, math.pi / 2))
    assert motion.pose(7.0) == pytest.approx((0.0, 1.0, -math.pi / 2))
    assert motion.pose(9.0)[:2] == pytest.approx((1.0, 0.0))  # wrapped around the 8 m loop
    once = ScriptedMotion(MotionConfig(type='waypoints', waypoints=[(0, 0), (2, 0)], speed=1.0, loop=False))
    assert once.pose(10.0)[:2] == pytest.approx((2.0, 0.0))
    static = ScriptedMotion(MotionConfig(position=(3.0, 4.0), yaw=0.5), offset=(1.0, 0.0), yaw_offset=0.1)
    assert static.pose(5.0) == pytest.approx((4.0, 4.0, 0.6))


def test_an_empty_value_for_a_number_is_refused(tmp_path):
    """Found by the long fuzz run: `width:` with no value used to load as None and fail later."""
    import yaml

    from aiat_perception.sim.scenario import ScenarioError, load_scenario
    doc = {'name': 'empty_width', 'ego': {'camera': {'width': None, 'height': 480}}}
    path = tmp_path / 'scenario.yaml'
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ScenarioError, match=r'ego\.camera\.width: expected a whole number .* got None'):
        load_scenario(path)
