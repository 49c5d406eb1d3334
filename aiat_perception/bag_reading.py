"""Reading bags (ROS 1 .bag, ROS 2 sqlite3/MCAP) through ``rosbags``' AnyReader, ROS-free.

``iterate_messages(path, topics)`` yields (topic, receive stamp in ns, deserialised message) in bag
order; ``paired_messages(path, first, then)`` pairs every message on ``first`` with the next message
on ``then`` (how the leg-tracker bags tie their PoseArray labels, stamped zero, to the scan recorded
right after them). The messages are rosbags' own dataclasses, with the ROS field names.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Optional, Sequence, Tuple


class BagError(ValueError):
    pass


def _reader(path):
    try:
        from rosbags.highlevel import AnyReader
    except ImportError as exc:  # rosbags is a dependency of the tools, not of the vehicle runtime
        raise BagError('reading bags needs the rosbags package (pip install rosbags)') from exc
    kwargs = {}
    try:
        from rosbags.typesys import Stores, get_typestore
        kwargs['default_typestore'] = get_typestore(Stores.LATEST)
    except (ImportError, AttributeError):
        pass
    path = Path(path)
    if not path.exists():
        raise BagError(f'{path}: no such bag')
    try:
        return AnyReader([path], **kwargs)
    except TypeError:
        return AnyReader([path])


def bag_topics(path) -> dict:
    """topic -> (message type, message count)."""
    reader = _open(path)
    try:
        out = {}
        for c in reader.connections:
            kind, count = out.get(c.topic, (c.msgtype, 0))
            out[c.topic] = (kind, count + c.msgcount)
        return out
    finally:
        reader.close()


def _open(path):
    reader = _reader(path)
    try:
        reader.open()
    except Exception as exc:  # rosbags raises its own error types per format
        raise BagError(f'{path}: cannot read bag: {exc}') from exc
    return reader


def iterate_messages(path, topics: Optional[Sequence[str]] = None) -> Iterator[Tuple[str, int, object]]:
    reader = _open(path)
    try:
        connections = [c for c in reader.connections if topics is None or c.topic in topics]
        if topics is not None:
            missing = sorted(set(topics) - {c.topic for c in connections})
            if missing:
                known = sorted({c.topic for c in reader.connections})
                raise BagError(f'{path}: no topic {", ".join(missing)} (topics: {", ".join(known)})')
        for connection, stamp, raw in reader.messages(connections=connections):
            yield connection.topic, int(stamp), reader.deserialize(raw, connection.msgtype)
    finally:
        reader.close()


def paired_messages(path, first: str, then: str) -> Iterator[Tuple[object, object]]:
    """(message on ``first``, the next message on ``then``) for every ``first`` message that has one."""
    pending = None
    for topic, _, msg in iterate_messages(path, [first, then]):
        if topic == first:
            pending = msg
        elif pending is not None:
            yield pending, msg
            pending = None
