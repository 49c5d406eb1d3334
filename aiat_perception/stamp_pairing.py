"""Pair messages of several streams by their stamp (ROS-free).

The IoU monitor pairs detections with ground truth this way; sensor fusion (camera + lidar) and bag
replay pair their inputs the same way. :class:`StampPairer`: items wait until every stream has one
with the same stamp; items more than ``timeout_ns`` older than the slowest stream's newest stamp are
dropped and counted per stream (one message stamped far in the future must not expire everything after
it), and at most ``max_pending`` wait per stream. :class:`NearestStampPairer`: sensors with their own clocks and triggers (camera and
lidar) pair by the nearest stamp within a tolerance, with a time offset per stream.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Hashable, List, Optional, Sequence


class StampPairer:
    def __init__(self, streams: Sequence[Hashable], timeout_ns: int, max_pending: int = 1000):
        if len(streams) < 2 or len(set(streams)) != len(streams):
            raise ValueError(f'need two or more distinct streams, got {list(streams)}')
        if timeout_ns < 0:
            raise ValueError(f'timeout_ns must be >= 0, got {timeout_ns}')
        if max_pending < 1:
            raise ValueError(f'max_pending must be >= 1, got {max_pending}')
        self.max_pending = int(max_pending)
        self.streams = tuple(streams)
        self.timeout_ns = int(timeout_ns)
        self.pending: Dict[Hashable, Dict[int, object]] = {s: {} for s in self.streams}
        self.unpaired: Dict[Hashable, int] = {s: 0 for s in self.streams}
        self.paired = 0
        self.newest_ns: Dict[Hashable, int] = {}       # stream -> its newest stamp

    def add(self, stream: Hashable, stamp_ns: int, item) -> Optional[Dict[Hashable, object]]:
        """Store ``item``; return ``{stream: item}`` for every stream once all have ``stamp_ns``.
        A second item for the same stream and stamp replaces the first (counted as unpaired)."""
        if stream not in self.pending:
            raise KeyError(f'unknown stream {stream!r} (streams: {list(self.streams)})')
        stamp_ns = int(stamp_ns)
        if stamp_ns in self.pending[stream]:
            self.unpaired[stream] += 1
        self.pending[stream][stamp_ns] = item
        while len(self.pending[stream]) > self.max_pending:
            del self.pending[stream][min(self.pending[stream])]
            self.unpaired[stream] += 1
        self.newest_ns[stream] = max(self.newest_ns.get(stream, stamp_ns), stamp_ns)
        pair = None
        if all(stamp_ns in pending for pending in self.pending.values()):
            pair = {s: self.pending[s].pop(stamp_ns) for s in self.streams}
            self.paired += 1
        self._expire()
        return pair

    def _expire(self) -> None:
        if len(self.newest_ns) < len(self.pending):
            return                                        # a stream not heard yet: only max_pending bounds
        horizon = min(self.newest_ns.values()) - self.timeout_ns
        for stream, pending in self.pending.items():
            old = [stamp for stamp in pending if stamp < horizon]
            for stamp in old:
                del pending[stamp]
            self.unpaired[stream] += len(old)

    def waiting(self) -> Dict[Hashable, int]:
        """How many items each stream holds unpaired right now."""
        return {s: len(p) for s, p in self.pending.items()}


@dataclass
class Paired:
    """One anchor item with its nearest partner item of every other stream."""
    stamp_ns: int                        # the anchor's stamp
    items: Dict[Hashable, object]        # stream -> item, the anchor included
    gaps_ns: Dict[Hashable, int]         # partner stream -> (its stamp + offset) - anchor stamp


class NearestStampPairer:
    """Pair each item of an ``anchor`` stream (a camera's detections) with the item of every partner
    stream (a lidar's clouds, its detections) whose stamp, plus that stream's offset, is nearest to the
    anchor's stamp and within ``tolerance_ns``: sensors that are not triggered together never share a
    stamp.

    ``offsets_ns[stream]`` is what to add to that stream's stamps to put them on the anchor's clock
    (a lidar that stamps the same instant 20 ms later than the camera: -20 ms). A partner item may
    serve several anchors (a 30 Hz camera against a 10 Hz lidar) and stays until it expires; an anchor
    is paired once. An anchor is paired as soon as every partner stream holds an item within the
    tolerance, with the nearest of those held: keep the tolerance below half the slower sensor's
    period so that at most one item can qualify and waiting for a nearer one is never needed. Items
    more than ``timeout_ns`` older than the slowest stream's newest (offset) stamp are dropped: one
    message stamped far in the future cannot expire everything after it, as it would against the
    newest stamp of all. Anchors and partner items that never paired are counted in ``unpaired``. At
    most ``max_pending`` items wait per stream (the oldest goes first, counted), which bounds memory
    whatever the stamps do, also while a stream is silent.
    Hand-written: message_filters' ApproximateTimeSynchronizer is ROS-bound and pairs each item once.
    """

    def __init__(self, anchor: Hashable, partners: Sequence[Hashable], tolerance_ns: int, timeout_ns: int,
                 offsets_ns: Optional[Dict[Hashable, int]] = None, max_pending: int = 100):
        streams = (anchor, *partners)
        if not partners or len(set(streams)) != len(streams):
            raise ValueError(f'need an anchor and one or more distinct partner streams, got {list(streams)}')
        offsets_ns = dict(offsets_ns or {})
        unknown = set(offsets_ns) - set(partners)
        if unknown:
            raise ValueError(f'offsets for streams that are not partners: {sorted(map(str, unknown))}')
        for name, value in (('tolerance_ns', tolerance_ns), ('timeout_ns', timeout_ns)):
            if not value >= 0:
                raise ValueError(f'{name} must be >= 0, got {value}')
        if max_pending < 1:
            raise ValueError(f'max_pending must be >= 1, got {max_pending}')
        self.anchor, self.partners = anchor, tuple(partners)
        self.tolerance_ns, self.timeout_ns = int(tolerance_ns), int(timeout_ns)
        self.offsets_ns = {s: int(offsets_ns.get(s, 0)) for s in self.partners}
        self.max_pending = int(max_pending)
        # stream -> {offset stamp: [item, used]}; the anchor's entries are never 'used' (they leave when paired)
        self.pending: Dict[Hashable, Dict[int, list]] = {s: {} for s in streams}
        self.unpaired: Dict[Hashable, int] = {s: 0 for s in streams}
        self.paired = 0
        self.newest_ns: Dict[Hashable, int] = {}       # stream -> its newest offset stamp

    def set_offset(self, stream: Hashable, offset_ns: int) -> None:
        """Change a partner's offset; items already held keep the offset they came with."""
        if stream not in self.offsets_ns:
            raise KeyError(f'unknown partner stream {stream!r} (partners: {list(self.partners)})')
        self.offsets_ns[stream] = int(offset_ns)

    def add(self, stream: Hashable, stamp_ns: int, item) -> List[Paired]:
        """Store ``item``; return the pairs it completes (an anchor: at most one; a partner: every
        waiting anchor it completes, oldest first)."""
        if stream not in self.pending:
            raise KeyError(f'unknown stream {stream!r} (streams: {[self.anchor, *self.partners]})')
        stamp = int(stamp_ns) + self.offsets_ns.get(stream, 0)
        pending = self.pending[stream]
        if stamp in pending:
            old = pending.pop(stamp)
            if stream == self.anchor or not old[1]:
                self.unpaired[stream] += 1
        pending[stamp] = [item, False]
        while len(pending) > self.max_pending:
            oldest = min(pending)
            if not pending.pop(oldest)[1]:
                self.unpaired[stream] += 1
        self.newest_ns[stream] = max(self.newest_ns.get(stream, stamp), stamp)
        anchors = [stamp] if stream == self.anchor else sorted(self.pending[self.anchor])
        out = [p for p in (self._try(a) for a in anchors if a in self.pending[self.anchor]) if p is not None]
        self._expire()
        return out

    def _nearest(self, stream: Hashable, stamp: int) -> Optional[int]:
        best = None
        for candidate in self.pending[stream]:
            gap = abs(candidate - stamp)
            if gap <= self.tolerance_ns and (best is None or gap < abs(best - stamp)):
                best = candidate
        return best

    def _try(self, anchor_stamp: int) -> Optional[Paired]:
        chosen = {}
        for stream in self.partners:
            found = self._nearest(stream, anchor_stamp)
            if found is None:
                return None
            chosen[stream] = found
        items = {self.anchor: self.pending[self.anchor].pop(anchor_stamp)[0]}
        for stream, stamp in chosen.items():
            entry = self.pending[stream][stamp]
            entry[1] = True
            items[stream] = entry[0]
        self.paired += 1
        return Paired(anchor_stamp, items, {s: chosen[s] - anchor_stamp for s in self.partners})

    def _expire(self) -> None:
        if len(self.newest_ns) < len(self.pending):
            return                                        # a stream not heard yet: only max_pending bounds
        horizon = min(self.newest_ns.values()) - self.timeout_ns
        for stream, pending in self.pending.items():
            for stamp in [s for s in pending if s < horizon]:
                if not pending.pop(stamp)[1]:
                    self.unpaired[stream] += 1

    def waiting(self) -> Dict[Hashable, int]:
        """How many items each stream holds right now (partner items already used included)."""
        return {s: len(p) for s, p in self.pending.items()}
