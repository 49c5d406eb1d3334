"""The message types a bag is written and read with: rosbags' ROS 2 Humble typestore (the oldest
distribution we support; sensor_msgs/geometry_msgs/tf2_msgs are the same in Jazzy and Kilted) plus
``vision_msgs`` registered from its .msg files (our pip-only copy in ros2_ws/pip_only, or an
installed ROS distribution's share/vision_msgs/msg).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional

REPO_ROOT = Path(__file__).resolve().parents[2]
VISION_TYPES = ('Detection2DArray', 'Detection3DArray', 'LabelInfo')


class TypestoreError(RuntimeError):
    pass


def vision_msgs_dir() -> Optional[Path]:
    candidates: List[Path] = [REPO_ROOT / 'ros2_ws' / 'pip_only' / 'vision_msgs' / 'msg']
    for prefix in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep):
        if prefix:
            candidates.append(Path(prefix) / 'share' / 'vision_msgs' / 'msg')
    return next((c for c in candidates if (c / 'Detection2D.msg').is_file()), None)


_STORE = None


def typestore():
    """One shared typestore (building it parses ~16 .msg files: a few ms)."""
    global _STORE
    if _STORE is None:
        try:
            from rosbags.typesys import Stores, get_types_from_msg, get_typestore
        except ImportError as exc:
            raise TypestoreError('bags need the rosbags package (pip install rosbags)') from exc
        store = get_typestore(Stores.ROS2_HUMBLE)
        folder = vision_msgs_dir()
        if folder is None:
            raise TypestoreError('vision_msgs .msg files not found (ros2_ws/pip_only/vision_msgs/msg or '
                                 '$AMENT_PREFIX_PATH/share/vision_msgs/msg)')
        types = {}
        for path in sorted(folder.glob('*.msg')):
            types.update(get_types_from_msg(path.read_text(), f'vision_msgs/msg/{path.stem}'))
        store.register(types)
        _STORE = store
    return _STORE


def msg_class(name: str):
    """The rosbags dataclass of a type, e.g. ``msg_class('sensor_msgs/msg/Image')``."""
    return typestore().types[name]
