"""Node parameter tables: name, type, default, description, range and whether it may change at run time.

Each node's table lives in a ROS-free module under :mod:`aiat_perception.node_params`; the node declares
it with :func:`aiat_perception.nodes.common.declare_table` (a ``ParameterDescriptor`` per entry, ranges
included, so rclpy itself refuses ``ros2 param set`` outside them), the launch validator reads it to
check parameter files, and ``config/<node>.yaml`` documents it. Ranges are inclusive, as in ROS.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

INT64_MAX = 2 ** 63 - 1


class ParameterError(ValueError):
    """Invalid node parameters; the message names each bad parameter."""


def parameter_type(value) -> Optional[str]:
    """The ROS 2 parameter type a Python value has (None for an empty or mixed list)."""
    if isinstance(value, bool):
        return 'bool'
    if isinstance(value, int):
        return 'integer'
    if isinstance(value, float):
        return 'double'
    if isinstance(value, str):
        return 'string'
    if isinstance(value, (list, tuple)) and value:
        kinds = {parameter_type(v) for v in value}
        if kinds == {'integer', 'double'}:
            kinds = {'double'}
        return f'{kinds.pop()} array' if len(kinds) == 1 and None not in kinds else None
    return None


@dataclass(frozen=True)
class Param:
    """One parameter. ``range`` is ``(low, high)``, inclusive, for numbers (ROS's
    ``floating_point_range`` / ``integer_range``; use ``math.inf`` / :data:`INT64_MAX` for no upper
    bound); ``choices`` lists the allowed strings."""
    name: str
    default: object
    description: str
    range: Optional[Tuple[float, float]] = None
    dynamic: bool = False
    choices: Tuple[str, ...] = ()
    open_low: bool = False  # the low end itself is refused (by the table; ROS ranges are inclusive)

    @property
    def type(self) -> str:
        return parameter_type(self.default)

    def problem(self, value) -> Optional[str]:
        """Why ``value`` is not acceptable for this parameter (type, range, choices), or None. Types
        are strict, as rclpy's: an integer for a double is refused (see :meth:`ParameterTable.coerce`)."""
        want, got = self.type, parameter_type(value)
        if got != want and not (got is None and _empty_list_ok(value, want)):
            article = 'an' if want[0] in 'aeiou' else 'a'
            return (f'is {value!r} ({got or type(value).__name__}) but the node declares {article} {want} '
                    f'(default {self.default!r})')
        if self.range is not None and got in ('integer', 'double'):
            low, high = self.range
            if not (low < value <= high if self.open_low else low <= value <= high):  # NaN fails
                return f'must be {self.range_text()}, got {value!r}'
        if self.choices and got == 'string' and value not in self.choices:
            return f"must be one of {', '.join(self.choices)}, not {value!r}"
        return None


    def range_text(self) -> str:
        low, high = self.range
        if high in (math.inf, INT64_MAX):
            return f"{'>' if self.open_low else '>='} {low:g}"
        if low in (-math.inf, -INT64_MAX - 1):
            return f'<= {high:g}'
        return f"in {'(' if self.open_low else '['}{low:g}, {high:g}]"


def _empty_list_ok(value, want: str) -> bool:
    return isinstance(value, (list, tuple)) and not value and want.endswith('array')


class ParameterTable:
    """A node's parameters in declaration order, plus its cross-field checks.

    ``check(values)`` gets a complete mapping (defaults filled in) whose entries each passed their own
    type/range checks, and returns problems as ``'name: what is wrong'`` strings.
    """

    def __init__(self, node: str, params: Iterable[Param],
                 check: Optional[Callable[[Dict[str, object]], List[str]]] = None):
        self.node = node
        self.params: Dict[str, Param] = {}
        for param in params:
            if param.name in self.params:
                raise ValueError(f'{node}: parameter {param.name} listed twice')
            self.params[param.name] = param
            problem = param.problem(param.default)
            if problem:
                raise ValueError(f'{node}: default of {param.name} {problem}')
        self.check = check

    def __iter__(self):
        return iter(self.params.values())

    def __contains__(self, name) -> bool:
        return name in self.params

    def __getitem__(self, name) -> Param:
        return self.params[name]

    @property
    def names(self) -> set:
        return set(self.params)

    @property
    def defaults(self) -> Dict[str, object]:
        return {name: param.default for name, param in self.params.items()}

    @property
    def dynamic(self) -> set:
        return {name for name, param in self.params.items() if param.dynamic}

    def coerce(self, name: str, value):
        """An integer (list) given for a double (list) parameter, as rclpy needs it (``rate_hz:=20``)."""
        want = self.params[name].type if name in self.params else None
        if want == 'double' and parameter_type(value) == 'integer':
            return float(value)
        if want == 'double array' and parameter_type(value) in ('integer array', 'double array'):
            return [float(v) for v in value]
        return value

    def problems(self, values: Dict[str, object], cross_field: bool = True) -> List[str]:
        """Every problem with ``values`` (a subset of the parameters; the rest keep their defaults):
        unknown names, each value's type/range/choices (integers accepted for doubles), then the
        cross-field checks."""
        problems = [f'{name}: not a parameter of {self.node}' for name in values if name not in self.params]
        merged = self.defaults
        for name, value in values.items():
            if name in self.params:
                value = self.coerce(name, value)
                problem = self.params[name].problem(value)
                if problem:
                    problems.append(f'{name}: {problem}')
                else:
                    merged[name] = value
        if cross_field and not problems and self.check is not None:
            problems += self.check(merged)
        return problems

    def validated(self, values: Dict[str, object]) -> Dict[str, object]:
        """``values`` completed with defaults; :class:`ParameterError` naming every problem."""
        problems = self.problems(values)
        if problems:
            raise ParameterError('; '.join(problems))
        merged = self.defaults
        merged.update({name: self.coerce(name, value) for name, value in values.items()})
        return merged


def non_empty(items: Sequence[str]) -> List[str]:
    """String-array parameters default to ``['']`` (rclpy cannot type an empty list): drop the blanks."""
    return [item for item in items if item]
