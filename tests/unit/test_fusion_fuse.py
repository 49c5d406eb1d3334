"""fuse(): the dominant depth cluster against background, covariance, association with lidar boxes,
the centre from the lidar box or the class depth, config validation, and empty / bad inputs."""
from __future__ import annotations

import math

import numpy as np
import pytest

from aiat_perception.fusion import CameraModel, FusionConfig, FusionConfigError, fuse
from aiat_perception.fusion.association import box_corners_3d
from aiat_perception.fusion.estimate import dominant_cluster, estimate, push_back
from aiat_perception.lidar.types import Detection3D

K = np.array([[600.0, 0.0, 400.0], [0.0, 600.0, 200.0], [0.0, 0.0, 1.0]])
CAMERA = CameraModel(P=np.hstack([K, np.zeros((3, 1))]), K=K, width=800, height=400)
# lidar (x forward, y left, z up), 1.5 m above the ground, at the camera's position
CAM_FROM_LIDAR = np.array([[0.0, -1.0, 0.0, 0.0], [0.0, 0.0, -1.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0, 0, 0, 1.0]])


def grid(x_range, y_range, z_range, step):
    """Points filling an axis-aligned lidar-frame box at ``step`` spacing (a plane when one range is flat)."""
    axes = [np.arange(lo, hi + 1e-9, step) if hi > lo else np.array([lo]) for lo, hi in (x_range, y_range, z_range)]
    return np.stack(np.meshgrid(*axes, indexing='ij'), -1).reshape(-1, 3)


def scan(boxes, wall_x=20.0, ground_z=-1.5, az_step=0.15, el_step=0.4):
    """A lidar scan (HDL-64E-like: 0.15 deg x 0.4 deg) of axis-aligned boxes (lo, hi corners) in
    front of a wall at x = ``wall_x`` over flat ground: each ray's nearest hit, so what a box hides
    is not in the scan."""
    az = np.radians(np.arange(-30.0, 30.0, az_step))
    el = np.radians(np.arange(-20.0, 8.0, el_step))
    a, e = np.meshgrid(az, el, indexing='ij')
    d = np.stack([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)], -1).reshape(-1, 3)
    t = np.full(len(d), np.inf)
    with np.errstate(divide='ignore', invalid='ignore'):
        t = np.where(d[:, 0] > 0, np.minimum(t, wall_x / d[:, 0]), t)
        t = np.where(d[:, 2] < 0, np.minimum(t, ground_z / d[:, 2]), t)
        for lo, hi in boxes:
            t0, t1 = (np.asarray(lo) / d), (np.asarray(hi) / d)
            near = np.nanmax(np.minimum(t0, t1), axis=1)
            far = np.nanmin(np.maximum(t0, t1), axis=1)
            hit = (near <= far) & (near > 0)
            t = np.where(hit, np.minimum(t, near), t)
    keep = np.isfinite(t)
    return d[keep] * t[keep, None]


PERSON = ((10.0, -0.25, -1.5), (10.5, 0.25, 0.2))      # 0.5 x 0.5 x 1.7 m, 10 m ahead


def person_scene():
    """A person 10 m ahead, a wall 20 m ahead, the ground between: (person points, the rest)."""
    points = scan([PERSON])
    lo, hi = np.array(PERSON[0]) - 1e-6, np.array(PERSON[1]) + 1e-6
    on_person = np.all((points >= lo) & (points <= hi), axis=1)
    return points[on_person], points[~on_person]


def image_box(points_lidar):
    proj = CAMERA.project_lidar(points_lidar, CAM_FROM_LIDAR, within_image=False)
    uv = proj.uv[np.isfinite(proj.uv[:, 0])]
    return np.concatenate([uv.min(axis=0), uv.max(axis=0)])


def test_dominant_cluster_picks_the_largest_group_and_the_nearer_on_a_tie():
    ranges = np.array([20.1, 10.0, 10.2, 20.0, 10.1, 35.0])
    assert sorted(dominant_cluster(ranges, 1.0).tolist()) == [1, 2, 4]
    assert sorted(dominant_cluster(np.array([30.0, 30.5, 10.0, 10.4]), 1.0).tolist()) == [2, 3]
    assert dominant_cluster(np.zeros(0), 1.0).size == 0


def test_background_and_ground_do_not_move_the_position():
    person, rest = person_scene()
    box = image_box(person)
    # widen the box as detectors do: the wall and ground show around the person
    box = box + np.array([-15.0, -8.0, 15.0, 8.0])
    points = np.concatenate([person, rest])
    r = fuse(box[None], ['person'], [0.9], points, CAM_FROM_LIDAR, CAMERA)
    (obj,) = r.objects
    assert r.unsupported == [] and obj.detection_index == 0 and obj.class_name == 'person'
    # the visible surface is at 10 m; the centre half the class depth (0.5 m) behind it
    assert obj.surface_distance == pytest.approx(10.0, abs=0.1)
    assert obj.distance == pytest.approx(10.25, abs=0.1)
    assert obj.center_source == 'class_depth' and obj.lidar_index is None
    # the mean of the points in the box is far off: that is what the cluster is for
    cam = points @ CAM_FROM_LIDAR[:3, :3].T
    proj = CAMERA.project(cam)
    inside = proj.valid & (proj.uv[:, 0] >= box[0]) & (proj.uv[:, 0] <= box[2]) & (proj.uv[:, 1] >= box[1]) \
        & (proj.uv[:, 1] <= box[3])
    assert np.linalg.norm(cam[inside].mean(axis=0)) > 12.0
    # camera frame: x right, y down, z forward
    assert obj.position[2] == pytest.approx(10.25, abs=0.1) and abs(obj.position[0]) < 0.1
    assert 0.3 < obj.extent[0] <= 0.5 + 1e-6 and obj.extent[1] > 0.8


def test_covariance_is_the_spread_of_the_supporting_points_plus_range_noise():
    rng = np.random.default_rng(3)
    pts = rng.uniform([-0.5, -1.0, 9.8], [0.5, 1.0, 10.2], size=(100000, 3))
    est = estimate(pts, range_noise=0.05)
    expected = np.diag(np.array([1.0, 2.0, 0.4]) ** 2 / 12.0 + 0.05 ** 2)
    np.testing.assert_allclose(est.covariance, expected, rtol=0.02, atol=2e-3)
    np.testing.assert_allclose(est.extent, [1.0, 2.0, 0.4], atol=1e-2)
    single = estimate(np.array([[1.0, 2.0, 3.0]]), range_noise=0.1)
    np.testing.assert_allclose(single.covariance, np.eye(3) * 0.01)
    assert np.all(np.linalg.eigvalsh(single.covariance) > 0)
    np.testing.assert_allclose(push_back(np.array([0.0, 0.0, 10.0]), 2.0), [0.0, 0.0, 11.0])


def test_fused_object_covariance_from_real_points():
    person, rest = person_scene()
    r = fuse(image_box(person)[None], ['person'], [0.9], np.concatenate([person, rest]), CAM_FROM_LIDAR, CAMERA)
    cov = r.objects[0].covariance
    np.testing.assert_allclose(cov, cov.T)
    assert np.all(np.linalg.eigvalsh(cov) > 0)
    # tall, narrow person: the spread is largest along the camera's y (down)
    assert cov[1, 1] > cov[0, 0] and cov[1, 1] > cov[2, 2]


def car(x, y, yaw=0.0):
    return Detection3D('car', 0.9, (x, y, -0.75), (4.0, 1.7, 1.5), yaw, 200)


def car_points(det):
    corners = box_corners_3d(det.center, det.size, det.yaw)
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    face = grid((lo[0], lo[0]), (lo[1], hi[1]), (lo[2], hi[2]), 0.05)       # the rear, facing the lidar
    return face


def test_association_with_projected_lidar_boxes():
    near, far, behind = car(15.0, 2.0), car(30.0, -4.0), car(-10.0, 0.0)
    unknown_wall = Detection3D('unknown', 0.5, (25.0, 8.0, 0.0), (0.5, 6.0, 3.0), 0.0, 100)
    lidar = [near, far, behind, unknown_wall]
    points = np.concatenate([car_points(near), car_points(far)])
    boxes = np.array([image_box(box_corners_3d(near.center, near.size, near.yaw)),
                      image_box(box_corners_3d(far.center, far.size, far.yaw)) + [5, 2, -5, -2],
                      [10.0, 10.0, 60.0, 60.0]])                              # nothing there
    r = fuse(boxes, ['car', 'truck', 'person'], [0.9, 0.8, 0.7], points, CAM_FROM_LIDAR, CAMERA,
             lidar_detections=lidar)
    by_det = {o.detection_index: o for o in r.objects}
    assert by_det[0].lidar_index == 0 and by_det[1].lidar_index == 1
    assert r.unsupported == [2]
    # the box with no points counts, unconfirmed (points that miss the boxes are disagreement)
    assert r.camera_count == 3 and r.confirmed == 2
    far_only = fuse(boxes, ['car', 'truck', 'person'], [0.9, 0.8, 0.7], points, CAM_FROM_LIDAR, CAMERA,
                    FusionConfig(confirm_max_distance=20.0), lidar)
    assert far_only.camera_count == 2 and far_only.confirmed == 1          # the car 30 m away is beyond reach
    no_classes = fuse(boxes, ['car', 'truck', 'person'], [0.9, 0.8, 0.7], points, CAM_FROM_LIDAR, CAMERA,
                      FusionConfig(confirm_classes=('person',)), lidar)
    assert no_classes.camera_count == 1 and no_classes.confirmed == 0      # only the empty 'person' box
    assert r.ious[0] == pytest.approx(1.0, abs=1e-6) and 0.6 < r.ious[1] < 1.0
    # the car behind is not in view; the unknown wall is in view but not a class the camera must see
    assert r.lidar_in_view == 2 and r.lidar_missed == 0
    assert np.isnan(r.lidar_boxes[2]).all()
    # associated: the centre is the lidar box's centre, in the camera frame
    np.testing.assert_allclose(by_det[0].position, CAM_FROM_LIDAR[:3, :3] @ np.array(near.center), atol=1e-9)
    assert by_det[0].center_source == 'lidar'
    assert by_det[0].distance == pytest.approx(math.hypot(15.0, 2.0, 0.75), abs=1e-6)
    assert by_det[0].surface_distance == pytest.approx(13.2, abs=0.2)
    # without the lidar box's centre, the class depth (car 2.8 m) pushes the surface back
    plain = fuse(boxes, ['car', 'truck', 'person'], [0.9, 0.8, 0.7], points, CAM_FROM_LIDAR, CAMERA,
                 FusionConfig(use_lidar_center=False), lidar)
    assert plain.objects[0].center_source == 'class_depth'
    assert plain.objects[0].distance == pytest.approx(plain.objects[0].surface_distance + 1.4, abs=0.05)


def test_a_missed_lidar_object_and_a_lidar_box_elsewhere():
    near, other = car(15.0, 2.0), car(20.0, -5.0)
    points = np.concatenate([car_points(near), car_points(other)])
    box = image_box(box_corners_3d(near.center, near.size, near.yaw))
    r = fuse(box[None], ['car'], [0.9], points, CAM_FROM_LIDAR, CAMERA, lidar_detections=[near, other])
    assert r.lidar_in_view == 2 and r.lidar_missed == 1 and r.confirmed == 1
    # an associated lidar box whose centre is not where the points are keeps the class-depth centre
    moved = Detection3D('car', 0.9, (45.0, 6.0, -0.75), (4.0, 1.7, 1.5), 0.0, 50)
    wide = CAMERA.project_lidar(box_corners_3d(moved.center, moved.size, moved.yaw), CAM_FROM_LIDAR).uv
    assert np.isfinite(wide).all()
    r2 = fuse(box[None], ['car'], [0.9], points, CAM_FROM_LIDAR, CAMERA, FusionConfig(association_iou=1e-6),
              [Detection3D('car', 0.9, (30.0, 4.0, -0.75), (8.0, 6.0, 3.0), 0.0, 50)])
    assert r2.objects[0].lidar_index == 0 and r2.objects[0].center_source == 'class_depth'


def test_empty_and_bad_inputs_lose_nothing():
    person, _ = person_scene()
    box = image_box(person)[None]
    no_points = fuse(box, ['person'], [0.9], np.zeros((0, 4), np.float32), CAM_FROM_LIDAR, CAMERA)
    assert no_points.objects == [] and no_points.unsupported == [0] and no_points.confirmed == 0
    no_boxes = fuse(np.zeros((0, 4)), [], [], person, CAM_FROM_LIDAR, CAMERA, lidar_detections=[])
    assert no_boxes.objects == [] and no_boxes.unsupported == [] and no_boxes.camera_count == 0
    assert no_boxes.points_in_image > 0
    clean = fuse(box, ['person'], [0.9], person, CAM_FROM_LIDAR, CAMERA)
    no_lidar = fuse(box, ['person'], [0.9], person, CAM_FROM_LIDAR, CAMERA, lidar_detections=[])
    assert no_lidar.objects[0].lidar_index is None and no_lidar.confirmed == 0 and no_lidar.camera_count == 1
    assert no_lidar.lidar_in_view == 0 and no_lidar.ious == []
    dirty = np.concatenate([person, [[np.nan, 0, 0], [np.inf, 1.0, 0.0], [10.0, -np.inf, 0.0]]])
    noisy = fuse(box, ['person'], [0.9], dirty, CAM_FROM_LIDAR, CAMERA)
    assert noisy.points_dropped == 3
    np.testing.assert_allclose(noisy.objects[0].position, clean.objects[0].position)
    huge = np.concatenate([person, [[1e300, 0.0, 0.0], [1e300, 1e299, -1e299], [-1e308, 0.0, 1e308]]])
    absurd = fuse(box, ['person'], [0.9], huge, CAM_FROM_LIDAR, CAMERA)
    np.testing.assert_allclose(absurd.objects[0].position, clean.objects[0].position)
    giant_box = fuse(np.array([[-1e300, -1e300, 1e300, 1e300]]), ['person'], [0.9], person, CAM_FROM_LIDAR, CAMERA)
    assert len(giant_box.objects) == 1
    bad_boxes = np.array([[np.nan, 0, 10, 10], [50, 50, 40, 60], box[0]])
    r = fuse(bad_boxes, ['person'] * 3, [0.9, 0.8, 0.7], person, CAM_FROM_LIDAR, CAMERA)
    assert r.unsupported == [0, 1] and [o.detection_index for o in r.objects] == [2]
    structured = np.zeros(len(person), dtype=[('x', 'f4'), ('y', 'f4'), ('z', 'f4'), ('intensity', 'f4')])
    for i, k in enumerate('xyz'):
        structured[k] = person[:, i]
    assert len(fuse(box, ['person'], [0.9], structured, CAM_FROM_LIDAR, CAMERA).objects) == 1
    with pytest.raises(ValueError, match='3 boxes, 2 class names'):
        fuse(bad_boxes, ['a', 'b'], [1, 1, 1], person, CAM_FROM_LIDAR, CAMERA)
    with pytest.raises(ValueError, match='N x 3'):
        fuse(box, ['person'], [0.9], np.zeros((5, 2)), CAM_FROM_LIDAR, CAMERA)
    with pytest.raises(ValueError, match='4x4'):
        fuse(box, ['person'], [0.9], person, np.eye(3), CAMERA)


def test_too_few_points_make_a_box_unsupported():
    person, _ = person_scene()
    box = image_box(person)[None]
    sparse = person[::200]
    r = fuse(box, ['person'], [0.9], sparse, CAM_FROM_LIDAR, CAMERA, FusionConfig(min_points=len(sparse) + 1))
    assert r.unsupported == [0] and r.objects == []
    assert r.confirmed == 0 and r.camera_count == 1


@pytest.mark.parametrize('kwargs, message', [
    (dict(min_points=0), 'min_points: must be in'),
    (dict(min_points=2.5), 'min_points: must be a whole number'),
    (dict(box_shrink=0.0), r'box_shrink: must be in \(0'),
    (dict(box_shrink=float('nan')), 'box_shrink: must be finite'),
    (dict(depth_gap=-1.0), 'depth_gap'),
    (dict(max_range=1.0, min_range=2.0), 'max_range .* must exceed min_range'),
    (dict(association_iou=True), 'association_iou: must be a number'),
    (dict(use_lidar_center='yes'), 'use_lidar_center: must be true or false'),
    (dict(class_depth={'car': -1.0}), r"class_depth\['car'\]"),
    (dict(miss_classes='car'), 'miss_classes: must be a list'),
    (dict(range_noise=float('inf')), 'range_noise: must be finite'),
    (dict(confirm_max_distance=0.0), 'confirm_max_distance'),
    (dict(confirm_classes=[1, 2]), 'confirm_classes: must be a list'),
])
def test_config_errors_name_the_setting(kwargs, message):
    with pytest.raises(FusionConfigError, match=message):
        FusionConfig(**kwargs)


def test_config_from_dict_rejects_unknown_settings():
    with pytest.raises(FusionConfigError, match='fusion.yaml: unknown setting.*box_shrinkk'):
        FusionConfig.from_dict({'box_shrinkk': 0.5}, 'fusion.yaml')
    with pytest.raises(FusionConfigError, match='fusion.yaml: fusion config depth_gap'):
        FusionConfig.from_dict({'depth_gap': 0}, 'fusion.yaml')
    assert FusionConfig.from_dict({'min_points': 3}).min_points == 3


def test_a_small_far_box_falls_back_to_the_whole_box():
    person, rest = person_scene()
    box = image_box(person)
    points = np.concatenate([person, rest])
    shrunk = fuse(box[None], ['person'], [0.9], points, CAM_FROM_LIDAR, CAMERA, FusionConfig(min_points=200))
    # the central 60 % holds fewer than 200 person points: the whole box is searched, and the wall
    # and ground beside the person still lose to the person's cluster
    inner = fuse(box[None], ['person'], [0.9], person, CAM_FROM_LIDAR, CAMERA, FusionConfig(min_points=1))
    assert inner.objects[0].n_points < 200 <= len(person)
    (obj,) = shrunk.objects
    assert obj.n_points >= 200 and obj.surface_distance == pytest.approx(10.0, abs=0.15)


def test_box_corners_agree_with_the_lidar_footprint():
    det = Detection3D('car', 0.9, (12.0, -3.0, -0.8), (4.2, 1.8, 1.5), 0.7, 100)
    corners = box_corners_3d(det.center, det.size, det.yaw)
    footprint = det.corners_bev()
    for xy in corners[:, :2]:
        assert np.min(np.linalg.norm(footprint - xy, axis=1)) < 1e-9
    assert sorted(set(np.round(corners[:, 2], 9))) == [-1.55, -0.05]
