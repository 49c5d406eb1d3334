"""Parameter tables of the nodes and the table mechanism, without ROS."""
from __future__ import annotations

import math

import pytest

from aiat_perception.node_params import MODULES, table_for
from aiat_perception.node_params.camera_detector import validate as camera_detector_problems
from aiat_perception.node_params.iou_monitor import level_for, parse_aliases
from aiat_perception.node_params.sim import parse_waits
from aiat_perception.parameters import INT64_MAX, Param, ParameterError, ParameterTable, parameter_type


def test_parameter_types():
    assert [parameter_type(v) for v in (True, 1, 1.0, 's', [''], [1, 2.0], [], [1, 'a'])] == [
        'bool', 'integer', 'double', 'string', 'string array', 'double array', None, None]


def test_param_checks_type_range_and_choices():
    rate = Param('rate_hz', 5.0, 'rate', range=(0.0, math.inf), open_low=True)
    assert rate.problem(2.5) is None and rate.problem(1e300) is None
    assert rate.problem(0.0) == 'must be > 0, got 0.0'
    assert rate.problem(float('nan')) == 'must be > 0, got nan'
    assert rate.problem(20) == 'is 20 (integer) but the node declares a double (default 5.0)'
    unit = Param('score', 0.5, 'score', range=(0.0, 1.0))
    assert unit.problem(1.0) is None and unit.problem(1.5) == 'must be in [0, 1], got 1.5'
    count = Param('count', 0, 'count', range=(0, INT64_MAX))
    assert count.problem(-1) == 'must be >= 0, got -1' and count.problem(True).startswith('is True (bool)')
    below = Param('dropout', -1.0, 'p', range=(-math.inf, 1.0))
    assert below.problem(-5.0) is None and below.problem(2.0) == 'must be <= 1, got 2.0'
    mode = Param('mode', 'a', 'mode', choices=('a', 'b'))
    assert mode.problem('c') == "must be one of a, b, not 'c'"
    names = Param('names', [''], 'names')
    assert names.problem([]) is None and names.problem(['x', 'y']) is None
    assert names.problem([1]).startswith('is [1] (integer array)')


def test_table_problems_defaults_coercion_and_cross_field_checks():
    table = ParameterTable('n', [Param('low', 0.2, 'low', range=(0.0, 1.0)),
                                 Param('high', 0.5, 'high', range=(0.0, 1.0), dynamic=True)],
                           check=lambda p: ['low: must be <= high'] if p['low'] > p['high'] else [])
    assert table.defaults == {'low': 0.2, 'high': 0.5} and table.dynamic == {'high'}
    assert table.problems({'low': 0.4}) == []
    assert table.problems({'low': 0.7}) == ['low: must be <= high']
    assert table.problems({'low': 2.0, 'nope': 1}) == ['nope: not a parameter of n',
                                                        'low: must be in [0, 1], got 2.0']
    assert table.validated({'high': 1}) == {'low': 0.2, 'high': 1.0}  # integer for a double: coerced
    with pytest.raises(ParameterError, match='low: must be <= high'):
        table.validated({'low': 0.9})
    with pytest.raises(ValueError, match='default of bad'):
        ParameterTable('n', [Param('bad', 5, 'b', range=(0, 1))])


@pytest.mark.parametrize('executable', sorted(MODULES))
def test_every_table_is_complete_and_its_defaults_valid(executable):
    table = table_for(executable)
    assert table.node == executable and table.problems({}) == []
    for param in table:
        assert param.description, f'{executable}.{param.name}: no description'
        assert param.type is not None
        if param.range is not None:
            assert param.type in ('integer', 'double'), f'{executable}.{param.name}: range on {param.type}'
        if param.choices:
            assert param.default in param.choices


def test_camera_detector_table_keeps_todays_validation():
    assert camera_detector_problems({'backend': 'tensorflow'}) == [
        "backend: must be one of onnxruntime, torch, not 'tensorflow'"]
    assert camera_detector_problems({'num_threads': -1}) == ['num_threads: must be >= 0, got -1']
    assert camera_detector_problems({'score_threshold': 1.5}) == ['score_threshold: must be <= 1, got 1.5']
    assert camera_detector_problems({'score_threshold': -3.0, 'nms_iou_threshold': 0.4}) == []
    assert camera_detector_problems({'stale_input_s': 0.0}) == ['stale_input_s: must be > 0, got 0.0']
    assert camera_detector_problems({'error_after_violations': 0}) == [
        'error_after_violations: must be >= 1, got 0']
    assert camera_detector_problems({'class_filter': ['person', 'unicorn']}, ['person', 'car']) == [
        "class_filter: unknown class(es) ['unicorn']; the bundle has 2 classes, e.g. ['person', 'car']"]
    assert camera_detector_problems({'class_filter': ['']}, ['person']) == []
    table = table_for('camera_detector')
    assert table.dynamic == {'score_threshold', 'nms_iou_threshold', 'max_detections', 'class_filter',
                             'debug_image', 'processing_budget_ms', 'pipeline_budget_ms',
                             'error_after_violations', 'stale_input_s', 'no_input_warn_s',
                             'lost_warn_fraction'}


def test_image_publisher_needs_width_and_height_together():
    table = table_for('image_publisher')
    assert table.problems({'width': 64, 'height': 48}) == []
    assert table.problems({'width': 64}) == ['width, height: give both or neither, got 64x0']
    assert table.problems({'rate_hz': 0.0}) == ['rate_hz: must be > 0, got 0.0']


def test_iou_monitor_cross_field_checks_and_levels():
    table = table_for('iou_monitor')
    assert table.problems({'error_recall': 0.6}) == ['error_recall: must be <= warn_recall (0.6 > 0.5)']
    assert table.problems({'class_aliases': ['truck']}) == [
        "class_aliases: expected 'from:to' or 'from=to', got 'truck'"]
    assert parse_aliases(['truck:car', '', 'bus=car']) == {'truck': 'car', 'bus': 'car'}
    th = {'warn_recall': 0.5, 'error_recall': 0.2, 'warn_mean_iou': 0.5, 'error_mean_iou': 0.3,
          'warn_precision': 0.5, 'error_precision': 0.2}
    ok = {'recall': 0.9, 'mean_iou': 0.8, 'precision': 0.9, 'tp': 5, 'fn': 0}
    assert level_for(ok, th) == 0
    assert level_for(dict(ok, recall=0.4), th) == 1
    assert level_for(dict(ok, mean_iou=0.1), th) == 2
    assert level_for(dict(ok, mean_iou=float('nan'), tp=0, fn=3), th) == 2


def test_sim_waits_and_ranges():
    table = table_for('sim')
    assert parse_waits(['', 'ground_truth/detections_2d:1', '/a:b:2']) == {
        'ground_truth/detections_2d': 1, '/a:b': 2}
    assert table.problems({'wait_for_subscribers': ['topic']}) == [
        "wait_for_subscribers: expected 'topic:count', got 'topic'"]
    assert table.problems({'lidar_2d_dropout': 1.5}) == ['lidar_2d_dropout: must be <= 1, got 1.5']
    assert table.problems({'mode': 'fast'}) == ["mode: must be one of realtime, lockstep, not 'fast'"]
    assert table.problems({'lockstep_timeout_s': 0.0}) == ['lockstep_timeout_s: must be > 0, got 0.0']
