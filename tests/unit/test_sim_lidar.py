"""2D and 3D lidar against analytic geometry of the placed objects."""
from __future__ import annotations

import math

import numpy as np
import pytest

from aiat_perception.sim.scenario import parse_scenario
from aiat_perception.sim.transforms import invert, transform_points
from aiat_perception.sim.world import SimWorld

BOXES = [  # actors whose collision shape is exactly their 3D box
    {'type': 'mesh', 'asset': 'cube', 'motion': {'type': 'static', 'position': [4.0, 0.0], 'yaw_deg': 30}},
    {'type': 'mesh', 'asset': 'cube', 'scale': 0.7, 'motion': {'type': 'static', 'position': [-6.0, 2.0]}},
    {'type': 'mesh', 'asset': 'cube', 'scale': 2.0, 'motion': {'type': 'static', 'position': [1.0, -9.0], 'yaw_deg': 10}},
    {'type': 'photo', 'photo': 'person_blue_jacket', 'motion': {'type': 'static', 'position': [2.0, 5.0]}},
    {'type': 'photo', 'photo': 'truck_pickup', 'billboard': False,
     'motion': {'type': 'static', 'position': [12.0, 3.0], 'yaw_deg': 60}},
]
OTHERS = [{'type': 'mesh', 'asset': 'pedestrian', 'motion': {'type': 'static', 'position': [7.0, -3.0], 'yaw_deg': 45}},
          {'type': 'mesh', 'asset': 'racecar', 'motion': {'type': 'static', 'position': [-8.0, -4.0], 'yaw_deg': 70}}]


def make_world(noise_2d=(0.01, 0.0), noise_3d=(0.02, 0.0), actors=BOXES + OTHERS, road='straight'):
    return SimWorld(parse_scenario({
        'seed': 1,
        'ego': {'motion': {'type': 'static', 'position': [0.5, 0.2], 'yaw_deg': 15},
                'lidar_2d': {'pose': {'xyz': [1.0, 0.0, 0.5]}, 'range_max': 30.0,
                             'noise': {'range_std': noise_2d[0], 'dropout': noise_2d[1]}},
                'lidar_3d': {'pose': {'xyz': [0.0, 0.0, 1.9]}, 'horizontal_resolution_deg': 0.5,
                             'noise': {'range_std': noise_3d[0], 'dropout': noise_3d[1]}}},
        'road': {'type': road}, 'actors': actors}))


def ray_box_distance(origin, direction, box):
    """Distance along a unit ray to an oriented box (slab method), inf if missed."""
    box_from_map = invert(box.pose)
    o = box_from_map[:3, :3] @ origin + box_from_map[:3, 3]
    d = box_from_map[:3, :3] @ direction
    half = box.size / 2.0
    with np.errstate(divide='ignore', invalid='ignore'):
        t1, t2 = (-half - o) / d, (half - o) / d
    t_near = np.nanmax(np.minimum(t1, t2))
    t_far = np.nanmin(np.maximum(t1, t2))
    return t_near if t_near <= t_far and t_near > 0 else math.inf


def test_laser_scan_ranges_equal_distances_to_placed_objects():
    std = 0.01
    with make_world(noise_2d=(std, 0.0), actors=BOXES) as world:
        scan = world.scan_2d()
        cfg = world.scenario.ego.lidar_2d
        map_from_laser = world.map_from_base @ world.base_from_lidar_2d()
        boxes = world.ground_truth_3d('map')
    assert len(scan.ranges) == 1081
    assert scan.angle_min == pytest.approx(-math.radians(135)) and scan.angle_max == pytest.approx(math.radians(135))
    angles = scan.angle_min + np.arange(len(scan.ranges)) * scan.angle_increment
    origin = map_from_laser[:3, 3]
    hits, mismatches = 0, 0
    for angle, measured in zip(angles, scan.ranges):
        direction = map_from_laser[:3, :3] @ np.array([math.cos(angle), math.sin(angle), 0.0])
        expected = min(ray_box_distance(origin, direction, box) for box in boxes)
        if expected > cfg.range_max:
            mismatches += not np.isinf(measured)
        else:
            hits += 1
            mismatches += not abs(measured - expected) < 5 * std
    assert hits > 100
    assert mismatches <= 2  # beams grazing a box corner


def test_laser_scan_noise_and_dropout():
    with make_world(noise_2d=(0.0, 0.0), actors=BOXES) as world:
        clean = world.scan_2d().ranges
    with make_world(noise_2d=(0.05, 0.2), actors=BOXES) as world:
        noisy = world.scan_2d().ranges
    dropped = np.isnan(noisy)
    assert dropped.mean() == pytest.approx(0.2, abs=0.04)
    both = np.isfinite(clean) & np.isfinite(noisy)
    assert np.std(noisy[both] - clean[both]) == pytest.approx(0.05, rel=0.2)
    assert np.isinf(clean[~np.isfinite(clean)]).all()


def box_surface_distance(points_map, box):
    local = transform_points(invert(box.pose), points_map)
    q = np.abs(local) - box.size / 2.0
    outside = np.linalg.norm(np.maximum(q, 0.0), axis=1)
    inside = np.minimum(np.max(q, axis=1), 0.0)
    return outside + np.abs(inside), local


def test_point_cloud_points_lie_on_actor_surfaces():
    std = 0.02
    with make_world(noise_3d=(std, 0.0)) as world:
        cloud = world.scan_3d()
        map_from_lidar = world.map_from_base @ world.base_from_lidar_3d()
        boxes = world.ground_truth_3d('map')
    assert cloud.points.dtype == np.float32 and cloud.points.shape[1] == 3
    assert set(np.unique(cloud.ring)) <= set(range(16))
    points_map = transform_points(map_from_lidar, cloud.points.astype(np.float64))
    for index, box in enumerate(boxes):
        mine = cloud.actors == index
        assert mine.sum() > 5, box.actor
        distance, local = box_surface_distance(points_map[mine], box)
        if index < len(BOXES):
            assert np.percentile(distance, 99) < 5 * std, box.actor
        else:  # meshes lie inside their box
            assert (np.abs(local) <= box.size / 2.0 + 5 * std).all(), box.actor
    ground = cloud.actors == -1
    assert np.abs(points_map[ground, 2] - 0.01).max() < 5 * std + 0.01
    assert ((0.0 <= cloud.intensity) & (cloud.intensity <= 1.0)).all()


def test_point_cloud_without_noise_is_exact_and_dropout_thins_it():
    with make_world(noise_3d=(0.0, 0.0), actors=BOXES[:1]) as world:
        cloud = world.scan_3d()
        points_map = transform_points(world.map_from_base @ world.base_from_lidar_3d(), cloud.points.astype(np.float64))
        (box,) = world.ground_truth_3d('map')
    distance, _ = box_surface_distance(points_map[cloud.actors == 0], box)
    assert distance.max() < 1e-3
    with make_world(noise_3d=(0.0, 0.5), actors=BOXES[:1]) as world:
        thinned = world.scan_3d()
    assert len(thinned.points) == pytest.approx(len(cloud.points) / 2, rel=0.1)


def test_lidar_3d_ray_pattern():
    with make_world(actors=[]) as world:
        dirs, rings = world.lidar_3d_directions()
    assert dirs.shape == (16 * 720, 3) and rings.max() == 15
    elevations = np.degrees(np.arcsin(dirs[:, 2]))
    assert elevations[rings == 0] == pytest.approx(-15.0) and elevations[rings == 15] == pytest.approx(15.0)
    assert np.linalg.norm(dirs, axis=1) == pytest.approx(1.0)
