"""A camera's projection (ROS-free): CameraInfo's K, D, R, P, or a KITTI calib's P2 and R0_rect.

Frames: points come in the *camera frame* (the frame ``cam_from_lidar`` maps into: the camera's
optical frame, x right, y down, z forward). A rectified image (``rectified=True``) is projected as
CameraInfo says: ``P @ [R @ x; 1]``, so P's fourth column (a stereo camera's baseline, KITTI's
P2 offset) and the rectification R both count. An unrectified (raw) image is projected with K and
the distortion D through OpenCV (``cv2.projectPoints``; ``cv2.fisheye.projectPoints`` for the
equidistant model).

Pixels of points behind the camera (depth <= ``min_depth``) or outside the image are NaN.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple, Optional, Sequence

import numpy as np

DISTORTION_MODELS = ('', 'plumb_bob', 'rational_polynomial', 'equidistant')
MAX_IMAGE_SIDE = 100_000


class CameraModelError(ValueError):
    pass


class Projection(NamedTuple):
    """Per point: pixel (u, v) (NaN where masked) and depth along the optical axis (metres)."""
    uv: np.ndarray          # N x 2 float64
    depth: np.ndarray       # N float64

    @property
    def valid(self) -> np.ndarray:
        """Points in front of the camera that land inside the image."""
        return np.isfinite(self.uv[:, 0])


def _matrix(name: str, values, shape) -> np.ndarray:
    try:
        m = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise CameraModelError(f'{name}: not a list of numbers ({exc})') from exc
    if m.size != shape[0] * shape[1]:
        raise CameraModelError(f'{name}: needs {shape[0] * shape[1]} numbers ({shape[0]}x{shape[1]}), '
                               f'got {m.size}')
    m = m.reshape(shape)
    if not np.all(np.isfinite(m)):
        raise CameraModelError(f'{name}: contains NaN or infinite values')
    return m


@dataclass
class CameraModel:
    P: np.ndarray                               # 3x4 projection of the rectified image
    K: np.ndarray                               # 3x3 intrinsics of the raw image
    width: int
    height: int
    R: np.ndarray = field(default_factory=lambda: np.eye(3))   # 3x3 rectification
    D: np.ndarray = field(default_factory=lambda: np.zeros(0))  # distortion coefficients
    distortion_model: str = ''
    rectified: bool = True                      # True: the image is rectified, P applies
    min_depth: float = 0.1                      # points nearer along the optical axis are masked

    def __post_init__(self):
        self.P = _matrix('P', self.P, (3, 4))
        self.K = _matrix('K', self.K, (3, 3))
        self.R = _matrix('R', self.R, (3, 3))
        self.D = _matrix('D', self.D, (1, np.asarray(self.D).size)).reshape(-1)
        for name, value in (('width', self.width), ('height', self.height)):
            if isinstance(value, bool) or not float(value).is_integer() or not 0 < value <= MAX_IMAGE_SIDE:
                raise CameraModelError(f'{name}: must be a whole number of pixels in 1..{MAX_IMAGE_SIDE}, got {value!r}')
        self.width, self.height = int(self.width), int(self.height)
        if self.distortion_model not in DISTORTION_MODELS:
            raise CameraModelError(f'distortion_model: {self.distortion_model!r} is not one of '
                                   f'{[m for m in DISTORTION_MODELS if m]} (or empty)')
        if not (math.isfinite(self.min_depth) and self.min_depth > 0):
            raise CameraModelError(f'min_depth: must be a positive number of metres, got {self.min_depth!r}')
        if self.rectified:
            if not (self.P[0, 0] > 0 and self.P[1, 1] > 0):
                raise CameraModelError(f'P: focal lengths must be positive, got fx={self.P[0, 0]}, fy={self.P[1, 1]}')
        else:
            if not (self.K[0, 0] > 0 and self.K[1, 1] > 0):
                raise CameraModelError(f'K: focal lengths must be positive, got fx={self.K[0, 0]}, fy={self.K[1, 1]}')
            needed = {'plumb_bob': (4, 5, 8, 12, 14), 'rational_polynomial': (4, 5, 8, 12, 14),
                      'equidistant': (4,), '': (0,)}[self.distortion_model]
            if self.D.size and self.D.size not in needed:
                raise CameraModelError(f'D: {self.distortion_model or "no"} distortion model takes '
                                       f'{" / ".join(map(str, needed))} coefficients, got {self.D.size}')
            if self.D.size and not self.distortion_model:
                raise CameraModelError('distortion_model: empty, but D has coefficients')
        self._bounds: Optional[np.ndarray] = None
        self._identity_r = bool(np.array_equal(self.R, np.eye(3)))

    @classmethod
    def from_kitti(cls, calib, width: int, height: int, camera: int = 2) -> 'CameraModel':
        """Camera ``camera`` of a :class:`aiat_perception.kitti.KittiCalibration`: P<camera> and
        R0_rect. Its camera frame is KITTI's reference camera (``Tr_velo_to_cam`` maps velodyne into
        it), so ``cam_from_lidar`` is Tr_velo_to_cam as 4x4."""
        if camera not in calib.P:
            raise CameraModelError(f'{calib.source}: no P{camera}')
        P = calib.P[camera]
        return cls(P=P, K=P[:, :3], width=width, height=height, R=calib.R0_rect, rectified=True)

    @classmethod
    def from_camera_info_fields(cls, k: Sequence[float], d: Sequence[float], r: Sequence[float],
                                p: Sequence[float], width: int, height: int, distortion_model: str = '',
                                rectified: bool = True) -> 'CameraModel':
        """From the fields of a sensor_msgs/CameraInfo (plain sequences, row-major). A CameraInfo
        with an all-zero R (unset) counts as identity; an all-zero P on a rectified image is an error."""
        R = _matrix('r', r, (3, 3))
        if not np.any(R):
            R = np.eye(3)
        try:
            return cls(P=_matrix('p', p, (3, 4)), K=_matrix('k', k, (3, 3)), width=width, height=height,
                       R=R, D=_matrix('d', d, (1, np.asarray(d).size)).reshape(-1) if len(d) else np.zeros(0),
                       distortion_model=distortion_model, rectified=bool(rectified))
        except CameraModelError as exc:
            raise CameraModelError(f'CameraInfo {exc}') from exc

    def project(self, points_cam, within_image: bool = True) -> Projection:
        """Pixels and depths of camera-frame points (N x 3); ``within_image=False`` keeps the pixels
        of points in front of the camera that fall outside the image (e.g. box corners)."""
        pts = np.asarray(points_cam, dtype=np.float64).reshape(-1, 3)
        return self.project_columns(pts[:, 0], pts[:, 1], pts[:, 2], within_image)

    def project_columns(self, x: np.ndarray, y: np.ndarray, z: np.ndarray, within_image: bool = True) -> Projection:
        """:meth:`project` of points given as three coordinate arrays (the fast path of fusion)."""
        n = len(x)
        uv = np.full((n, 2), np.nan)
        if self.rectified:
            rx, ry, rz = (x, y, z) if self._identity_r else affine_columns(self.R, None, x, y, z)
            depth = rz
            with np.errstate(invalid='ignore'):
                front = np.flatnonzero(depth >= self.min_depth)
            h = affine_columns(self.P[:, :3], self.P[:, 3], rx[front], ry[front], rz[front])
            # P's third row may carry a (zero for a proper CameraInfo) offset: divide by its w.
            with np.errstate(invalid='ignore', divide='ignore'):
                uv[front, 0] = h[0] / h[2]
                uv[front, 1] = h[1] / h[2]
        else:
            depth = np.asarray(z, dtype=np.float64)
            pts = np.stack([x, y, z], axis=1)
            with np.errstate(invalid='ignore'):
                front = depth >= self.min_depth
            front &= self._within_field_of_view(pts)
            uv[front] = self._distort_project(pts[front])
        if not within_image:
            return Projection(uv, depth)
        with np.errstate(invalid='ignore'):
            outside = ~((uv[:, 0] >= 0) & (uv[:, 0] < self.width) & (uv[:, 1] >= 0) & (uv[:, 1] < self.height))
        uv[outside] = np.nan
        return Projection(uv, depth)

    def project_lidar(self, points_lidar, cam_from_lidar, within_image: bool = True) -> Projection:
        """:meth:`project` of lidar-frame points (N x 3+) moved by the 4x4 ``cam_from_lidar``."""
        x, y, z = point_columns(points_lidar)
        if not self.rectified:
            return self.project_columns(*transform_columns(x, y, z, cam_from_lidar), within_image)
        uv = np.full((len(x), 2), np.nan)
        depth, front, h = self._composite(x, y, z, cam_from_lidar)
        with np.errstate(invalid='ignore', divide='ignore'):
            u, v = h[0] / h[2], h[1] / h[2]
            if within_image:
                keep = (u >= 0) & (u < self.width) & (v >= 0) & (v < self.height)
                front, u, v = front[keep], u[keep], v[keep]
        uv[front, 0] = u
        uv[front, 1] = v
        return Projection(uv, depth)

    def visible(self, x: np.ndarray, y: np.ndarray, z: np.ndarray, cam_from_lidar):
        """(indices, pixels K x 2, non-finite count) of the lidar points (coordinate arrays) that land
        in the image: the fast path of fusion, which needs nothing of the others."""
        if not self.rectified:
            cols = transform_columns(x, y, z, cam_from_lidar)
            proj = self.project_columns(cols[0], cols[1], cols[2])
            idx = np.flatnonzero(proj.valid)
            return idx, proj.uv[idx], int(np.count_nonzero(~np.isfinite(cols[2])))
        depth, front, h = self._composite(x, y, z, cam_from_lidar)
        with np.errstate(invalid='ignore', divide='ignore'):
            u, v = h[0] / h[2], h[1] / h[2]
            keep = np.flatnonzero((u >= 0) & (u < self.width) & (v >= 0) & (v < self.height))
        return front[keep], np.stack([u[keep], v[keep]], axis=1), int(np.count_nonzero(~np.isfinite(depth)))

    def _composite(self, x, y, z, cam_from_lidar):
        """Depth of every point and the homogeneous pixels of those in front, through the single
        3x4 matrix P [R 0; 0 1] cam_from_lidar (a third of the work of transforming, rotating and
        projecting every point in turn). A non-finite coordinate makes the depth non-finite."""
        T = np.asarray(cam_from_lidar, dtype=np.float64)
        if T.shape != (4, 4):
            raise ValueError(f'a transform is 4x4, got shape {T.shape}')
        if not np.all(np.isfinite(T)):
            raise ValueError('the transform contains NaN or infinite values')
        A = homogeneous(self.R) @ T
        M = self.P @ A
        depth = affine_columns(A[2:3, :3], A[2:3, 3], x, y, z)[0]
        with np.errstate(invalid='ignore'):
            front = np.flatnonzero(depth >= self.min_depth)
        return depth, front, affine_columns(M[:, :3], M[:, 3], x[front], y[front], z[front])

    def _distort_project(self, pts: np.ndarray) -> np.ndarray:
        import cv2
        if not len(pts):
            return np.zeros((0, 2))
        zero = np.zeros(3)
        if self.distortion_model == 'equidistant':
            uv, _ = cv2.fisheye.projectPoints(pts.reshape(-1, 1, 3), zero, zero, self.K, self.D.reshape(4, 1))
        else:
            uv, _ = cv2.projectPoints(pts.reshape(-1, 1, 3), zero, zero, self.K, self.D if self.D.size else None)
        return uv.reshape(-1, 2)

    def _within_field_of_view(self, pts: np.ndarray) -> np.ndarray:
        """Points whose undistorted direction lies inside what the image can see (with a margin).

        Distortion polynomials turn back beyond the lens's field of view, so a point far outside it
        can land inside the image; the image border, undistorted once, bounds the directions
        that can really appear."""
        if not self.D.size or not np.any(self.D):
            return np.ones(len(pts), bool)
        if self._bounds is None:
            import cv2
            n = 64
            xs, ys = np.linspace(0, self.width - 1, n), np.linspace(0, self.height - 1, n)
            border = np.concatenate([np.stack([xs, np.zeros(n)], 1), np.stack([xs, np.full(n, self.height - 1.0)], 1),
                                     np.stack([np.zeros(n), ys], 1), np.stack([np.full(n, self.width - 1.0), ys], 1)])
            border = border.reshape(-1, 1, 2)
            if self.distortion_model == 'equidistant':
                norm = cv2.fisheye.undistortPoints(border, self.K, self.D.reshape(4, 1))
            else:
                norm = cv2.undistortPoints(border, self.K, self.D)
            norm = norm.reshape(-1, 2)
            lo, hi = norm.min(axis=0), norm.max(axis=0)
            margin = 0.1 * (hi - lo)
            self._bounds = np.concatenate([lo - margin, hi + margin])
        with np.errstate(invalid='ignore', divide='ignore'):
            x, y = pts[:, 0] / pts[:, 2], pts[:, 1] / pts[:, 2]
            b = self._bounds
            return (x >= b[0]) & (x <= b[2]) & (y >= b[1]) & (y <= b[3])


def transform_points(points, T) -> np.ndarray:
    """N x 3 points (the first three columns of ``points``) moved by the 4x4 transform ``T``."""
    x, y, z = point_columns(points)
    return transform_columns(x, y, z, T).T


def point_columns(points):
    """x, y, z of N x 3+ points as three float64 1-D arrays: views into the array, or into one
    float64 copy of it (one block copy costs less than casting strided float32 in every operation)."""
    pts = np.asarray(points)
    if pts.ndim != 2 or pts.shape[1] < 3:
        raise ValueError(f'points are N x 3 or more, got shape {pts.shape}')
    if pts.dtype != np.float64:
        pts = pts.astype(np.float64)
    return pts[:, 0], pts[:, 1], pts[:, 2]


def transform_columns(x, y, z, T) -> np.ndarray:
    """3 x N: points given as coordinate arrays moved by the 4x4 transform ``T``."""
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4):
        raise ValueError(f'a transform is 4x4, got shape {T.shape}')
    if not np.all(np.isfinite(T)):
        raise ValueError('the transform contains NaN or infinite values')
    return affine_columns(T[:3, :3], T[:3, 3], x, y, z)


def affine_columns(M, t, x, y, z) -> np.ndarray:
    """R x N (float64): ``M @ [x; y; z] + t`` (M: R x 3) computed row by row, in float64, without
    copying the coordinates (views with a stride are fine).

    Written out rather than ``points @ M.T``: numpy hands an N x 3 by 3 x 3 product to a threaded
    BLAS, which on a loaded machine (every core busy, as on a vehicle) waits for its threads and
    took 40-100 ms for 120k points here; these vector operations take about 1 ms."""
    n = len(x)
    out = np.empty((len(M), n))
    tmp = np.empty(n)
    with np.errstate(invalid='ignore', over='ignore'):      # non-finite points stay non-finite
        for i in range(len(M)):
            row = out[i]
            np.multiply(x, M[i, 0], out=row, dtype=np.float64)
            np.multiply(y, M[i, 1], out=tmp, dtype=np.float64)
            row += tmp
            np.multiply(z, M[i, 2], out=tmp, dtype=np.float64)
            row += tmp
            if t is not None:
                row += t[i]
    return out


def homogeneous(m) -> np.ndarray:
    """A 3x4 (or 3x3) matrix completed to 4x4."""
    m = np.asarray(m, dtype=np.float64)
    out = np.eye(4)
    out[:m.shape[0], :m.shape[1]] = m
    return out
