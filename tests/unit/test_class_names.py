"""The one class-alias mechanism (aiat_perception.class_names) and its users."""
from __future__ import annotations

import pytest

from aiat_perception.class_names import canonical, normalize, parse_aliases, rename
from aiat_perception.metrics.matching import LabeledBox, filter_classes
from aiat_perception.node_params.iou_monitor import TABLE


def test_normalize_and_common_aliases():
    assert normalize(' Traffic_Light ') == 'traffic light' and normalize('stop-sign') == 'stop sign'
    assert canonical('Pedestrian') == 'person' and canonical('TrafficLight') == 'traffic light'
    assert canonical('truck') == 'truck' and canonical('Person_sitting') == 'person'
    assert canonical('truck', {'truck': 'car'}) == 'car'


def test_parse_aliases_and_rename():
    aliases = parse_aliases(['truck:car', '', 'bus=car'])
    assert aliases == {'truck': 'car', 'bus': 'car'}
    assert rename('truck', aliases) == 'car' and rename('person', aliases) == 'person'
    assert rename('truck', None) == 'truck'
    with pytest.raises(ValueError, match="--alias: expected 'from:to'"):
        parse_aliases(['truck'], '--alias')


def test_users_share_it():
    boxes = [LabeledBox((0, 0, 1, 1), 'truck'), LabeledBox((0, 0, 1, 1), 'person')]
    assert [b.class_id for b in filter_classes(boxes, ['car'], {'truck': 'car'})] == ['car']
    assert TABLE.problems({'class_aliases': ['truck']}) == [
        "class_aliases: expected 'from:to' or 'from=to', got 'truck'"]
