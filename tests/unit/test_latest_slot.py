"""The one-frame mailbox behind 'always process the newest frame'."""
from __future__ import annotations

import threading
import time

from aiat_perception.latest_slot import LatestSlot


def test_newest_wins_and_overwrites_count_as_drops():
    slot = LatestSlot()
    assert slot.put(1) is False
    assert slot.put(2) is True and slot.put(3) is True
    assert slot.take(timeout=0) == 3
    assert slot.dropped == 2 and slot.put_count == 3
    assert slot.take(timeout=0.01) is None


def test_slow_consumer_only_sees_fresh_items():
    slot = LatestSlot()
    seen = []

    def consume():
        while not slot.closed:
            item = slot.take(timeout=0.05)
            if item is not None:
                seen.append(item)
                time.sleep(0.02)  # a slow model

    worker = threading.Thread(target=consume)
    worker.start()
    for i in range(200):
        slot.put(i)
        time.sleep(0.001)
    time.sleep(0.1)
    slot.close()
    worker.join(timeout=2)
    assert seen[-1] == 199                       # the last frame is always processed
    assert len(seen) + slot.dropped == 200       # every frame is either processed or counted dropped
    assert slot.dropped > 100
    assert seen == sorted(seen)


def test_close_wakes_a_waiting_consumer():
    slot = LatestSlot()
    result = []
    worker = threading.Thread(target=lambda: result.append(slot.take(timeout=10)))
    worker.start()
    time.sleep(0.05)
    slot.close()
    worker.join(timeout=1)
    assert not worker.is_alive() and result == [None]
