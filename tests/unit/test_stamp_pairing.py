"""Stamp pairing and the simulator's scheduler and lockstep handshake, without ROS."""
from __future__ import annotations

import threading
import time

import pytest

from aiat_perception.sim.scheduler import LockstepHandshake, SensorScheduler
from aiat_perception.stamp_pairing import NearestStampPairer, StampPairer

S = 1_000_000_000
MS = 1_000_000


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
    pairer.add('gt', 9 * S, 'newer')
    assert pairer.unpaired == {'det': 0, 'gt': 0}  # the detections (newest 1 s) may still catch up
    assert pairer.add('det', 6 * S, 'd6') == {'det': 'd6', 'gt': 'recent'}
    assert pairer.unpaired == {'det': 0, 'gt': 0}  # 1 s is exactly 5 s older than 6 s: kept
    pairer.add('det', 7 * S + 1, 'newer detection')
    assert pairer.unpaired == {'det': 1, 'gt': 1} and pairer.waiting() == {'det': 1, 'gt': 1}
    assert pairer.add('det', 1 * S, 'too late') is None  # its partner is gone; it expires at once
    assert pairer.unpaired['det'] == 2


def test_a_future_stamp_does_not_expire_the_other_streams():
    pairer = StampPairer(('det', 'gt'), timeout_ns=5 * S)
    pairer.add('det', 10 * S, 'd10')
    pairer.add('gt', 10_000 * S, 'a truth stamped far in the future')
    assert pairer.waiting() == {'det': 1, 'gt': 1}             # the old rule dropped d10 here
    assert pairer.add('gt', 10 * S, 'g10') == {'det': 'd10', 'gt': 'g10'}
    pairer.add('det', 11 * S, 'd11')
    assert pairer.add('gt', 11 * S, 'g11') == {'det': 'd11', 'gt': 'g11'}


def test_a_silent_stream_leaves_at_most_max_pending_waiting():
    pairer = StampPairer(('det', 'gt'), timeout_ns=S, max_pending=10)
    for k in range(25):
        assert pairer.add('det', k * S, k) is None
    assert pairer.waiting() == {'det': 10, 'gt': 0} and pairer.unpaired['det'] == 15
    with pytest.raises(ValueError, match='max_pending'):
        StampPairer(('a', 'b'), 1, max_pending=0)


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


def test_nearest_pairs_camera_with_the_nearest_cloud_within_tolerance():
    pairer = NearestStampPairer('camera', ['cloud'], tolerance_ns=40 * MS, timeout_ns=S)
    assert pairer.add('cloud', 100 * MS, 'c100') == []
    assert pairer.add('cloud', 200 * MS, 'c200') == []
    (pair,) = pairer.add('camera', 180 * MS, 'd180')           # 20 ms from c200, 80 ms from c100
    assert pair.items == {'camera': 'd180', 'cloud': 'c200'} and pair.gaps_ns == {'cloud': 20 * MS}
    assert pair.stamp_ns == 180 * MS
    assert pairer.add('camera', 150 * MS, 'd150') == []        # 50 ms from both: outside 40 ms, waits
    assert pairer.waiting()['camera'] == 1 and pairer.paired == 1


def test_a_cloud_serves_several_camera_frames_and_late_clouds_complete_waiting_frames():
    pairer = NearestStampPairer('camera', ['cloud'], tolerance_ns=50 * MS, timeout_ns=S)
    assert pairer.add('camera', 0, 'd0') == [] and pairer.add('camera', 33 * MS, 'd33') == []
    pairs = pairer.add('cloud', 10 * MS, 'c10')                # arrives after both detections
    assert [p.items['camera'] for p in pairs] == ['d0', 'd33'] and {p.items['cloud'] for p in pairs} == {'c10'}
    (pair,) = pairer.add('camera', 40 * MS, 'd40')             # the same cloud again
    assert pair.items['cloud'] == 'c10' and pair.gaps_ns['cloud'] == -30 * MS
    assert pairer.unpaired == {'camera': 0, 'cloud': 0}


def test_offset_moves_partner_stamps_onto_the_anchor_clock():
    # the lidar stamps the same instant 70 ms later than the camera: offset -70 ms
    pairer = NearestStampPairer('camera', ['cloud'], tolerance_ns=10 * MS, timeout_ns=S,
                                offsets_ns={'cloud': -70 * MS})
    pairer.add('cloud', 1070 * MS, 'c')
    (pair,) = pairer.add('camera', 1000 * MS, 'd')
    assert pair.items['cloud'] == 'c' and pair.gaps_ns == {'cloud': 0}
    pairer.set_offset('cloud', 0)
    pairer.add('cloud', 2000 * MS, 'c2')
    assert pairer.add('camera', 2005 * MS, 'd2')[0].items['cloud'] == 'c2'
    with pytest.raises(KeyError, match='unknown partner'):
        pairer.set_offset('camera', 0)


def test_three_streams_need_every_partner_within_tolerance():
    pairer = NearestStampPairer('camera', ['cloud', 'lidar_detections'], tolerance_ns=20 * MS, timeout_ns=S)
    pairer.add('cloud', 100 * MS, 'c')
    assert pairer.add('camera', 110 * MS, 'd') == []           # lidar detections not there yet
    (pair,) = pairer.add('lidar_detections', 100 * MS, 'l')
    assert pair.items == {'camera': 'd', 'cloud': 'c', 'lidar_detections': 'l'}


def test_nearest_expiry_duplicates_and_the_pending_cap_are_counted():
    pairer = NearestStampPairer('camera', ['cloud'], tolerance_ns=10 * MS, timeout_ns=S, max_pending=3)
    pairer.add('camera', 0, 'never paired')
    pairer.add('cloud', 500 * MS, 'used')
    pairer.add('camera', 505 * MS, 'paired')
    pairer.add('cloud', 2 * S, 'new')
    assert pairer.unpaired == {'camera': 0, 'cloud': 0}       # the camera's newest is 505 ms: horizon -0.5 s
    pairer.add('camera', 2 * S + 500 * MS, 'waits')          # both streams past 2 s: horizon 1 s
    assert pairer.unpaired == {'camera': 1, 'cloud': 0}       # the used cloud is not counted
    pairer.add('cloud', 2 * S, 'replaces new')                 # same stamp, unused: counted
    assert pairer.unpaired['cloud'] == 1
    for k in range(4):                                         # five waiting frames, room for three
        pairer.add('camera', 2 * S + (100 + k) * MS, k)
    assert pairer.waiting()['camera'] == 3 and pairer.unpaired['camera'] == 3


def test_a_stamp_far_in_the_future_does_not_expire_what_follows():
    pairer = NearestStampPairer('camera', ['cloud'], tolerance_ns=10 * MS, timeout_ns=S)
    pairer.add('cloud', 10**6 * S, 'bogus clock')
    pairer.add('cloud', 100 * MS, 'c')
    (pair,) = pairer.add('camera', 100 * MS, 'd')
    assert pair.items['cloud'] == 'c' and pairer.unpaired == {'camera': 0, 'cloud': 0}


def test_a_silent_partner_leaves_frames_waiting_up_to_the_cap():
    pairer = NearestStampPairer('camera', ['cloud'], tolerance_ns=10 * MS, timeout_ns=S, max_pending=5)
    for k in range(20):
        assert pairer.add('camera', k * S, k) == []
    assert pairer.waiting()['camera'] == 5 and pairer.unpaired['camera'] == 15


def test_nearest_bad_setup_is_refused():
    with pytest.raises(ValueError, match='partner'):
        NearestStampPairer('a', [], 0, 0)
    with pytest.raises(ValueError, match='partner'):
        NearestStampPairer('a', ['a'], 0, 0)
    with pytest.raises(ValueError, match='offsets for streams'):
        NearestStampPairer('a', ['b'], 0, 0, offsets_ns={'a': 1})
    with pytest.raises(ValueError, match='tolerance_ns'):
        NearestStampPairer('a', ['b'], -1, 0)
    with pytest.raises(ValueError, match='max_pending'):
        NearestStampPairer('a', ['b'], 0, 0, max_pending=0)
    with pytest.raises(KeyError, match='unknown stream'):
        NearestStampPairer('a', ['b'], 0, 0).add('c', 0, None)


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
