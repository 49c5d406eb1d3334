"""The search space of ``aiat-train tune``: a YAML file over the fit config's keys, checked
against the fit schema before any trial runs.

    sampler: tpe                 # tpe (default) | random
    pruner: median               # median (default) | hyperband | none
    params:
      optimizer.lr: {low: 1.0e-4, high: 1.0e-2, log: true}     # float: the key's type decides
      train.batch_size: {choices: [4, 8, 16]}                   # categorical
      schedule.epochs: {low: 2, high: 8}                        # int (step: optional)
      model.strategy: {choices: [head_only, early_layers, finetune_all]}
      train.ema: {choices: [true, false]}
      input.height: {choices: [256, 320]}
      input.width: {same_as: input.height}                      # follows another parameter

Keys are the dotted paths of ``docs/training_fit_config.md`` (and ``docs/training_config.md`` for
the data sections, e.g. ``augmentation.flip.p``). A key the fit config does not have is rejected
with the closest key suggested; a range with low > high, a log range with low <= 0, a bound or choice
the key's type or constraints refuse (e.g. a float for an int key, ``optimizer.lr: 0``) are rejected
naming the key.
"""
from __future__ import annotations

import difflib
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

from aiat_training.config import ConfigError, Section, read_config_file

SAMPLERS = ('tpe', 'random')
PRUNERS = ('median', 'hyperband', 'none')


@dataclass
class Param:
    key: str                        # dotted fit-config key
    kind: str                       # 'float' | 'int' | 'categorical' | 'same_as'
    low: Any = None
    high: Any = None
    log: bool = False
    step: Any = None
    choices: tuple = ()
    same_as: Optional[str] = None

    def suggest(self, trial) -> Any:
        """Draw the value from an Optuna trial (``same_as`` parameters are filled in by the space)."""
        if self.kind == 'float':
            return trial.suggest_float(self.key, self.low, self.high, log=self.log, step=self.step)
        if self.kind == 'int':
            return trial.suggest_int(self.key, self.low, self.high, log=self.log, step=self.step or 1)
        return trial.suggest_categorical(self.key, list(self.choices))


@dataclass
class SearchSpace:
    params: list[Param] = field(default_factory=list)
    sampler: str = 'tpe'
    pruner: str = 'median'
    source: str = '<search>'

    def suggest(self, trial) -> dict[str, Any]:
        """{dotted key: value} for one trial."""
        values = {p.key: p.suggest(trial) for p in self.params if p.kind != 'same_as'}
        for p in self.params:
            if p.kind == 'same_as':
                values[p.key] = values[p.same_as]
        return values


# ------------------------------------------------------------------------------------------------
# the fit schema's keys

def _section_type(annotation):
    return annotation if isinstance(annotation, type) and issubclass(annotation, Section) else None


def schema_fields(schema=None) -> dict[str, Any]:
    """{dotted key: pydantic FieldInfo} of every leaf key of the fit config."""
    if schema is None:
        from aiat_training.train.config import FitConfig
        schema = FitConfig
    out = {}

    def walk(model, prefix):
        for name, info in model.model_fields.items():
            sub = _section_type(info.annotation)
            if sub is not None:
                walk(sub, f'{prefix}{name}.')
            else:
                out[f'{prefix}{name}'] = info
    walk(schema, '')
    return out


def _base_type(annotation) -> str:
    """'int' | 'float' | 'bool' | 'literal' | 'str' | 'other' for a field annotation."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return 'literal'
    if origin is typing.Union or type(annotation).__name__ == 'UnionType':
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _base_type(inner[0]) if len(inner) == 1 else 'other'
    if annotation is bool:
        return 'bool'
    if annotation is int:
        return 'int'
    if annotation is float:
        return 'float'
    if annotation is str:
        return 'str'
    return 'other'


def nested(key: str, value: Any) -> dict:
    """``'a.b.c', v`` -> ``{'a': {'b': {'c': v}}}``."""
    out: Any = value
    for part in reversed(key.split('.')):
        out = {part: out}
    return out


def set_key(data: dict, key: str, value: Any) -> None:
    """Set a dotted key in a nested dict (creating sections)."""
    parts = key.split('.')
    node = data
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value


def _check_value(key: str, value: Any, where: str) -> None:
    """The key's own type and constraints accept ``value`` (every other key at its default)."""
    from aiat_training.train.config import FitConfig
    from pydantic import ValidationError

    try:
        FitConfig.model_validate(nested(key, value))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = '.'.join(str(p) for p in err['loc'])
            if loc == key or loc.startswith(key + '.'):
                problems.append(err['msg'])
        if problems:    # a model validator over a whole section (e.g. split sums) is not the key's fault
            raise ConfigError(f'{where}: {value!r} is not a valid {key}: {"; ".join(problems)}') from None


# ------------------------------------------------------------------------------------------------
# parsing

def _number(spec: dict, name: str, where: str):
    value = spec[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f'{where}: {name}: expected a number, got {value!r}')
    if not math.isfinite(value):
        raise ConfigError(f'{where}: {name}: must be finite, got {value!r}')
    return value


def _param(key: str, spec: Any, fields: dict, where: str) -> Param:
    if key not in fields:
        close = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.5)
        hint = f' (did you mean {close[0]}?)' if close else ''
        raise ConfigError(f'{where}: unknown key: the fit config has no {key}{hint}')
    if not isinstance(spec, dict):
        raise ConfigError(f'{where}: expected a mapping ({{low, high[, log, step]}}, {{choices}} or '
                          f'{{same_as}}), got {spec!r}')
    allowed = {'low', 'high', 'log', 'step', 'choices', 'same_as'}
    extra = sorted(set(spec) - allowed)
    if extra:
        raise ConfigError(f'{where}: unknown option(s) {extra}; allowed: {sorted(allowed)}')
    base = _base_type(fields[key].annotation)
    if 'same_as' in spec:
        if set(spec) != {'same_as'}:
            raise ConfigError(f'{where}: same_as takes no other options')
        return Param(key, 'same_as', same_as=str(spec['same_as']))
    if 'choices' in spec:
        if {'low', 'high', 'log', 'step'} & set(spec):
            raise ConfigError(f'{where}: give either choices or low/high, not both')
        choices = spec['choices']
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f'{where}: choices: expected a non-empty list, got {choices!r}')
        for value in choices:
            if not (value is None or isinstance(value, (bool, int, float, str))):
                raise ConfigError(f'{where}: choices: {value!r} is not a number, string, bool or null')
            if base == 'int' and isinstance(value, float) and not value.is_integer():
                raise ConfigError(f'{where}: type mismatch: {key} is an int, got {value!r}')
            if base in ('int', 'float') and isinstance(value, (bool, str)):
                raise ConfigError(f'{where}: type mismatch: {key} is a number, got {value!r}')
            _check_value(key, value, where)
        if len(set(map(repr, choices))) != len(choices):
            raise ConfigError(f'{where}: choices: repeated values in {choices}')
        return Param(key, 'categorical', choices=tuple(choices))
    missing = [n for n in ('low', 'high') if n not in spec]
    if missing:
        raise ConfigError(f'{where}: missing {missing[0]} (a range needs low and high; or give choices)')
    if base not in ('int', 'float'):
        raise ConfigError(f'{where}: type mismatch: {key} is not a number ({base}); give choices instead '
                          'of a low/high range')
    low, high = _number(spec, 'low', where), _number(spec, 'high', where)
    log = spec.get('log', False)
    if not isinstance(log, bool):
        raise ConfigError(f'{where}: log: expected true or false, got {log!r}')
    step = spec.get('step')
    if step is not None:
        step = _number(spec, 'step', where)
        if step <= 0:
            raise ConfigError(f'{where}: step: must be > 0, got {step!r}')
        if log:
            raise ConfigError(f'{where}: step and log cannot be combined (Optuna)')
    if low > high:
        raise ConfigError(f'{where}: impossible range: low {low!r} > high {high!r}')
    if log and low <= 0:
        raise ConfigError(f'{where}: impossible range: a log range needs low > 0, got {low!r}')
    if base == 'int':
        for name, value in (('low', low), ('high', high), ('step', step)):
            if value is not None and isinstance(value, float) and not value.is_integer():
                raise ConfigError(f'{where}: type mismatch: {key} is an int, {name} is {value!r}')
        low, high = int(low), int(high)
        step = int(step) if step is not None else None
    else:
        low, high = float(low), float(high)
    _check_value(key, low, where)
    _check_value(key, high, where)
    return Param(key, base, low=low, high=high, log=log, step=step)


def parse_search_space(data: Any, source: str = '<search>') -> SearchSpace:
    if not isinstance(data, dict):
        raise ConfigError(f'{source}: expected a mapping with params (and optionally sampler, pruner)')
    extra = sorted(set(data) - {'params', 'sampler', 'pruner'})
    if extra:
        raise ConfigError(f'{source}: {extra[0]}: unknown key (allowed: params, sampler, pruner)')
    sampler = data.get('sampler', 'tpe')
    if sampler not in SAMPLERS:
        raise ConfigError(f'{source}: sampler: {sampler!r} is not one of {list(SAMPLERS)}')
    pruner = data.get('pruner', 'median')
    if pruner not in PRUNERS:
        raise ConfigError(f'{source}: pruner: {pruner!r} is not one of {list(PRUNERS)}')
    params = data.get('params')
    if not isinstance(params, dict) or not params:
        raise ConfigError(f'{source}: params: expected a non-empty mapping of fit-config keys')
    fields = schema_fields()
    out = [_param(str(key), spec, fields, f'{source}: params.{key}') for key, spec in params.items()]
    keys = {p.key for p in out}
    for p in out:
        if p.kind == 'same_as':
            target = next((q for q in out if q.key == p.same_as), None)
            if target is None or target.kind == 'same_as':
                raise ConfigError(f'{source}: params.{p.key}: same_as: {p.same_as!r} is not a sampled '
                                  f'parameter of this space ({sorted(keys - {p.key})})')
            values = list(target.choices) if target.kind == 'categorical' else [target.low, target.high]
            for value in values:
                _check_value(p.key, value, f'{source}: params.{p.key}')
    return SearchSpace(out, sampler, pruner, source)


def load_search_space(path: str | Path) -> SearchSpace:
    path = Path(path)
    return parse_search_space(read_config_file(path), str(path))
