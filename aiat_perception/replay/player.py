"""A bag player of our own: the chosen topics are loaded into memory (raw CDR, as recorded) and
published with rclpy at the recorded spacing (or x ``rate_scale``, or at a fixed rate), optionally
with ``/clock``. Messages go out as the recorded bytes (``Publisher.publish`` takes serialized
data), so nothing is re-encoded and header stamps stay as recorded: outputs pair with the ground
truth by stamp, and latency is measured from each message's publish time (kept per stamp).

On a machine with a ROS 2 distribution ``ros2 bag play BAG --topics ...`` does the same job
(docs/replay.md); this one runs where rosbag2 is not installed and reports its own timing.
Loading needs only rosbags; publishing needs rclpy.
"""
from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence


NO_HEADER = ('tf2_msgs/msg/TFMessage', 'rosgraph_msgs/msg/Clock')


@dataclass
class LoadedMessage:
    topic: str
    msgtype: str
    log_ns: int          # receive time recorded in the bag
    stamp_ns: int        # header stamp (0 when the type has no header)
    raw: bytes


@dataclass
class PlayLog:
    """What the player did: per message the target and actual publish time (perf_counter seconds)."""
    target: List[float] = field(default_factory=list)
    actual: List[float] = field(default_factory=list)
    stamp_ns: List[int] = field(default_factory=list)
    topic: List[str] = field(default_factory=list)
    # (topic, header stamp) -> time.time_ns() at its (last) publish: a camera image and a point cloud may share a stamp
    publish_wall_ns: Dict[tuple, int] = field(default_factory=dict)
    published: List[tuple] = field(default_factory=list)             # (header stamp, time.time_ns()) per publish

    def timing_errors_ms(self) -> List[float]:
        """Publish time minus the scheduled time (from the recorded spacing), per message."""
        return [(a - t) * 1e3 for a, t in zip(self.actual, self.target)]


def load(path, topic_names: Sequence[str]) -> List[LoadedMessage]:
    """Every message of the topics, in bag order, kept serialized."""
    from rosbags.highlevel import AnyReader

    from aiat_perception.replay.bag_input import bag_inventory
    bag_inventory(path)          # one-line errors for missing/unreadable bags
    from pathlib import Path
    reader = AnyReader([Path(path)])
    reader.open()
    try:
        conns = [c for c in reader.connections if c.topic in set(topic_names)]
        out = []
        for conn, log_ns, raw in reader.messages(connections=conns):
            out.append(LoadedMessage(conn.topic, conn.msgtype, int(log_ns), _header_stamp(raw, conn.msgtype), bytes(raw)))
        return out
    finally:
        reader.close()


def _header_stamp(raw: bytes, msgtype: str) -> int:
    """The header stamp of a CDR message whose first field is a std_msgs/Header: after the 4-byte
    encapsulation header come sec (int32) and nanosec (uint32), little-endian for CDR_LE."""
    import struct
    if len(raw) < 12 or raw[1] not in (0, 1):
        return 0
    endian = '<' if raw[1] == 1 else '>'
    sec, nanosec = struct.unpack(endian + 'iI', raw[4:12])
    return 0 if msgtype in NO_HEADER else sec * 1_000_000_000 + nanosec


def rclpy_class(msgtype: str):
    package, _, name = msgtype.split('/')
    return getattr(importlib.import_module(f'{package}.msg'), name)


class Player:
    """``Player(node, messages).play(rate_scale=1.0)``; publishers are created for each topic
    (reliable, keep last ``depth``; transient local for the ``latched`` topics)."""

    def __init__(self, node, messages: Sequence[LoadedMessage], depth: int = 10, clock: bool = False,
                 latched: Sequence[str] = ()):
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        self.node = node
        self.messages = list(messages)
        qos = QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE)
        # /tf_static and the like: transient local, as static broadcasters offer it (a transient-local
        # subscription hears no volatile publisher)
        latched_qos = QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE,
                                 durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.publishers = {}
        for msg in self.messages:
            if msg.topic not in self.publishers:
                self.publishers[msg.topic] = node.create_publisher(
                    rclpy_class(msg.msgtype), msg.topic, latched_qos if msg.topic in latched else qos)
        self.clock_pub = None
        if clock:
            from rosgraph_msgs.msg import Clock
            self.clock_pub = node.create_publisher(Clock, '/clock', 10)

    def subscribers(self, topic: str) -> int:
        return self.publishers[topic].get_subscription_count()

    def play(self, rate_scale: float = 1.0, fixed_rate_hz: Optional[float] = None,
             messages: Optional[Sequence[LoadedMessage]] = None, spin_margin_s: float = 0.002) -> PlayLog:
        """Publish in order: message i at start + (log_i - log_0) / rate_scale, or at i / fixed_rate_hz.
        Sleeps until ``spin_margin_s`` before each deadline, then busy-waits (sleep alone overshoots
        by a scheduler tick under load)."""
        if not rate_scale > 0:
            raise ValueError(f'rate_scale must be > 0, got {rate_scale}')
        msgs = list(messages if messages is not None else self.messages)
        log = PlayLog()
        if not msgs:
            return log
        t0 = time.perf_counter() + 0.01
        first = msgs[0].log_ns
        for i, msg in enumerate(msgs):
            target = t0 + (i / fixed_rate_hz if fixed_rate_hz else (msg.log_ns - first) / 1e9 / rate_scale)
            while True:
                left = target - time.perf_counter()
                if left <= 0:
                    break
                if left > spin_margin_s:
                    time.sleep(left - spin_margin_s)
            if self.clock_pub is not None:
                from rosgraph_msgs.msg import Clock
                c = Clock()
                c.clock.sec, c.clock.nanosec = divmod(msg.log_ns, 1_000_000_000)
                self.clock_pub.publish(c)
            actual = time.perf_counter()
            wall = time.time_ns()
            log.publish_wall_ns[(msg.topic, msg.stamp_ns)] = wall
            log.published.append((msg.stamp_ns, wall))
            self.publishers[msg.topic].publish(msg.raw)
            log.target.append(target)
            log.actual.append(actual)
            log.stamp_ns.append(msg.stamp_ns)
            log.topic.append(msg.topic)
        return log
