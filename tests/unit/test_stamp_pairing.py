"""Stamp pairing and the simulator's scheduler and lockstep handshake, without ROS."""
from __future__ import annotations

import threading
import time

import pytest

from aiat_perception.sim.scheduler import LockstepHandshake, SensorScheduler
from aiat_perception.stamp_pairing import StampPairer

S = 1_000_000_000


def test_pairs_by_stamp_in_any_order():
    pairer = StampPairer(('det', 'gt'), timeout_ns=5 * S)
    assert pairer.add('gt', 1 * S, 'g1') is None
    assert pairer.add('det', 2 * S, 'd2') is None
    assert pairer.add('det', 1 * S, 'd1') == {'det': 'd1', 'gt': 'g1'}
    assert pairer.add('gt', 2 * S, 'g2') == {'det': 'd2', 'gt': 'g2'}
    assert pairer.paired == 2 and pairer.waiting() == {'det': 0, 'gt': 0}
    assert pairer.unpaired == {'det': 0, 'gt': 0}


def test_three_streams_pair_only_when_all_arrived():
    pairer = StampPairer(('camera', 'lidar', 'radar'), timeout_ns=S)
    assert pairer.add('camera', 7, 'c') is None and pairer.add('lidar', 7, 'l') is None
    assert pairer.add('radar', 7, 'r') == {'camera': 'c', 'lidar': 'l', 'radar': 'r'}


def test_old_unpaired_items_expire_and_are_counted():
    pairer = StampPairer(('det', 'gt'), timeout_ns=5 * S)
    pairer.add('det', 1 * S, 'lost detection')
    pairer.add('gt', 2 * S, 'lost truth')
    pairer.add('gt', 6 * S, 'recent')
    assert pairer.unpaired == {'det': 0, 'gt': 0}  # 1 s is exactly 5 s older than 6 s: kept
    pairer.add('gt', 7 * S + 1, 'newer')
    assert pairer.unpaired == {'det': 1, 'gt': 1} and pairer.waiting() == {'det': 0, 'gt': 2}
    assert pairer.add('det', 1 * S, 'too late') is None  # its partner is gone; it expires at once
    assert pairer.unpaired['det'] == 2


def test_duplicate_stamp_replaces_and_counts():
    pairer = StampPairer(('det', 'gt'), timeout_ns=S)
    pairer.add('det', 5, 'first')
    pairer.add('det', 5, 'second')
    assert pairer.unpaired['det'] == 1 and pairer.add('gt', 5, 'g') == {'det': 'second', 'gt': 'g'}


def test_bad_setup_is_refused():
    for streams in (('a',), ('a', 'a')):
        with pytest.raises(ValueError):
            StampPairer(streams, 1)
    with pytest.raises(KeyError, match='unknown stream'):
        StampPairer(('a', 'b'), 1).add('c', 0, None)


def test_scheduler_interleaves_rates_camera_first():
    schedule = SensorScheduler({'lidar_2d': 20.0, 'camera': 10.0, 'lidar_3d': 5.0})
    served = []
    for _ in range(8):
        name, due = schedule.next()
        served.append((name, round(due, 3)))
        schedule.served(name)
    assert served == [('camera', 0.0), ('lidar_2d', 0.0), ('lidar_3d', 0.0), ('lidar_2d', 0.05),
                      ('camera', 0.1), ('lidar_2d', 0.1), ('lidar_2d', 0.15), ('camera', 0.2)]


def test_scheduler_skips_missed_ticks_in_real_time():
    schedule = SensorScheduler({'camera': 10.0})
    schedule.served('camera', now=0.35)  # the frame at 0 took 350 ms: frames 1 and 2 are skipped
    assert schedule.next() == ('camera', pytest.approx(0.3))
    schedule.served('camera', now=0.31)
    assert schedule.next() == ('camera', pytest.approx(0.4))
    with pytest.raises(ValueError, match='rates'):
        SensorScheduler({'camera': 0.0})


def test_handshake_waits_for_the_answer_from_another_thread():
    handshake = LockstepHandshake(timeout_s=5.0)
    threading.Timer(0.05, handshake.answer, args=(42,)).start()
    started = time.monotonic()
    assert handshake.wait(42) and time.monotonic() - started < 2.0


def test_handshake_times_out_forgets_old_answers_and_stops():
    handshake = LockstepHandshake(timeout_s=0.05)
    assert not handshake.wait(1)
    handshake.answer(1)
    handshake.answer(3)
    assert handshake.wait(2) is False  # an answer to frame 1 does not release frame 2
    assert handshake.wait(3)
    handshake.answer(4)
    assert handshake.wait(4)
    slow = LockstepHandshake(timeout_s=30.0)
    threading.Timer(0.05, slow.stop).start()
    started = time.monotonic()
    assert not slow.wait(9) and slow.stopped and time.monotonic() - started < 5.0
    with pytest.raises(ValueError):
        LockstepHandshake(0.0)
