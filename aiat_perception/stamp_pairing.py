"""Pair messages of several streams by their stamp (ROS-free).

The IoU monitor pairs detections with ground truth this way; sensor fusion (camera + lidar) and bag
replay pair their inputs the same way. Items wait until every stream has one with the same stamp;
items more than ``timeout_ns`` older than the newest stamp seen are dropped and counted per stream.
"""
from __future__ import annotations

from typing import Dict, Hashable, Optional, Sequence


class StampPairer:
    def __init__(self, streams: Sequence[Hashable], timeout_ns: int):
        if len(streams) < 2 or len(set(streams)) != len(streams):
            raise ValueError(f'need two or more distinct streams, got {list(streams)}')
        if timeout_ns < 0:
            raise ValueError(f'timeout_ns must be >= 0, got {timeout_ns}')
        self.streams = tuple(streams)
        self.timeout_ns = int(timeout_ns)
        self.pending: Dict[Hashable, Dict[int, object]] = {s: {} for s in self.streams}
        self.unpaired: Dict[Hashable, int] = {s: 0 for s in self.streams}
        self.paired = 0
        self.newest_ns: Optional[int] = None

    def add(self, stream: Hashable, stamp_ns: int, item) -> Optional[Dict[Hashable, object]]:
        """Store ``item``; return ``{stream: item}`` for every stream once all have ``stamp_ns``.
        A second item for the same stream and stamp replaces the first (counted as unpaired)."""
        if stream not in self.pending:
            raise KeyError(f'unknown stream {stream!r} (streams: {list(self.streams)})')
        stamp_ns = int(stamp_ns)
        if stamp_ns in self.pending[stream]:
            self.unpaired[stream] += 1
        self.pending[stream][stamp_ns] = item
        self.newest_ns = stamp_ns if self.newest_ns is None else max(self.newest_ns, stamp_ns)
        pair = None
        if all(stamp_ns in pending for pending in self.pending.values()):
            pair = {s: self.pending[s].pop(stamp_ns) for s in self.streams}
            self.paired += 1
        self._expire()
        return pair

    def _expire(self) -> None:
        horizon = self.newest_ns - self.timeout_ns
        for stream, pending in self.pending.items():
            old = [stamp for stamp in pending if stamp < horizon]
            for stamp in old:
                del pending[stamp]
            self.unpaired[stream] += len(old)

    def waiting(self) -> Dict[Hashable, int]:
        """How many items each stream holds unpaired right now."""
        return {s: len(p) for s, p in self.pending.items()}
