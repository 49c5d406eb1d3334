"""Stamp pairing and the player's loading (rosbags only; publishing is tested in tests/integration)."""
from __future__ import annotations

import numpy as np
import pytest

from aiat_perception.replay import messages as m
from aiat_perception.replay.bag_writer import BagWriter
from aiat_perception.replay.pairing import nearest_within
from aiat_perception.replay.player import load


def test_nearest_within_tolerance():
    frames = [100, 200, 300, 400]
    truth = [310, 90, 205]                      # any order
    assert nearest_within(frames, truth, 15) == [1, 2, 0, None]
    assert nearest_within(frames, truth, 0) == [None, None, None, None]
    assert nearest_within(frames, [], 10) == [None] * 4
    assert nearest_within([250], [200, 300], 50) == [0]          # a tie takes the earlier stamp
    with pytest.raises(ValueError):
        nearest_within(frames, truth, -1)


def test_player_loads_raw_messages_with_their_header_stamps(tmp_path):
    path = tmp_path / 'bag'
    with BagWriter(path) as bag:
        for i in range(3):
            ns = 1_700_000_000_123_456_789 + i * 50_000_000
            bag.write('/camera/image_raw', m.IMAGE, m.image(np.full((4, 6, 3), i, np.uint8), 'bgr8', ns, 'cam'),
                      ns + 7)      # recorded (log) time differs from the stamp
            bag.write('/tf_static', m.TF_MESSAGE, m.tf_message([('a', 'b', np.eye(4))], ns), ns + 8)
    msgs = load(path, ['/camera/image_raw', '/tf_static'])
    images = [x for x in msgs if x.topic == '/camera/image_raw']
    assert [x.stamp_ns for x in images] == [1_700_000_000_123_456_789 + i * 50_000_000 for i in range(3)]
    assert [x.log_ns - x.stamp_ns for x in images] == [7, 7, 7]
    assert all(x.stamp_ns == 0 for x in msgs if x.topic == '/tf_static')     # no header
    from aiat_perception.replay.typestore import typestore
    back = typestore().deserialize_cdr(images[2].raw, m.IMAGE)
    assert back.width == 6 and int(np.asarray(back.data)[0]) == 2
