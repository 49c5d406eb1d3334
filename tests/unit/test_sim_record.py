"""aiat-sim record: the simulator core writes a bag of its sensors and ground truth."""
from __future__ import annotations

import json

import numpy as np

from aiat_perception.bag_reading import bag_topics, iterate_messages
from aiat_perception.cli import sim_record
from aiat_perception.replay import messages as m
from aiat_perception.replay import topics


def test_record_photo_actors_bag(tmp_path, capsys):
    out = tmp_path / 'sim'
    assert sim_record.main(['record', 'photo_actors', '--frames', '4', '--out', str(out), '--sensors', 'camera,scan']) == 0
    assert json.loads(capsys.readouterr().out)['messages'][topics.IMAGE] == 4
    found = bag_topics(out)
    assert found[topics.IMAGE] == (m.IMAGE, 4) and found[topics.GT_2D] == (m.DETECTION_2D_ARRAY, 4)
    assert found[topics.SCAN] == (m.LASER_SCAN, 4) and topics.POINTS not in found
    stamps, classes = [], set()
    for topic, _, msg in iterate_messages(out, [topics.IMAGE, topics.GT_2D]):
        if topic == topics.GT_2D:
            _, names, _ = m.boxes_2d(msg)
            classes.update(names)
        else:
            stamps.append(m.stamp_ns(msg.header))
    assert np.allclose(np.diff(stamps), 100_000_000)          # photo_actors camera: 10 Hz
    assert 'person' in classes


def test_record_rejects_bad_options(tmp_path, capsys):
    assert sim_record.main(['record', 'no_such_scenario', '--out', str(tmp_path / 'b')]) == 2
    assert 'no_such_scenario' in capsys.readouterr().err
    assert sim_record.main(['record', 'photo_actors', '--sensors', 'radar', '--out', str(tmp_path / 'b')]) == 2
    assert 'radar' in capsys.readouterr().err
