"""What the lidar nodes publish, without ROS: boxes moved into the output frame, the node tables
built from the core tables (ranges, choices, cross-field checks), YAML shared with the offline tool."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from aiat_perception.lidar.detector import PARAMETERS
from aiat_perception.lidar.output import marker_scale, posed_boxes, yaw_of_quaternion
from aiat_perception.lidar.params import read_yaml
from aiat_perception.lidar.scan import SCAN_PARAMETERS
from aiat_perception.lidar.types import Detection3D
from aiat_perception.node_params import table_for
from aiat_perception.static_transforms import make_transform

ROOT = Path(__file__).resolve().parents[2]


def test_boxes_stay_in_the_sensor_frame_without_a_transform():
    det = Detection3D('car', 0.9, (10.0, -2.0, -1.0), (4.0, 1.7, 1.5), 0.4, 300)
    ((center, q),) = posed_boxes([det])
    assert center == (10.0, -2.0, -1.0)
    assert math.isclose(yaw_of_quaternion(*q), 0.4, abs_tol=1e-9)


def test_boxes_move_and_turn_with_the_static_transform():
    yaw = 0.5
    T = make_transform((1.0, 0.5, 1.73), (0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)))
    det = Detection3D('car', 0.9, (10.0, 0.0, -1.0), (4.0, 1.7, 1.5), 0.2, 300)
    ((center, q),) = posed_boxes([det], T)
    assert np.allclose(center, (1.0 + 10 * math.cos(yaw), 0.5 + 10 * math.sin(yaw), 0.73))
    assert math.isclose(yaw_of_quaternion(*q), 0.7, abs_tol=1e-9)


def test_markers_never_get_a_zero_scale():
    assert marker_scale((0.3, 0.3, 0.0)) == (0.3, 0.3, 0.05)
    assert marker_scale((float('nan'), 1.0, 2.0)) == (0.05, 1.0, 2.0)


@pytest.mark.parametrize('node, core', [('lidar_detector', PARAMETERS), ('scan_detector', SCAN_PARAMETERS)])
def test_node_table_holds_the_core_table_with_its_ranges(node, core):
    table = table_for(node)
    for name, (default, _, bounds) in core.items():
        param = table[name]
        assert param.default == default and param.dynamic
        if isinstance(default, str):
            assert param.choices == tuple(bounds)
        elif bounds is not None and not isinstance(default, bool):
            assert param.range == tuple(bounds)
    assert table.problems({'range_max': 1e9})[0].startswith('range_max: must be in [')
    assert table.problems({'reliability': 'sometimes'}) == [
        "reliability: must be one of best_effort, reliable, not 'sometimes'"]
    assert table.problems({'max_input_size': 0}) == ['max_input_size: must be >= 1, got 0']


def test_cross_field_checks():
    lidar, scan = table_for('lidar_detector'), table_for('scan_detector')
    assert lidar.problems({'z_min': 3.0}) == ['z_min: must be < z_max (3.0 vs 3.0)']
    assert lidar.problems({'cluster_min_points': 30000}) == [
        'cluster_min_points: must be <= cluster_max_points (30000 vs 20000)']
    assert scan.problems({'leg_min_width': 0.5}) == ['leg_min_width: must be <= leg_max_width (0.5 vs 0.35)']
    assert scan.problems({'range_min': 20.0}) == ['range_min: must be < range_max (20.0 vs 10.0)']


@pytest.mark.parametrize('node, core', [('lidar_detector', PARAMETERS), ('scan_detector', SCAN_PARAMETERS)])
def test_offline_tool_reads_the_node_file_and_ignores_node_only_entries(node, core, tmp_path):
    params = read_yaml(ROOT / 'config' / f'{node}.yaml', node, core)
    assert set(params) == set(core)
    typo = tmp_path / 'p.yaml'
    typo.write_text(f'{node}:\n  ros__parameters:\n    reliability: reliable\n    range_maxx: 3.0\n')
    with pytest.raises(ValueError, match="unknown parameter 'range_maxx'"):
        read_yaml(typo, node, core)


def test_bev_frame_matching_for_the_monitor():
    from aiat_perception.metrics.matching import RunningMetrics
    from aiat_perception.metrics.matching_3d import Object3D, match_frame_bev
    gt = [Object3D('car', (10.0, 0.0, 0.0), (4.0, 2.0, 1.5), 0.0),
          Object3D('pedestrian', (5.0, 3.0, 0.0), (0.6, 0.6, 1.7), 0.0)]
    car = Object3D('car', (10.5, 0.0, 0.0), (4.0, 2.0, 1.5), 0.0, 0.9)        # IoU 3.5 / 4.5 = 0.78
    ped = Object3D('pedestrian', (5.25, 3.0, 0.0), (0.6, 0.6, 1.7), 0.0, 0.8)  # IoU 0.35 / 0.85 = 0.41
    result = match_frame_bev([car, ped], gt, 0.5)
    assert [(d, g) for d, g, _ in result.matches] == [(0, 0)] and math.isclose(result.matches[0][2], 3.5 / 4.5)
    result = match_frame_bev([car, ped], gt, 0.5, class_thresholds={'pedestrian': 0.3})
    assert result.tp == 2 and result.fn == 0 and result.fp == 0
    wrong_class = Object3D('pedestrian', car.center, car.size, car.yaw, 0.9)
    assert match_frame_bev([wrong_class], gt, 0.5).tp == 0
    assert match_frame_bev([wrong_class], gt, 0.5, class_agnostic=True).tp == 1
    running = RunningMetrics(2)
    running.update(match_frame_bev([car, ped], gt, 0.5, class_thresholds={'pedestrian': 0.3}))
    running.update(match_frame_bev([], gt, 0.5))
    assert running.total()['recall'] == 0.5
    with pytest.raises(ValueError, match='IoU thresholds'):
        match_frame_bev([car], gt, 0.5, class_thresholds={'car': 1.5})


def test_monitor_class_thresholds_parameter():
    from aiat_perception.node_params.iou_monitor import parse_class_thresholds
    assert parse_class_thresholds(['', 'pedestrian:0.3', 'cyclist=0.4']) == {'pedestrian': 0.3, 'cyclist': 0.4}
    assert table_for('iou_monitor').problems({'class_iou_thresholds': ['pedestrian:1.3']}) == [
        "class_iou_thresholds: expected 'class:iou' with iou in (0, 1], got 'pedestrian:1.3'"]
    assert table_for('iou_monitor').problems({'detections_type': '3d', 'max_range_m': 30.0}) == []


def test_tilted_sensor_takes_the_general_path():
    pitch = 0.2   # sensor pitched down: orientation is no longer a turn about z alone
    T = make_transform((0.0, 0.0, 1.0), (0.0, math.sin(pitch / 2), 0.0, math.cos(pitch / 2)))
    det = Detection3D('car', 0.9, (10.0, 0.0, 0.0), (4.0, 1.7, 1.5), 0.3, 300)
    ((center, q),) = posed_boxes([det], T)
    assert np.allclose(center, (10 * math.cos(pitch), 0.0, 1.0 - 10 * math.sin(pitch)))
    R = np.array([[math.cos(pitch), 0, math.sin(pitch)], [0, 1, 0], [-math.sin(pitch), 0, math.cos(pitch)]])
    from aiat_perception.lidar.output import yaw_matrix
    from aiat_perception.static_transforms import quaternion_to_matrix
    assert np.allclose(quaternion_to_matrix(*q), R @ yaw_matrix(0.3))
    assert posed_boxes([]) == []
