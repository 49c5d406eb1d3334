"""Parameter tables of the lidar detectors: name -> (default, description, (low, high)).

A node declares one ROS parameter per entry; the offline tools read the same names from the node's
YAML file (``config/lidar_detector.yaml``, ``config/scan_detector.yaml``). Every value is checked
against its range (NaN, inf and wrong types rejected) with a message naming the parameter and file.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence, Tuple

ParameterTable = Dict[str, Tuple[object, str, Optional[Tuple[float, float]]]]


class ParameterError(ValueError):
    pass


def defaults(table: ParameterTable) -> Dict[str, object]:
    return {name: default for name, (default, _, _) in table.items()}


def resolve(table: ParameterTable, overrides: Optional[Mapping[str, object]] = None,
            source: str = 'parameters') -> Dict[str, object]:
    """Defaults updated by ``overrides``, every value checked (unknown names are an error)."""
    values = defaults(table)
    for name, value in (overrides or {}).items():
        if name not in table:
            raise ParameterError(f'{source}: unknown parameter {name!r} (known: {", ".join(sorted(table))})')
        values[name] = check(table, name, value, source)
    return values


def check(table: ParameterTable, name: str, value, source: str = 'parameters'):
    default, _, bounds = table[name]
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ParameterError(f'{source}: {name} must be true or false, got {value!r}')
        return value
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ParameterError(f'{source}: {name} must be a string, got {value!r}')
        if bounds is not None and value not in bounds:
            raise ParameterError(f'{source}: {name} must be one of {list(bounds)}, got {value!r}')
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParameterError(f'{source}: {name} must be a number, got {value!r}')
    if isinstance(default, int) and not float(value).is_integer():
        raise ParameterError(f'{source}: {name} must be an integer, got {value!r}')
    if not math.isfinite(float(value)):
        raise ParameterError(f'{source}: {name} must be finite, got {value!r}')
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        raise ParameterError(f'{source}: {name} must be in [{bounds[0]}, {bounds[1]}], got {value!r}')
    return int(value) if isinstance(default, int) else float(value)


def read_yaml(path, node_name: str, table: ParameterTable, node_parameters: Sequence[str] = ()) -> Dict[str, object]:
    """The ``<node_name>: ros__parameters:`` section of a ROS 2 parameter file, resolved against
    ``table``. Names in ``node_parameters`` (the node's own: topics, QoS, diagnostics) are allowed in
    the file and left out of the result; any other unknown name is an error (a typo would otherwise
    be ignored silently)."""
    import yaml
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ParameterError(f'{path}: cannot read: {exc}') from exc
    section = (doc or {}).get(node_name, {}) if isinstance(doc, dict) else None
    params = section.get('ros__parameters') if isinstance(section, dict) else None
    if not isinstance(params, dict):
        raise ParameterError(f'{path}: no "{node_name}: ros__parameters:" mapping')
    if not node_parameters:  # the node's own parameters, from its table (topics, QoS, health)
        from aiat_perception.node_params import MODULES, table_for
        if node_name in MODULES:
            node_parameters = [name for name in table_for(node_name).names if name not in table]
    core = {k: v for k, v in params.items() if k not in set(node_parameters) or k in table}
    return resolve(table, core, str(path))
