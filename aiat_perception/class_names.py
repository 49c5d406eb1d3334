"""Class names across models, datasets and the simulator: the one alias mechanism.

Names compare after :func:`normalize` (case, '_' and '-' ignored); :data:`COMMON_ALIASES` maps the
usual driving-data names onto COCO's (pedestrian -> person, ...); user renames come as
``'from:to'`` / ``'from=to'`` items (:func:`parse_aliases`, e.g. the IoU monitor's ``class_aliases``
and the simulator benchmark's ``--alias``) and apply through :func:`rename`.
"""
from __future__ import annotations

from typing import Dict, Iterable, Mapping, Optional

# Common names in driving data sets for a COCO class (keys normalised).
COMMON_ALIASES: Dict[str, str] = {
    'pedestrian': 'person', 'people': 'person', 'rider': 'person', 'person sitting': 'person',
    'bike': 'bicycle', 'cyclist': 'bicycle',
    'motorbike': 'motorcycle', 'motor': 'motorcycle',
    'aeroplane': 'airplane', 'sofa': 'couch', 'tvmonitor': 'tv', 'diningtable': 'dining table',
    'pottedplant': 'potted plant', 'trafficlight': 'traffic light', 'stopsign': 'stop sign',
}


def normalize(name: str) -> str:
    """Lower case, '_' and '-' as spaces, runs of spaces folded: 'Traffic_Light' -> 'traffic light'."""
    return ' '.join(str(name).strip().lower().replace('_', ' ').replace('-', ' ').split())


def canonical(name: str, aliases: Mapping[str, str] = COMMON_ALIASES) -> str:
    """The normalised name, through ``aliases`` (tried with and without spaces)."""
    key = normalize(name)
    return aliases.get(key, aliases.get(key.replace(' ', ''), key))


def parse_aliases(items: Iterable[str], what: str = 'class_aliases') -> Dict[str, str]:
    """``['from:to' | 'from=to', ...]`` (blanks ignored) -> ``{from: to}``; ValueError naming
    ``what`` on a malformed item. ('from=to' needs no quoting on a --ros-args command line.)"""
    aliases = {}
    for item in items:
        if not item:
            continue
        src, sep, dst = item.partition('=' if '=' in item else ':')
        if not sep or not src or not dst:
            raise ValueError(f"{what}: expected 'from:to' or 'from=to', got {item!r}")
        aliases[src] = dst
    return aliases


def rename(name: str, aliases: Optional[Mapping[str, str]]) -> str:
    """``name`` through user renames (exact names), unchanged when it has none."""
    return (aliases or {}).get(name, name)


def parse_class_values(items: Iterable[str], what: str, unit: str, low: float, high: float,
                       include_low: bool = True) -> Dict[str, float]:
    """``['class:value' | 'class=value', ...]`` (blanks ignored) -> ``{class: value}``, each value in
    [low, high] (``include_low=False``: (low, high]); ``what`` and ``unit`` name the parameter and
    its value in the error."""
    out = {}
    for item in items:
        if not item:
            continue
        name, sep, value = item.partition('=' if '=' in item else ':')
        try:
            number = float(value)
        except ValueError:
            number = float('nan')
        above_low = number >= low if include_low else number > low
        if not sep or not name.strip() or not (above_low and number <= high):
            raise ValueError(f"{what}: expected 'class:{unit}' with {unit} in "
                             f"{'[' if include_low else '('}{low:g}, {high:g}], got {item!r}")
        out[name.strip()] = number
    return out
