"""What the fusion node publishes, without ROS: fused boxes in the output frame (lidar geometry when
associated, covariance rotated), Detection2DArray reading (bad entries skipped and counted, ids kept
or the index), lidar boxes moved between frames, and the node's parameter table rules."""
from __future__ import annotations

import math
from types import SimpleNamespace as NS

import numpy as np
import pytest

from aiat_perception.fusion import FusionConfig
from aiat_perception.fusion.agreement import AgreementThresholds
from aiat_perception.fusion.fuse import FusedObject
from aiat_perception.fusion_messages import (UNKNOWN_VARIANCE, camera_detections_from_msg, fused_boxes,
                                             objects_moved)
from aiat_perception.metrics.matching_3d import Object3D
from aiat_perception.node_params.fusion import (TABLE, agreement_thresholds, extrinsic_problem, fusion_settings,
                                                parse_class_depth)
from aiat_perception.static_transforms import make_transform, quaternion_to_matrix

# the camera optical frame (x right, y down, z forward) from a z-up lidar frame (x forward, y left)
OPTICAL_FROM_LIDAR = np.array([[0.0, -1.0, 0.0, 0.0], [0.0, 0.0, -1.0, -0.5], [1.0, 0.0, 0.0, 0.2],
                               [0.0, 0.0, 0.0, 1.0]])


def fused_object(index, position, lidar_index=None, extent=(0.6, 1.7, 0.4), covariance=None):
    position = np.asarray(position, dtype=np.float64)
    cov = np.diag([0.01, 0.04, 0.09]) if covariance is None else covariance
    return FusedObject(index, 'person', 0.9, position, float(np.linalg.norm(position)), np.asarray(extent), cov, 12,
                       lidar_index, np.array([10.0, 20.0, 30.0, 60.0]))


def test_fused_box_in_the_camera_frame_keeps_the_extent_along_the_camera_axes():
    (box,) = fused_boxes([fused_object(1, (1.0, 0.5, 12.0))], ['a', 'b'])
    assert box.detection_id == 'b' and box.class_name == 'person' and box.score == pytest.approx(0.9)
    assert box.center == pytest.approx((1.0, 0.5, 12.0)) and box.quaternion == pytest.approx((0, 0, 0, 1))
    assert box.size == pytest.approx((0.6, 1.7, 0.4)) and box.lidar_index is None
    cov = np.array(box.pose_covariance()).reshape(6, 6)
    assert np.allclose(cov[:3, :3], np.diag([0.01, 0.04, 0.09])) and np.allclose(cov[3:, 3:], np.eye(3) * UNKNOWN_VARIANCE)
    assert not cov[:3, 3:].any()


def test_fused_box_takes_the_associated_lidar_box_and_moves_into_the_target_frame():
    lidar = [Object3D('car', (12.0, -1.0, -0.9), (4.2, 1.8, 1.5), math.radians(30))]
    position = OPTICAL_FROM_LIDAR[:3, :3] @ np.array(lidar[0].center) + OPTICAL_FROM_LIDAR[:3, 3]
    base_from_optical = np.linalg.inv(OPTICAL_FROM_LIDAR)          # base_link = the lidar frame here
    (box,) = fused_boxes([fused_object(0, position, lidar_index=0)], ['car0'], base_from_optical, lidar,
                         OPTICAL_FROM_LIDAR)
    assert box.center == pytest.approx(lidar[0].center)
    assert box.size == pytest.approx((4.2, 1.8, 1.5))
    R = quaternion_to_matrix(*box.quaternion)                       # the lidar box's heading, back in base
    assert math.degrees(math.atan2(R[1, 0], R[0, 0])) == pytest.approx(30.0) and R[2, 2] == pytest.approx(1.0)
    # covariance rotated: camera z (forward, 0.09) is base x
    assert box.covariance[0, 0] == pytest.approx(0.09) and box.covariance[1, 1] == pytest.approx(0.01)
    assert box.covariance[2, 2] == pytest.approx(0.04)


def msg_2d(entries):
    dets = []
    for det_id, box, results in entries:
        cx, cy, w, h = box
        dets.append(NS(id=det_id, bbox=NS(center=NS(position=NS(x=cx, y=cy)), size_x=w, size_y=h),
                       results=[NS(hypothesis=NS(class_id=c, score=s)) for c, s in results]))
    return NS(detections=dets)


def test_camera_detections_keep_ids_or_the_index_and_skip_bad_entries():
    msg = msg_2d([('p1', (50, 40, 20, 40), [('person', 0.4), ('bicycle', 0.7)]),
                  ('', (100, 100, 10, 10), [('car', 0.5)]),
                  ('nan', (float('nan'), 1, 1, 1), [('car', 0.5)]),
                  ('neg', (1, 1, -1, 1), [('car', 0.5)]),
                  ('none', (1, 1, 1, 1), []),
                  ('huge', (1, 1, 1e9, 1), [('car', 0.5)]),
                  ('inf score', (1, 1, 1, 1), [('car', float('inf'))])])
    boxes, names, scores, ids, skipped = camera_detections_from_msg(msg)
    assert boxes.tolist() == [[40, 20, 60, 60], [95, 95, 105, 105]]
    assert names == ['bicycle', 'car'] and scores.tolist() == [0.7, 0.5] and ids == ['p1', '1'] and skipped == 5
    boxes, names, scores, ids, skipped = camera_detections_from_msg(msg_2d([]))
    assert boxes.shape == (0, 4) and names == [] and scores.shape == (0,) and ids == [] and skipped == 0
    with pytest.raises(ValueError, match='detections > 2'):
        camera_detections_from_msg(msg, max_detections=2)


def test_lidar_boxes_move_between_z_up_frames():
    T = make_transform((1.0, 2.0, 0.5), (0.0, 0.0, math.sin(math.pi / 8), math.cos(math.pi / 8)))   # 45 deg
    (moved,) = objects_moved([Object3D('car', (10.0, 0.0, 0.0), (4.0, 2.0, 1.5), 0.1, 0.8)], T)
    assert moved.center == pytest.approx((1.0 + 10 / math.sqrt(2), 2.0 + 10 / math.sqrt(2), 0.5))
    assert moved.yaw == pytest.approx(0.1 + math.pi / 4) and moved.size == (4.0, 2.0, 1.5) and moved.score == 0.8


def test_fusion_table_builds_the_core_config_and_thresholds():
    values = TABLE.defaults
    assert FusionConfig(**fusion_settings(values)) == FusionConfig()
    assert agreement_thresholds(values) == AgreementThresholds()
    changed = dict(values, class_depth=['car=3.5', '', 'person:0.4'], miss_classes=[''], confirm_classes=[''])
    config = FusionConfig(**fusion_settings(changed))
    assert config.class_depth == {'car': 3.5, 'person': 0.4} and config.miss_classes == () == config.confirm_classes


@pytest.mark.parametrize('changes, problem', [
    ({'class_depth': ['car']}, "class_depth: expected 'class:metres'"),
    ({'class_depth': ['car:-1']}, "class_depth: expected 'class:metres'"),
    ({'class_depth': ['car:nan']}, "class_depth: expected 'class:metres'"),
    ({'min_range': 200.0}, 'min_range: must be < max_range'),
    ({'camera_from_lidar': [0.0, 0.0, 0.0]}, 'camera_from_lidar: needs 7 numbers'),
    ({'camera_from_lidar': [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]}, 'camera_from_lidar: the quaternion is zero'),
    ({'camera_from_lidar': [float('nan'), 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]}, 'camera_from_lidar: contains NaN'),
    ({'camera_from_lidar': [1e9, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]}, 'camera_from_lidar: translation over 1000 m'),
    ({'error_confirm_rate': 0.9}, 'error_confirm_rate: must be <= warn_confirm_rate'),
    ({'error_miss_rate': 0.1}, 'error_miss_rate: must be >= warn_miss_rate'),
    ({'pair_tolerance_s': -0.1}, 'pair_tolerance_s: must be in [0, 10]'),
    ({'extrinsic_source': 'urdf'}, 'extrinsic_source: must be one of tf_static, parameters'),
])
def test_fusion_table_refuses_bad_values_naming_the_parameter(changes, problem):
    problems = TABLE.problems(changes)
    assert any(p.startswith(problem) or problem in p for p in problems), problems


def test_extrinsic_problem_accepts_a_unit_quaternion():
    assert extrinsic_problem([0.1, -0.2, 0.3, 0.0, 0.0, 0.0, 1.0]) == ''
    assert parse_class_depth(['a:0', 'b=100']) == {'a': 0.0, 'b': 100.0}
