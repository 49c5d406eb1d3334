"""Camera rendering and 2D/3D ground truth of the PyBullet world."""
from __future__ import annotations

import numpy as np
import pytest

from aiat_perception.sim.ground_truth import mask_boxes, project
from aiat_perception.sim.scenario import parse_scenario
from aiat_perception.sim.world import SimWorld

CAMERA = {'width': 320, 'height': 240, 'fov_deg': 70, 'pose': {'xyz': [0.0, 0.0, 1.2]}}


def world_with(actors, camera=None, **extra):
    data = {'seed': 5, 'ego': {'camera': camera or CAMERA}, 'road': {'type': 'straight'}, 'actors': actors}
    data.update(extra)
    return SimWorld(parse_scenario(data))


def static(position, yaw_deg=0.0):
    return {'type': 'static', 'position': list(position), 'yaw_deg': yaw_deg}


MIXED = [
    {'type': 'photo', 'photo': 'person_blue_jacket', 'motion': static((8, 0.5))},
    {'type': 'mesh', 'asset': 'racecar', 'motion': static((14, -2), 40)},
    {'type': 'mesh', 'asset': 'pedestrian', 'motion': static((6, 2.0), 20)},
    {'type': 'mesh', 'asset': 'bicycle', 'motion': static((7, -1.0), 90)},
    {'type': 'mesh', 'asset': 'traffic_cone', 'motion': static((5, -0.4))},
    {'type': 'photo', 'photo': 'truck_pickup', 'motion': static((12, 0.0))},
]


def test_mask_boxes_match_brute_force():
    rng = np.random.default_rng(0)
    seg = rng.integers(-1, 4, size=(30, 40)).astype(np.int32)
    seg[:, :5] = -1
    boxes = mask_boxes(seg)
    for actor_id in range(4):
        ys, xs = np.nonzero(seg == actor_id)
        assert boxes[actor_id] == ((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1), len(xs))


def test_frame_contents():
    with world_with(MIXED) as world:
        frame = world.render_camera()
        assert frame.rgb.shape == (240, 320, 3) and frame.rgb.dtype == np.uint8
        assert frame.depth.shape == (240, 320) and frame.segmentation.dtype == np.int32
        assert set(np.unique(frame.segmentation)) <= set(range(-1, len(MIXED)))
        # the sky (top rows) has no depth, the road in front of the camera does
        assert np.isinf(frame.depth[0]).all()
        road_depth = frame.depth[-1, 160]
        assert 1.2 / np.tan(np.arctan((239.5 - (frame.K[1, 2])) / frame.K[1, 1])) == pytest.approx(road_depth, rel=0.05)


def test_ground_truth_boxes_agree_with_segmentation_mask():
    with world_with(MIXED) as world:
        frame = world.render_camera()
        boxes = world.ground_truth_2d(frame, apply_threshold=False)
        assert len(boxes) == len(MIXED)
        for box in boxes:
            ys, xs = np.nonzero(frame.segmentation == box.actor_index)
            assert box.bbox == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            assert box.visible_pixels == len(xs)
            assert 0.0 <= box.visibility <= 1.0 and 0.0 <= box.truncation <= 1.0
            assert box.class_name == MIXED[box.actor_index].get('class', box.class_name)


def test_depth_matches_3d_box_and_projection_matches_mask():
    """An isolated cube: its mask box equals the projection of its 3D box, and depth in the mask
    lies between the nearest and farthest corner."""
    actors = [{'type': 'mesh', 'asset': 'cube', 'motion': static((6.0, 0.8), 25)}]
    with world_with(actors) as world:
        frame = world.render_camera()
        (box2d,) = world.ground_truth_2d(frame)
        (box3d,) = world.ground_truth_3d(world.scenario.ego.camera.optical_frame_id)
        corners = box3d.corners()
        uv = project(frame.K, corners)
        expected = (uv[:, 0].min() + 0.5, uv[:, 1].min() + 0.5, uv[:, 0].max() + 0.5, uv[:, 1].max() + 0.5)
        assert np.allclose(box2d.bbox, expected, atol=1.0)
        depth = frame.depth[frame.segmentation == 0]
        assert depth.min() >= corners[:, 2].min() - 0.02 and depth.max() <= corners[:, 2].max() + 0.02
        assert box2d.visibility == 1.0 and box2d.truncation == 0.0 and box2d.occlusion_level == 0


def test_occlusion_counts_the_hidden_pixels():
    person = {'type': 'photo', 'photo': 'person_blue_jacket', 'motion': static((10.0, 0.0))}
    wall = {'type': 'mesh', 'asset': 'cube', 'motion': static((6.0, 0.0))}
    with world_with([person]) as world:
        alone = world.ground_truth_2d(world.render_camera())[0]
    with world_with([person, wall]) as world:
        boxes = {b.actor_index: b for b in world.ground_truth_2d(world.render_camera(), apply_threshold=False)}
    hidden = boxes[0]
    assert alone.visibility == 1.0
    # the unoccluded silhouette (rendered alone) has the pixel count of the scene without the wall
    assert hidden.unoccluded_pixels == pytest.approx(alone.visible_pixels, rel=0.03)
    assert hidden.visibility == pytest.approx(hidden.visible_pixels / alone.visible_pixels, rel=0.03)
    # the 1 m cube 4 m in front hides the person below about 0.87 m of 1.77 m
    assert hidden.visibility == pytest.approx((1.77 - 0.87) / 1.75, abs=0.08)
    assert hidden.occlusion_level in (1, 2)
    assert hidden.bbox_full == pytest.approx(alone.bbox, abs=1.5)
    assert boxes[1].visibility == 1.0


def test_truncation_at_the_image_border():
    actors = [{'type': 'photo', 'photo': 'bicycle_red', 'motion': static((5.0, 3.6))}]
    with world_with(actors) as world:
        frame = world.render_camera()
        (box,) = world.ground_truth_2d(frame, apply_threshold=False)
        (box3d,) = world.ground_truth_3d(world.scenario.ego.camera.optical_frame_id)
    uv = project(frame.K, box3d.corners())
    left, right = uv[:, 0].min() + 0.5, uv[:, 0].max() + 0.5
    expected = (0.0 - left) / (right - left)
    assert 0.2 < expected < 0.8
    assert box.truncation == pytest.approx(expected, abs=0.05)
    assert box.bbox[0] == 0 and box.visibility == pytest.approx(1.0, abs=0.02)


def test_visibility_threshold_drops_hidden_actors():
    person = {'type': 'photo', 'photo': 'person_blue_jacket', 'motion': static((12.0, 0.0))}
    wall = {'type': 'mesh', 'asset': 'cube', 'scale': 1.1, 'motion': static((6.0, 0.0))}
    with world_with([person, wall], ground_truth={'min_visibility': 0.5}) as world:
        frame = world.render_camera()
        everything = world.ground_truth_2d(frame, apply_threshold=False)
        kept = world.ground_truth_2d(frame)
    assert any(b.actor_index == 0 and b.visibility < 0.5 for b in everything)
    assert [b.actor_index for b in kept] == [1]


def test_3d_boxes_in_map_and_ego_frames():
    actors = [{'type': 'mesh', 'asset': 'cube', 'motion': {'type': 'linear', 'position': [5, 1], 'velocity': [1, 0]}}]
    data_ego = {'type': 'linear', 'position': [0, 0], 'velocity': [2, 0]}
    with SimWorld(parse_scenario({'ego': {'motion': data_ego}, 'actors': actors, 'road': {'type': 'none'}})) as world:
        world.step(1.0)
        (in_map,) = world.ground_truth_3d('map')
        (in_ego,) = world.ground_truth_3d('base_link')
        assert in_map.center == pytest.approx([6.0, 1.0, 0.5], abs=1e-6)
        assert in_ego.center == pytest.approx([4.0, 1.0, 0.5], abs=1e-6)
        assert in_map.size == pytest.approx([1.0, 1.0, 1.0], abs=1e-3)
        parents = {(parent, child) for parent, child, _, _ in world.transforms()}
        assert ('map', 'base_link') in parents and ('camera_link', 'camera_optical_frame') in parents


def test_fixed_seed_gives_identical_frames():
    data = {'seed': 9, 'ego': {'camera': CAMERA, 'lidar_2d': {'noise': {'range_std': 0.02, 'dropout': 0.05}},
                               'lidar_3d': {'horizontal_resolution_deg': 2.0, 'noise': {'range_std': 0.02, 'dropout': 0.1}}},
            'actors': MIXED, 'randomization': {'lighting': True, 'textures': True, 'placement_jitter': 1.0,
                                               'yaw_jitter_deg': 45}}
    outputs = []
    for _ in range(2):
        with SimWorld(parse_scenario(data), seed=3) as world:
            world.step(0.3)
            frame = world.render_camera()
            outputs.append((frame.rgb, frame.depth, frame.segmentation, world.scan_2d().ranges,
                            world.scan_3d().points, [b.bbox for b in world.ground_truth_2d(frame)]))
    a, b = outputs
    for x, y in zip(a[:5], b[:5]):
        np.testing.assert_array_equal(x, y)
    assert a[5] == b[5]
    with SimWorld(parse_scenario(data), seed=4) as world:
        world.step(0.3)
        assert not np.array_equal(world.render_camera().rgb, a[0])


def test_every_shipped_scenario_runs():
    import dataclasses

    from aiat_perception.sim.scenario import load_scenario, scenario_dir
    for path in sorted(scenario_dir().glob('*.yaml')):
        scenario = load_scenario(path)
        camera = dataclasses.replace(scenario.ego.camera, width=320, height=240)
        scenario = dataclasses.replace(scenario, ego=dataclasses.replace(scenario.ego, camera=camera))
        with SimWorld(scenario, seed=1) as world:
            world.step(0.5)
            frame = world.render_camera()
            boxes = world.ground_truth_2d(frame)
            assert boxes, path.name
            for box in boxes:
                ys, xs = np.nonzero(frame.segmentation == box.actor_index)
                assert box.bbox == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            if scenario.ego.lidar_2d.enabled:
                assert np.isfinite(world.scan_2d().ranges).any(), path.name
