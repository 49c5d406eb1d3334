"""Each stage of the 3D lidar core on constructed clouds: crop, voxels, ground (flat, sloped, RANSAC),
clustering (separate and touching objects), L-shape yaw, box fit, classes, and the whole detector
on empty, one-point, all-NaN and structured inputs."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from aiat_perception.lidar import classify
from aiat_perception.lidar.clustering import euclidean_clusters
from aiat_perception.lidar.detector import PARAMETERS, PointCloudDetector
from aiat_perception.lidar.filters import crop_mask, voxel_downsample
from aiat_perception.lidar.ground import polar_grid_ground, ransac_ground
from aiat_perception.lidar.params import ParameterError, read_yaml, resolve
from aiat_perception.lidar.shapes import complete_car, fit_boxes, lshape_angles

from .lidar_scenes import box_faces, cylinder, ground, ground_height

ROOT = Path(__file__).resolve().parents[2]


def test_crop_drops_non_finite_and_out_of_range_points():
    pts = np.array([[5, 0, 0], [np.nan, 0, 0], [0.5, 0, 0], [90, 0, 0], [5, 0, np.inf], [5, 0, -9]], np.float32)
    assert crop_mask(pts, 1.0, 80.0, -5.0, 3.0).tolist() == [True, False, False, False, False, False]


def test_voxel_centroids_and_counts():
    pts = np.array([[0.1, 0.1, 0.1], [0.2, 0.2, 0.2], [1.1, 0.1, 0.1]])
    centroids, inverse, counts = voxel_downsample(pts, 0.5)
    assert sorted(counts.tolist()) == [1, 2]
    assert inverse[0] == inverse[1] != inverse[2]
    np.testing.assert_allclose(centroids[inverse[0]], [0.15, 0.15, 0.15])
    c2, inv2, _ = voxel_downsample(pts[:, :2], 0.5)      # ground-plane cells
    assert c2.shape[1] == 2 and inv2[0] == inv2[1]


@pytest.mark.parametrize('slope_deg', [0.0, 6.0, -5.0])
def test_grid_ground_removes_flat_and_sloped_ground_and_keeps_objects(slope_deg):
    g = ground(slope_deg=slope_deg)
    car_x = 15.0
    base = float(ground_height(car_x, slope_deg=slope_deg))
    car = box_faces((car_x, 3.0, base + 0.2 + 0.65), (4.0, 1.8, 1.3), 0.3)
    person = cylinder((22.0, -4.0, float(ground_height(22.0, slope_deg=slope_deg)) + 0.9), 0.25, 1.8)
    pts = np.vstack([g, car, person])
    obstacle, ground_z = polar_grid_ground(pts, 1.73, 60.0)
    n_g = len(g)
    assert obstacle[:n_g].mean() < 0.01, 'ground points left as obstacles'
    assert obstacle[n_g:].mean() > 0.85, 'object points taken as ground'
    # the ground estimate follows the slope under the car
    under_car = np.abs(g[:, 0] - car_x) < 1.0
    np.testing.assert_allclose(np.median(ground_z[:n_g][under_car]), base, atol=0.1)


def test_ransac_ground_on_a_flat_road():
    g = ground()
    car = box_faces((12.0, 2.0, -1.73 + 0.9), (4.0, 1.8, 1.4), 0.0)
    obstacle, _ = ransac_ground(np.vstack([g, car]), 1.73)
    assert obstacle[:len(g)].mean() < 0.01 and obstacle[len(g):].mean() > 0.8


def test_clusters_separate_objects_and_join_touching_ones():
    a = box_faces((10.0, 0.0, 0.0), (4.0, 1.8, 1.4), 0.0, visible_only=False)
    b = box_faces((10.0, 3.5, 0.0), (4.0, 1.8, 1.4), 0.0, visible_only=False)      # 1.7 m gap
    c = box_faces((10.0, 5.6, 0.0), (4.0, 1.8, 1.4), 0.0, visible_only=False)      # 0.3 m from b
    clusters = euclidean_clusters(np.vstack([a, b, c]), 0.7, 0.3)
    assert clusters.count == 2
    la, lb, lc = (clusters.labels[:len(a)], clusters.labels[len(a):len(a) + len(b)], clusters.labels[len(a) + len(b):])
    assert len(set(la)) == 1 and set(lb) == set(lc) and la[0] != lb[0]


def test_clusters_of_empty_one_point_and_too_small_clouds():
    assert euclidean_clusters(np.zeros((0, 3)), 0.7, 0.3).count == 0
    one = euclidean_clusters(np.array([[1.0, 2.0, 0.0]]), 0.7, 0.3, min_points=1)
    assert one.count == 1 and one.labels.tolist() == [0]
    assert euclidean_clusters(np.array([[1.0, 2.0, 0.0]]), 0.7, 0.3, min_points=10).labels.tolist() == [-1]


@pytest.mark.parametrize('yaw_deg', [0.0, 17.0, 33.0, 58.0, 80.0, -25.0])
def test_lshape_yaw_error_on_a_car_seen_from_a_corner(yaw_deg):
    yaw = math.radians(yaw_deg)
    pts = box_faces((14.0, 6.0, 0.0), (4.5, 1.8, 1.5), yaw, spacing=0.08, noise=0.02)
    labels = np.zeros(len(pts), np.int64)
    angle = lshape_angles(pts[:, :2], labels, 1)[0]
    boxes = fit_boxes(pts, labels, 1, np.array([angle]))
    err = (boxes.yaw[0] - yaw) % math.pi
    assert min(err, math.pi - err) < math.radians(2.0)
    np.testing.assert_allclose(boxes.size[0, :2], [4.5, 1.8], atol=0.15)   # min/max of noisy points
    np.testing.assert_allclose(boxes.center[0, :2], [14.0, 6.0], atol=0.1)


def test_fit_boxes_reaches_down_to_the_ground_and_handles_many_clusters():
    a = box_faces((8.0, 0.0, 0.0), (2.0, 1.0, 1.0), 0.0, visible_only=False)
    b = box_faces((8.0, 6.0, 0.5), (1.0, 1.0, 2.0), 0.0, visible_only=False)
    pts = np.vstack([a, b])
    labels = np.r_[np.zeros(len(a), np.int64), np.ones(len(b), np.int64)]
    boxes = fit_boxes(pts, labels, 2, np.zeros(2), ground_z=np.full(len(pts), -1.0))
    np.testing.assert_allclose(boxes.size[0], [2.0, 1.0, 1.5], atol=0.06)   # bottom -1.0, top 0.5
    np.testing.assert_allclose(boxes.center[1, :2], [8.0, 6.0], atol=0.05)
    assert boxes.n_points.tolist() == [len(a), len(b)]


def test_completing_a_car_seen_from_behind_grows_it_away_from_the_sensor():
    center, size, yaw = complete_car((20.0, 0.0, 0.0), (1.7, 0.3, 1.5), math.pi / 2, 3.9, 1.6)
    assert size[0] == pytest.approx(3.9) and size[1] == pytest.approx(1.7)
    assert center[0] == pytest.approx(20.0 + (3.9 - 0.3) / 2) and abs(math.sin(yaw)) < 1e-9


def test_classes_by_size_and_shape():
    size = np.array([[4.2, 1.7, 1.5], [0.6, 0.5, 1.75], [1.8, 0.6, 1.75], [12.0, 0.3, 2.0]])
    names, scores = classify.classify(size, np.full(4, 200), top_extent=np.array([0.85, 0.7, 0.4, 1.0]))
    assert names == ['car', 'pedestrian', 'cyclist', 'unknown']
    assert scores[:3].min() > 0.9
    # sparse clusters lose score; a wall seen at a grazing angle is not a car's side
    assert classify.classify(size[:1], np.array([5]))[0] == ['unknown']
    thin = np.array([[4.2, 0.3, 1.5]])
    grazing = classify.side_view_angle(np.array([[30.0, 3.0, 0.0]]), np.array([0.0]))
    assert classify.classify(thin, np.array([200]), view_angle=grazing)[0] == ['unknown']
    assert classify.classify(thin, np.array([200]), view_angle=np.array([80.0]), top_extent=np.array([0.9]))[0] == ['car']


def scene(yaw=0.4):
    g = ground(extent=30.0, spacing=0.2)
    car = box_faces((12.0, 4.0, -1.73 + 0.25 + 0.7), (4.4, 1.8, 1.4), yaw, spacing=0.06)
    person = cylinder((9.0, -5.0, -1.73 + 0.88), 0.25, 1.76)
    return np.vstack([g, car, person]).astype(np.float32)


def test_detector_finds_a_car_of_known_pose_and_a_pedestrian():
    result = PointCloudDetector()(scene(0.4))
    assert set(result.stage_ms) == {'filter', 'ground', 'clustering', 'fitting'}
    by_class = {d.class_name: d for d in result.detections}
    assert {'car', 'pedestrian'} <= set(by_class)
    car, ped = by_class['car'], by_class['pedestrian']
    assert math.hypot(car.center[0] - 12.0, car.center[1] - 4.0) < 0.3
    err = (car.yaw - 0.4) % math.pi
    assert min(err, math.pi - err) < math.radians(3)
    assert car.size[0] == pytest.approx(4.4, abs=0.2) and car.size[2] == pytest.approx(1.65, abs=0.15)
    assert math.hypot(ped.center[0] - 9.0, ped.center[1] + 5.0) < 0.3 and ped.shape == 'cylinder'


def test_detector_on_empty_one_point_nan_and_structured_clouds():
    det = PointCloudDetector()
    for cloud in (np.zeros((0, 3), np.float32), np.array([[5.0, 0.0, 0.0]], np.float32),
                  np.full((1000, 4), np.nan, np.float32), np.zeros((0,))):
        result = det(cloud)
        assert result.detections == [] and set(result.stage_ms) == {'filter', 'ground', 'clustering', 'fitting'}
    structured = np.zeros(len(scene()), dtype=[('x', '<f4'), ('y', '<f4'), ('z', '<f4'), ('intensity', '<f4')])
    for i, name in enumerate('xyz'):
        structured[name] = scene()[:, i]
    assert any(d.class_name == 'car' for d in det(structured).detections)
    with pytest.raises(ValueError, match='no x'):
        det(np.zeros(3, dtype=[('a', '<f4')]))


def test_ransac_option_and_parameter_checks():
    det = PointCloudDetector({'ground_method': 'ransac'})
    assert any(d.class_name == 'car' for d in det(scene()).detections)
    for bad, match in [({'cluster_tolerance': float('nan')}, 'finite'), ({'cluster_tolerance': -1.0}, r'\['),
                       ({'no_such': 1}, 'unknown parameter'), ({'ground_method': 'magic'}, 'one of'),
                       ({'cluster_min_points': 2.5}, 'integer'), ({'output_unknown': 'yes'}, 'true or false')]:
        with pytest.raises(ParameterError, match=match):
            resolve(PARAMETERS, bad)


def test_config_file_documents_every_parameter_with_the_table_defaults():
    values = read_yaml(ROOT / 'config' / 'lidar_detector.yaml', 'lidar_detector', PARAMETERS)
    assert values == resolve(PARAMETERS)
    text = (ROOT / 'config' / 'lidar_detector.yaml').read_text()
    for name in PARAMETERS:
        assert f'    {name}:' in text


def test_detector_survives_hostile_clouds():
    rng = np.random.default_rng(7)
    det = PointCloudDetector()
    specials = np.array([np.nan, np.inf, -np.inf, 1e30, -1e30, 0.0, 3.4e38], np.float32)
    for trial in range(20):
        n = int(rng.integers(0, 3000))
        cloud = rng.normal(0, 20, (n, 4)).astype(np.float32)
        if n:
            hit = rng.random((n, 4)) < 0.05
            cloud[hit] = rng.choice(specials, size=int(hit.sum()))
        if trial % 5 == 0:
            cloud[:, :3] = 7.0          # every point in one place
        result = det(cloud)
        for d in result.detections:
            assert np.all(np.isfinite(d.center)) and np.all(np.isfinite(d.size)) and np.isfinite(d.yaw)


def test_parameter_file_errors_and_node_parameters(tmp_path):
    f = tmp_path / 'p.yaml'
    f.write_text('lidar_detector:\n  ros__parameters:\n    cluster_tolerance: 0.5\n    input_topic: /points\n')
    with pytest.raises(ParameterError, match='unknown parameter .input_topic'):
        read_yaml(f, 'lidar_detector', PARAMETERS)
    values = read_yaml(f, 'lidar_detector', PARAMETERS, node_parameters=['input_topic'])
    assert values['cluster_tolerance'] == 0.5 and 'input_topic' not in values
    with pytest.raises(ParameterError, match='no "scan_detector: ros__parameters:"'):
        read_yaml(f, 'scan_detector', PARAMETERS)
    f.write_text('lidar_detector: {ros__parameters: {cluster_tolerance: .nan}}')
    with pytest.raises(ParameterError, match='p.yaml: cluster_tolerance must be finite'):
        read_yaml(f, 'lidar_detector', PARAMETERS)
    f.write_text('{[')
    with pytest.raises(ParameterError, match='cannot read'):
        read_yaml(f, 'lidar_detector', PARAMETERS)
