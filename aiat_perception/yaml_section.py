"""Typed reading of the vehicle's YAML files (bundle.yaml, scenarios, launch graphs): the one helper.

:func:`read_yaml` parses a file safely (size cap, safe loader, UTF-8, nesting) and
:class:`YamlSection` reads one mapping of it with typed getters. Every problem raises the reader's own
error class with ``<file>: <dotted key>: <problem>``. Hand-written: the vehicle has no pydantic on
ROS 2 Humble, and these few checks do not justify a schema library.
"""
from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Any, Collection, Iterable, NoReturn, Optional, Tuple, Type, Union

import yaml

MAX_EXACT = 2 ** 53                  # integers beyond this are not exactly a float
REQUIRED: Any = ...                  # default of a key that must be present


def read_yaml(path: Union[str, Path], error: Type[Exception] = ValueError, max_bytes: int = 4 << 20,
              what: str = 'YAML file') -> Any:
    """The parsed content of ``path``; ``error`` naming the file when it cannot be read, is larger
    than ``max_bytes``, is not UTF-8 or not valid YAML, or is nested too deeply to parse."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise error(f'{path}: {size} bytes, more than a {what} needs ({max_bytes} at most)')
        text = path.read_text(encoding='utf-8')
    except OSError as exc:
        raise error(f'{path}: cannot read {what}: {exc}') from None
    except UnicodeDecodeError as exc:
        raise error(f'{path}: not UTF-8 text ({exc.reason} at byte {exc.start})') from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f'{path}: not valid YAML ({exc})') from None
    except RecursionError:
        raise error(f'{path}: nested too deeply to parse') from None


def finite(value: Any) -> bool:
    """A number (not a bool) that is finite; an int only up to 2**53 (10**400 would overflow)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return abs(value) <= MAX_EXACT if isinstance(value, int) else math.isfinite(value)


class YamlSection:
    """Typed access to one mapping of a YAML file. ``known`` lists the keys it may hold (others are
    refused at once, with the closest known key as a hint); :meth:`finish` refuses the keys no
    getter read. A missing key takes the getter's default, or is an error when there is none."""

    def __init__(self, data: Any, source: Union[str, Path], path: str = '',
                 error: Type[Exception] = ValueError, known: Optional[Collection[str]] = None):
        if not isinstance(data, dict):
            raise error(f'{source}: {path or "top level"} must be a mapping, got {type(data).__name__}')
        self.data, self.source, self.path, self.error = data, source, path, error
        self.used: set = set()
        if known is not None:
            for key in data:
                if key not in known:
                    self.unknown(key, known)

    def where(self, key: Any) -> str:
        return f'{self.path}.{key}' if self.path else str(key)

    def fail(self, key: Any, problem: str) -> NoReturn:
        raise self.error(f'{self.source}: {self.where(key)}: {problem}')

    def unknown(self, key: Any, known: Iterable[str]) -> NoReturn:
        known = sorted(str(k) for k in known)
        close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else f' (valid keys: {", ".join(known)})'
        raise self.error(f'{self.source}: unknown key {self.where(key)!r}{hint}')

    def has(self, key: str) -> bool:
        return key in self.data

    def get(self, key: str, default: Any = REQUIRED) -> Any:
        self.used.add(key)
        if key not in self.data:
            if default is REQUIRED:
                raise self.error(f'{self.source}: missing key {self.where(key)!r}')
            return default
        return self.data[key]

    def section(self, key: str, default: Any = REQUIRED,
                known: Optional[Collection[str]] = None) -> 'YamlSection':
        """The mapping under ``key``; with ``default=None`` a missing or empty one reads as {}."""
        value = self.get(key, default)
        return YamlSection({} if value is None and default is None else value, self.source,
                           self.where(key), self.error, known)

    def string(self, key: str, default: Any = REQUIRED, choices: Collection[str] = ()) -> Optional[str]:
        value = self.get(key, default)
        if value is None and default is None:
            return None
        if not isinstance(value, str) or not value:
            self.fail(key, f'expected a non-empty string, got {value!r:.60}')
        if choices and value not in choices:
            self.fail(key, f'{value!r} is not one of {sorted(choices)}')
        return value

    def boolean(self, key: str, default: Any = REQUIRED) -> bool:
        value = self.get(key, default)
        if not isinstance(value, bool):
            self.fail(key, f'expected true or false, got {value!r:.60}')
        return value

    def number(self, key: str, default: Any = REQUIRED, low: Optional[float] = None,
               high: Optional[float] = None, integer: bool = False,
               strict_low: bool = False) -> Union[None, int, float]:
        """A finite number in [low, high] (``strict_low``: above low; ``integer``: a whole number,
        returned as int); None stays None when the default is None."""
        value = self.get(key, default)
        if value is None and default is None:
            return None
        low = -math.inf if low is None else low
        high = math.inf if high is None else high
        if (not finite(value) or value < low or value > high or (strict_low and value == low)
                or (integer and int(value) != value)):
            self.fail(key, f'expected a {"whole " if integer else ""}number in '
                           f'{"(" if strict_low else "["}{low:g}, {high:g}] (finite), got {value!r:.60}')
        return int(value) if integer else float(value)

    def integer(self, key: str, default: Any = REQUIRED, minimum: int = 0,
                maximum: int = MAX_EXACT) -> Optional[int]:
        value = self.get(key, default)
        if value is None and default is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            self.fail(key, f'expected an integer >= {minimum} and <= {maximum}, got {value!r:.60}')
        return value

    def numbers(self, key: str, length: int, low: float = -math.inf, high: float = math.inf,
                default: Any = REQUIRED) -> Optional[Tuple[float, ...]]:
        value = self.get(key, default)
        if value is None and default is None:
            return None
        if not isinstance(value, (list, tuple)) or len(value) != length or not all(map(finite, value)):
            self.fail(key, f'expected a list of {length} numbers (finite), got {value!r:.80}')
        for v in value:
            if not low <= v <= high:
                self.fail(key, f'{v!r} is not a number in [{low:g}, {high:g}]')
        return tuple(float(v) for v in value)

    def finish(self) -> None:
        """Refuse the keys no getter asked for (a typo would otherwise be silently ignored)."""
        for key in sorted(set(self.data) - self.used, key=repr):     # YAML keys need not be strings
            self.unknown(key, self.used)
