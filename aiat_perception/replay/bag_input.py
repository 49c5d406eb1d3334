"""Opening a bag for evaluation and choosing its streams, with one-line errors that name the bag and
the problem (missing file, unknown storage, truncated or corrupt data, missing topics, wrong types,
no ground truth) instead of a traceback."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

from aiat_perception.replay import messages as m
from aiat_perception.replay import topics as default_topics

CAMERA_TYPES = (m.IMAGE, m.COMPRESSED_IMAGE)
GT_LEG_TYPES = (m.POSE_ARRAY,)


class ReplayError(ValueError):
    """A bag that cannot be evaluated; the message names the bag and the problem."""


def bag_inventory(path) -> Dict[str, Tuple[str, int]]:
    """topic -> (type, count); errors as ReplayError."""
    from aiat_perception.bag_reading import BagError, bag_topics
    path = Path(path)
    if not path.exists():
        raise ReplayError(f'{path}: no such bag')
    meta = path / 'metadata.yaml' if path.is_dir() else None
    if meta is not None and meta.is_file():
        _check_storage(path, meta)
    try:
        return bag_topics(path)
    except BagError as exc:
        raise ReplayError(_one_line(str(exc))) from exc
    except Exception as exc:   # rosbags raises per-format errors; none of them may escape as a traceback
        raise ReplayError(_one_line(f'{path}: cannot read bag: {type(exc).__name__}: {exc}')) from exc


def _check_storage(path: Path, meta: Path) -> None:
    import yaml
    try:
        info = yaml.safe_load(meta.read_text())['rosbag2_bagfile_information']
        storage = info.get('storage_identifier')
    except Exception as exc:
        raise ReplayError(f'{path}: unreadable metadata.yaml ({type(exc).__name__}: {_one_line(str(exc))})') from exc
    if storage not in ('mcap', 'sqlite3'):
        raise ReplayError(f'{path}: unknown storage {storage!r} (rosbags reads mcap and sqlite3)')


def _one_line(text: str) -> str:
    return ' '.join(str(text).split())[:400]


def iterate(path, topic_names: List[str]) -> Iterator[Tuple[str, int, object]]:
    """(topic, receive ns, message) in bag order; a corrupt or truncated bag raises ReplayError."""
    from aiat_perception.bag_reading import BagError, iterate_messages
    count = 0
    try:
        for item in iterate_messages(path, topic_names):
            count += 1
            yield item
    except BagError as exc:
        raise ReplayError(_one_line(str(exc))) from exc
    except Exception as exc:
        raise ReplayError(_one_line(f'{path}: corrupt or truncated bag after {count} messages: '
                                    f'{type(exc).__name__}: {exc}')) from exc


@dataclass
class Streams:
    """The topics an evaluation reads; None = not in this bag."""
    camera: Optional[str] = None
    camera_type: Optional[str] = None
    camera_info: Optional[str] = None
    points: Optional[str] = None
    scan: Optional[str] = None
    gt_2d: Optional[str] = None
    gt_3d: Optional[str] = None
    gt_scan: Optional[str] = None          # Detection3DArray of persons, or PoseArray leg labels
    gt_scan_type: Optional[str] = None
    tf_static: Optional[str] = None
    notes: List[str] = field(default_factory=list)

    def topics(self) -> List[str]:
        names = [self.camera, self.camera_info, self.points, self.scan, self.gt_2d, self.gt_3d, self.gt_scan,
                 self.tf_static]
        return sorted({n for n in names if n})


def _pick(path, inventory, wanted: Optional[str], types, default_names, role: str) -> Optional[str]:
    if wanted:
        if wanted not in inventory:
            raise ReplayError(f'{path}: no topic {wanted} for the {role} '
                              f'(topics: {", ".join(sorted(inventory)) or "none"})')
        if inventory[wanted][0] not in types:
            raise ReplayError(f'{path}: topic {wanted} is {inventory[wanted][0]}, the {role} must be '
                              f'{" or ".join(types)}')
        return wanted
    for name in default_names:
        if name in inventory and inventory[name][0] in types:
            return name
    for name in default_names:
        if name in inventory:
            raise ReplayError(f'{path}: topic {name} is {inventory[name][0]}, the {role} must be {" or ".join(types)}')
    candidates = sorted(t for t, (kind, _) in inventory.items() if kind in types)
    return candidates[0] if len(candidates) == 1 else None


def select_streams(path, inventory, camera=None, points=None, scan=None, gt_2d=None, gt_3d=None,
                   gt_scan=None) -> Streams:
    t = default_topics
    s = Streams()
    s.camera = _pick(path, inventory, camera, CAMERA_TYPES, (t.IMAGE, t.COMPRESSED_IMAGE), 'camera')
    s.camera_type = inventory[s.camera][0] if s.camera else None
    s.camera_info = t.CAMERA_INFO if inventory.get(t.CAMERA_INFO, ('',))[0] == m.CAMERA_INFO else None
    s.points = _pick(path, inventory, points, (m.POINTCLOUD2,), (t.POINTS,), 'point cloud')
    s.scan = _pick(path, inventory, scan, (m.LASER_SCAN,), (t.SCAN, t.LEG_SCAN), 'laser scan')
    s.tf_static = t.TF_STATIC if inventory.get(t.TF_STATIC, ('',))[0] == m.TF_MESSAGE else None
    if s.camera:
        s.gt_2d = _pick(path, inventory, gt_2d, (m.DETECTION_2D_ARRAY,), (t.GT_2D,), 'camera ground truth')
    if s.points:
        s.gt_3d = _pick(path, inventory, gt_3d, (m.DETECTION_3D_ARRAY,), (t.GT_3D,), 'point-cloud ground truth')
    if s.scan:
        s.gt_scan = _pick(path, inventory, gt_scan, (m.DETECTION_3D_ARRAY, m.POSE_ARRAY),
                          ('/ground_truth/scan_persons', t.GT_LEGS), 'scan ground truth')
        s.gt_scan_type = inventory[s.gt_scan][0] if s.gt_scan else None
    for sensor, gt in (('camera', 'gt_2d'), ('points', 'gt_3d'), ('scan', 'gt_scan')):
        if getattr(s, sensor) and not getattr(s, gt):
            s.notes.append(f'{getattr(s, sensor)} has no ground-truth topic: not scored')
            setattr(s, sensor, None)
    if not (s.camera or s.points or s.scan):
        sensors = sorted(t for t, (kind, _) in inventory.items()
                         if kind in CAMERA_TYPES + (m.POINTCLOUD2, m.LASER_SCAN))
        if not sensors:
            raise ReplayError(f'{path}: no camera, point-cloud or laser-scan topic '
                              f'(topics: {", ".join(f"{k} [{v[0]}]" for k, v in sorted(inventory.items())) or "none"})')
        raise ReplayError(f'{path}: no ground truth for {", ".join(sensors)} (expected {t.GT_2D}, {t.GT_3D} '
                          f'or {t.GT_LEGS}; name others with --gt-2d/--gt-3d/--gt-scan)')
    return s
