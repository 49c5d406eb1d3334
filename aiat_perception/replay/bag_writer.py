"""Writing rosbag2 bags with ``rosbags`` (MCAP by default, or sqlite3): never a format of our own.

rosbags writes metadata version 8 or 9; ROS 2 Humble's rosbag2 records version 5. We write 8 by
default: 9 changes ``offered_qos_profiles`` from a YAML string to a list, which Humble's reader
does not parse; 8 only adds keys (``custom_data``, ``ros_distro``) that older readers skip. See
docs/replay.md for what was and was not verified.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

from aiat_perception.replay.typestore import typestore

STORAGES = ('mcap', 'sqlite3')
DEFAULT_VERSION = 8


class BagWriteError(ValueError):
    pass


def _latched_qos():
    """transient-local, keep-last 1: how /tf_static and CameraInfo latches are offered."""
    try:
        from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
    except ImportError:
        return ()
    never = QosTime(0x7FFFFFFF, 0xFFFFFFFF)
    return (Qos(QosHistory.KEEP_LAST, 1, QosReliability.RELIABLE, QosDurability.TRANSIENT_LOCAL, never, never,
                QosLiveliness.AUTOMATIC, never, False),)


class BagWriter:
    """``with BagWriter(path) as bag: bag.write(topic, msgtype, msg, stamp_ns)``; connections are
    added on first use of a topic."""

    def __init__(self, path, storage: str = 'mcap', version: int = DEFAULT_VERSION):
        from rosbags.rosbag2 import StoragePlugin, Writer
        if storage not in STORAGES:
            raise BagWriteError(f'{path}: unknown storage {storage!r} (choose {", ".join(STORAGES)})')
        self.path = Path(path)
        if self.path.exists():
            raise BagWriteError(f'{self.path}: already exists (a bag is a new directory)')
        plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
        self._writer = Writer(self.path, version=version, storage_plugin=plugin)
        self._store = typestore()
        self._connections: Dict[str, object] = {}
        self.counts: Dict[str, int] = {}

    def __enter__(self):
        self._writer.open()
        return self

    def __exit__(self, *exc):
        self._writer.close()

    def write(self, topic: str, msgtype: str, msg, stamp_ns: int, latched: bool = False) -> None:
        conn = self._connections.get(topic)
        if conn is None:
            qos = _latched_qos() if latched else ()
            conn = self._writer.add_connection(topic, msgtype, typestore=self._store, offered_qos_profiles=qos)
            self._connections[topic] = conn
        elif conn.msgtype != msgtype:
            raise BagWriteError(f'{self.path}: topic {topic} is {conn.msgtype}, not {msgtype}')
        self._writer.write(conn, int(stamp_ns), bytes(self._store.serialize_cdr(msg, msgtype)))
        self.counts[topic] = self.counts.get(topic, 0) + 1

    def write_raw(self, topic: str, msgtype: str, raw: bytes, stamp_ns: int) -> None:
        conn = self._connections.get(topic)
        if conn is None:
            conn = self._connections[topic] = self._writer.add_connection(topic, msgtype, typestore=self._store)
        self._writer.write(conn, int(stamp_ns), raw)
        self.counts[topic] = self.counts.get(topic, 0) + 1


def open_writer(path, storage: Optional[str] = None, version: int = DEFAULT_VERSION) -> BagWriter:
    return BagWriter(path, storage or 'mcap', version)
