"""Writing rosbag2 bags with ``rosbags`` (MCAP by default, or sqlite3): never a format of our own.

Metadata version: rosbags writes metadata.yaml version 8 or 9 only. ROS 2 Humble's rosbag2 writes 5
and parses newer files by the fields it knows, so version 9 (``offered_qos_profiles`` as a YAML list
instead of a string) stops it with "bad conversion"; Jazzy reads every older version. We write **5**
by default, the layout Humble itself records, so Humble and Jazzy (and later) read our bags: rosbags
writes version 8 and :func:`write_version_5` rewrites its metadata.yaml, dropping the keys version 5
does not have (custom_data, ros_distro, each topic's type_description_hash; rosbag2 reads those only
from versions 6/8/7 on) and keeping everything else, whose layout versions 5 and 8 share
(offered_qos_profiles a string with numeric policies, files[], relative_file_paths, compression).
``version=8`` or ``9`` keep rosbags' own file. See docs/replay.md for what was and was not verified.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

from aiat_perception.replay.typestore import typestore

STORAGES = ('mcap', 'sqlite3')
VERSIONS = (5, 8, 9)
DEFAULT_VERSION = 5
NEWER_THAN_5 = ('custom_data', 'ros_distro')           # bag-level keys of versions 6 and 8
TOPIC_NEWER_THAN_5 = ('type_description_hash',)        # topic key of version 7


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
        check_version(path, version)
        if storage not in STORAGES:
            raise BagWriteError(f'{path}: unknown storage {storage!r} (choose {", ".join(STORAGES)})')
        self.path = Path(path)
        if self.path.exists():
            raise BagWriteError(f'{self.path}: already exists (a bag is a new directory)')
        plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
        self.version = version
        self._writer = Writer(self.path, version=max(version, 8), storage_plugin=plugin)
        self._store = typestore()
        self._connections: Dict[str, object] = {}
        self.counts: Dict[str, int] = {}

    def __enter__(self):
        self._writer.open()
        return self

    def __exit__(self, *exc):
        self._writer.close()
        if self.version == 5:
            write_version_5(self.path)

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


def check_version(path, version: int) -> None:
    if version not in VERSIONS:
        raise BagWriteError(f'{path}: rosbag2 metadata version {version!r} is not one we write '
                            f'(choose {", ".join(map(str, VERSIONS))}; 5 = what Humble records, read by every later distribution)')


def write_version_5(bag) -> None:
    """Rewrite a version-8 metadata.yaml (rosbags') in the version-5 layout (Humble's)."""
    import yaml
    path = Path(bag) / 'metadata.yaml'
    doc = yaml.safe_load(path.read_text())
    info = doc['rosbag2_bagfile_information']
    if info.get('version') != 8:
        raise BagWriteError(f'{path}: expected rosbags\' version 8 metadata, found version {info.get("version")!r}')
    info['version'] = 5
    for key in NEWER_THAN_5:
        info.pop(key, None)
    for topic in info['topics_with_message_count']:
        for key in TOPIC_NEWER_THAN_5:
            topic['topic_metadata'].pop(key, None)
    # one line per value, as rosbag2's yaml-cpp writes it (no folded or escaped line breaks to re-read)
    path.write_text(yaml.safe_dump(doc, default_flow_style=False, sort_keys=True, width=1 << 30))
