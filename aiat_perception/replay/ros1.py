"""ROS 1 bags -> rosbag2 (MCAP or sqlite3) with rosbags' own converter."""
from __future__ import annotations

from pathlib import Path

from aiat_perception.replay.bag_writer import DEFAULT_VERSION, STORAGES, check_version, write_version_5


class Ros1ConvertError(ValueError):
    pass


def convert_ros1(src, out=None, storage: str = 'mcap', version: int = DEFAULT_VERSION) -> Path:
    from rosbags.convert import ConverterError, convert
    from rosbags.typesys import Stores, get_typestore
    src = Path(src)
    out = Path(out) if out else src.with_suffix('')
    check_version(out, version)
    if storage not in STORAGES:
        raise Ros1ConvertError(f'{src}: unknown storage {storage!r} (choose {", ".join(STORAGES)})')
    if not src.is_file():
        raise Ros1ConvertError(f'{src}: no such ROS 1 bag file')
    if out.exists():
        raise Ros1ConvertError(f'{out}: already exists')
    try:
        # ROS 1 types become their ROS 2 namesakes (sensor_msgs/LaserScan -> sensor_msgs/msg/LaserScan)
        convert([src], out, storage, max(version, 8), None, 'file', get_typestore(Stores.ROS1_NOETIC),
                get_typestore(Stores.ROS2_HUMBLE), [], [], [], [])
    except ConverterError as exc:
        raise Ros1ConvertError(f'{src}: {exc}') from exc
    if version == 5:
        write_version_5(out)
    return out
