"""CameraModel: the KITTI chain on real calib and points, P's fourth column, R, distortion against
the plumb_bob / equidistant formulas and OpenCV, masking, and CameraInfo field validation."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from aiat_perception.assets import shared_data
from aiat_perception.fusion import CameraModel, CameraModelError, homogeneous
from aiat_perception.kitti import KittiCalibration, read_velodyne
from aiat_perception.metrics.kitti_rules import png_size

K = np.array([[500.0, 0.0, 320.0], [0.0, 480.0, 240.0], [0.0, 0.0, 1.0]])


def pinhole(**kw):
    args = dict(P=np.hstack([K, np.zeros((3, 1))]), K=K, width=640, height=480)
    args.update(kw)
    return CameraModel(**args)


@pytest.mark.parametrize('name', ['000134', '000001'])
def test_kitti_projection_equals_the_calibration_chain(name):
    root = shared_data('kitti_object', 'training')
    calib = KittiCalibration.read(root / 'calib' / f'{name}.txt')
    width, height = png_size(root / 'image_2' / f'{name}.png')
    points = read_velodyne(root / 'velodyne' / f'{name}.bin')
    camera = CameraModel.from_kitti(calib, width, height)
    proj = camera.project_lidar(points, homogeneous(calib.Tr_velo_to_cam))
    uv, depth = calib.project_velo(points[:, :3])
    inside = calib.in_image(points[:, :3], width, height) & (depth >= camera.min_depth)
    np.testing.assert_array_equal(proj.valid, inside)
    assert inside.sum() > 15000
    np.testing.assert_allclose(proj.uv[inside], uv[inside], atol=1e-6)
    assert np.all(np.isnan(proj.uv[~inside]))


def test_fourth_column_of_p_shifts_by_baseline_over_depth():
    tx = -0.54 * 500.0                        # a right stereo camera 0.54 m from the left one
    P = np.hstack([K, [[tx], [0.0], [0.0]]])
    pts = np.array([[0.5, 0.2, 5.0], [0.5, 0.2, 20.0]])
    shifted = pinhole(P=P).project(pts).uv
    plain = pinhole().project(pts).uv
    np.testing.assert_allclose(shifted[:, 0] - plain[:, 0], tx / pts[:, 2])
    np.testing.assert_allclose(shifted[:, 1], plain[:, 1])


def test_rectification_r_rotates_before_p():
    angle = math.radians(5.0)
    R = np.array([[math.cos(angle), 0, math.sin(angle)], [0, 1, 0], [-math.sin(angle), 0, math.cos(angle)]])
    # the point R maps onto the rectified optical axis lands on the principal point
    on_axis = R.T @ np.array([0.0, 0.0, 10.0])
    uv = pinhole(R=R).project(on_axis[None]).uv[0]
    np.testing.assert_allclose(uv, [320.0, 240.0], atol=1e-9)
    assert abs(pinhole().project(on_axis[None]).uv[0, 0] - 320.0) > 40


def test_points_behind_or_outside_are_masked_unless_asked():
    cam = pinhole()
    pts = np.array([[0.0, 0.0, 5.0], [0.0, 0.0, -5.0], [100.0, 0.0, 5.0], [0.0, 0.0, 0.05]])
    proj = cam.project(pts)
    assert proj.valid.tolist() == [True, False, False, False]
    np.testing.assert_allclose(proj.depth, pts[:, 2])
    loose = cam.project(pts, within_image=False)
    assert loose.valid.tolist() == [True, False, True, False]
    assert loose.uv[2, 0] == pytest.approx(320 + 500 * 20)


def plumb_bob(point, k, d):
    """Brown-Conrady as CameraInfo's plumb_bob defines it (k1 k2 t1 t2 k3), written out."""
    x, y = point[0] / point[2], point[1] / point[2]
    k1, k2, p1, p2, k3 = d
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2 ** 2 + k3 * r2 ** 3
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return np.array([k[0, 0] * xd + k[0, 2], k[1, 1] * yd + k[1, 2]])


def test_plumb_bob_distortion_projects_like_the_formula_and_opencv():
    d = [-0.28, 0.07, 0.0012, -0.0008, 0.0]
    raw = CameraModel.from_camera_info_fields(K.ravel(), d, np.eye(3).ravel(), pinhole().P.ravel(), 640, 480,
                                              'plumb_bob', rectified=False)
    pts = np.array([[3.0, 2.1, 5.0], [-2.0, 0.5, 6.0], [0.1, -0.1, 4.0], [-1.6, -1.2, 5.0]])
    proj = raw.project(pts)
    assert proj.valid.all()
    expected = np.array([plumb_bob(p, K, d) for p in pts])
    np.testing.assert_allclose(proj.uv, expected, atol=1e-6)
    cv_uv, _ = cv2.projectPoints(pts.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), K, np.array(d))
    np.testing.assert_allclose(proj.uv, cv_uv.reshape(-1, 2), atol=1e-6)
    # a distorted camera projects differently: barrel distortion pulls the corners in by many pixels
    straight = pinhole().project(pts).uv
    assert np.abs(proj.uv - straight).max() > 20
    # and the pixel undistorts back to the point's direction
    norm = cv2.undistortPoints(proj.uv.reshape(-1, 1, 2), K, np.array(d)).reshape(-1, 2)
    np.testing.assert_allclose(norm, pts[:, :2] / pts[:, 2:], atol=1e-4)


def test_rectified_image_ignores_distortion():
    d = [-0.28, 0.07, 0.0012, -0.0008, 0.0]
    rect = CameraModel.from_camera_info_fields(K.ravel(), d, np.eye(3).ravel(), pinhole().P.ravel(), 640, 480,
                                               'plumb_bob', rectified=True)
    pts = np.array([[1.5, 1.0, 5.0]])
    np.testing.assert_allclose(rect.project(pts).uv, pinhole().project(pts).uv)


def test_equidistant_distortion_matches_the_fisheye_formula():
    d = [0.05, -0.01, 0.002, -0.0003]
    fish = CameraModel(P=np.hstack([K, np.zeros((3, 1))]), K=K, width=640, height=480, D=d,
                       distortion_model='equidistant', rectified=False)
    pts = np.array([[1.0, 0.5, 3.0], [-0.8, -0.6, 2.0]])
    uv = fish.project(pts).uv
    for p, got in zip(pts, uv):
        a, b = p[0] / p[2], p[1] / p[2]
        r = math.hypot(a, b)
        theta = math.atan(r)
        theta_d = theta * (1 + d[0] * theta ** 2 + d[1] * theta ** 4 + d[2] * theta ** 6 + d[3] * theta ** 8)
        np.testing.assert_allclose(got, [K[0, 0] * a * theta_d / r + K[0, 2], K[1, 1] * b * theta_d / r + K[1, 2]],
                                   atol=1e-6)


def test_a_point_outside_the_lens_field_of_view_does_not_wrap_into_the_image():
    # k1 = -0.2: the radial factor 1 + k1 r^2 reaches 0 at r = sqrt(5), so OpenCV puts a point 66
    # degrees off-axis on the principal point; the image's own border bounds what it can see.
    d = [-0.2, 0.0, 0.0, 0.0, 0.0]
    raw = CameraModel(P=np.hstack([K, np.zeros((3, 1))]), K=K, width=640, height=480, D=d,
                      distortion_model='plumb_bob', rectified=False)
    off_axis = np.array([[math.sqrt(5.0) * 4.0, 0.0, 4.0]])
    cv_uv, _ = cv2.projectPoints(off_axis.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), K, np.array(d))
    assert 0 <= cv_uv[0, 0, 0] < 640
    assert not raw.project(off_axis).valid[0]
    assert raw.project(np.array([[0.5, 0.2, 4.0]])).valid[0]


@pytest.mark.parametrize('field, value, message', [
    ('k', [500, 0, 320, 0, float('nan'), 240, 0, 0, 1], 'k: contains NaN'),
    ('p', [500, 0, 320, 0, 0, 480, 240], 'p: needs 12 numbers'),
    ('p', [0, 0, 320, 0, 0, 480, 240, 0, 0, 0, 1, 0], 'P: focal lengths must be positive'),
    ('d', [0.1, 0.2, 0.3], 'D: plumb_bob distortion model takes'),
    ('r', [1, 0, 0, 0, 1, 0, 0, 0, float('inf')], 'r: contains NaN or infinite'),
    ('k', ['a'] * 9, 'k: not a list of numbers'),
])
def test_camera_info_fields_are_validated_by_name(field, value, message):
    fields = dict(k=K.ravel().tolist(), d=[0.0] * 5, r=np.eye(3).ravel().tolist(),
                  p=np.hstack([K, np.zeros((3, 1))]).ravel().tolist(), width=640, height=480,
                  distortion_model='plumb_bob', rectified=field != 'd')
    fields[field] = value
    with pytest.raises(CameraModelError, match=message.replace('(', r'\(')):
        CameraModel.from_camera_info_fields(**fields)


def test_camera_info_other_errors_and_unset_r():
    p = np.hstack([K, np.zeros((3, 1))]).ravel()
    with pytest.raises(CameraModelError, match='width'):
        CameraModel.from_camera_info_fields(K.ravel(), [], np.eye(3).ravel(), p, 0, 480)
    with pytest.raises(CameraModelError, match='distortion_model'):
        CameraModel.from_camera_info_fields(K.ravel(), [], np.eye(3).ravel(), p, 640, 480, 'kannala')
    with pytest.raises(CameraModelError, match='K: focal lengths'):
        CameraModel.from_camera_info_fields(np.zeros(9), [], np.eye(3).ravel(), p, 640, 480, rectified=False)
    unset = CameraModel.from_camera_info_fields(K.ravel(), [], np.zeros(9), p, 640, 480)
    np.testing.assert_array_equal(unset.R, np.eye(3))
