"""A one-frame mailbox: the producer overwrites, the consumer always gets the newest item.

Used by nodes that must never work through a queue of stale sensor frames: a frame overwritten before
it was taken is counted as dropped.
"""
from __future__ import annotations

import threading
from typing import Any, Optional


class LatestSlot:
    def __init__(self):
        self._item: Any = None
        self._full = False
        self._closed = False
        self._cond = threading.Condition()
        self.dropped = 0
        self.put_count = 0

    def put(self, item: Any) -> bool:
        """Store ``item``; returns True when it replaced an item nobody took (a dropped frame)."""
        with self._cond:
            replaced = self._full
            if replaced:
                self.dropped += 1
            self._item, self._full = item, True
            self.put_count += 1
            self._cond.notify()
            return replaced

    def take(self, timeout: Optional[float] = None) -> Any:
        """The newest item, waiting up to ``timeout`` s; None on timeout or after :meth:`close`."""
        with self._cond:
            if not self._full and not self._closed:
                self._cond.wait(timeout)
            if not self._full:
                return None
            item, self._item, self._full = self._item, None, False
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed
