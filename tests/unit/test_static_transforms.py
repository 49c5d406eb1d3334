"""Static transform buffer and quaternion maths (ROS-free)."""
from __future__ import annotations

import math
from types import SimpleNamespace as NS

import numpy as np
import pytest

from aiat_perception.static_transforms import (StaticTransformBuffer, TransformError, apply, make_transform,
                                               matrix_to_quaternion, quaternion_to_matrix)


def stamped(parent, child, xyz, quat):
    return NS(header=NS(frame_id=parent), child_frame_id=child,
              transform=NS(translation=NS(x=xyz[0], y=xyz[1], z=xyz[2]),
                           rotation=NS(x=quat[0], y=quat[1], z=quat[2], w=quat[3])))


def yaw_quat(yaw):
    return (0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2))


def test_quaternion_round_trip_on_random_rotations():
    rng = np.random.default_rng(0)
    for q in rng.normal(size=(50, 4)):
        q /= np.linalg.norm(q)
        R = quaternion_to_matrix(*q)
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
        back = np.array(matrix_to_quaternion(R))
        np.testing.assert_allclose(abs(np.dot(back, q)), 1.0, atol=1e-9)
    np.testing.assert_allclose(quaternion_to_matrix(*yaw_quat(math.pi / 2)) @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    for bad in [(0, 0, 0, 0), (math.nan, 0, 0, 1)]:
        with pytest.raises(TransformError):
            quaternion_to_matrix(*bad)


def test_chains_and_branches_compose():
    buf = StaticTransformBuffer()
    buf.add(stamped('base_link', 'velodyne', (1.0, 0.0, 1.8), yaw_quat(0.0)))
    buf.add(stamped('base_link', 'laser', (0.5, 0.0, 0.3), yaw_quat(math.pi)))
    buf.add(stamped('/velodyne', 'velodyne_tilted', (0.0, 0.0, 0.1), yaw_quat(math.pi / 2)))
    # a point 2 m ahead of the laser is 1.5 m behind base_link
    np.testing.assert_allclose(apply(buf.lookup('base_link', 'laser'), [2.0, 0.0, 0.0]), [[-1.5, 0.0, 0.3]], atol=1e-12)
    # laser -> velodyne_tilted goes up through base_link and down the other branch
    T = buf.lookup('velodyne_tilted', 'laser')
    p_base = apply(buf.lookup('base_link', 'laser'), [[1.0, 2.0, 0.0]])
    expected = apply(np.linalg.inv(buf.lookup('base_link', 'velodyne_tilted')), p_base)
    np.testing.assert_allclose(apply(T, [[1.0, 2.0, 0.0]]), expected, atol=1e-12)
    np.testing.assert_allclose(buf.lookup('laser', 'laser'), np.eye(4))
    assert buf.frames() == ['base_link', 'laser', 'velodyne', 'velodyne_tilted']
    assert not buf.can_transform('map', 'laser')
    with pytest.raises(TransformError, match='no transform'):
        buf.lookup('map', 'laser')


def test_bad_transforms_are_refused_and_good_ones_kept():
    buf = StaticTransformBuffer()
    msg = NS(transforms=[stamped('a', 'b', (0, 0, 0), (0, 0, 0, 1)), stamped('b', 'c', (math.inf, 0, 0), (0, 0, 0, 1)),
                         stamped('b', 'a', (0, 0, 0), (0, 0, 0, 1)), NS(nothing=1), stamped('x', 'x', (0, 0, 0), (0, 0, 0, 1))])
    with pytest.raises(TransformError) as err:
        buf.add_message(msg)
    assert 'loop' in str(err.value) and 'non-finite' in str(err.value)
    assert buf.can_transform('a', 'b') and not buf.can_transform('a', 'c')
    np.testing.assert_allclose(make_transform((1, 2, 3))[:3, 3], [1, 2, 3])
