"""Class mapping: dataset class names -> the model's classes, ``ignore`` regions, or dropped.

YAML form (a file of its own, or the ``class_mapping`` section of the training config)::

    classes: [car, pedestrian, cyclist]   # the model's classes; index = class id
    map:                                  # dataset class -> model class | ignore | drop
      Car: car
      Van: car
      Pedestrian: pedestrian
      Person_sitting: pedestrian
      Cyclist: cyclist
      Tram: ignore
      Misc: drop
    unmapped: error                       # dataset classes not listed: error | ignore | drop

``ignore`` turns the box into an ignore region (no loss either way); ``drop`` removes it (the area
then counts as background). ``DontCare`` / crowd regions are ignore regions whatever the mapping says.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

IGNORE = 'ignore'
DROP = 'drop'
UNMAPPED_POLICIES = ('error', IGNORE, DROP)


class ClassMappingError(ValueError):
    pass


@dataclass
class ClassMapping:
    classes: list[str]
    map: dict[str, str] = field(default_factory=dict)
    unmapped: str = 'error'

    def __post_init__(self):
        where = 'class mapping'
        if not self.classes:
            raise ClassMappingError(f'{where}: classes: must list at least one model class')
        if len(set(self.classes)) != len(self.classes):
            raise ClassMappingError(f'{where}: classes: duplicate names in {self.classes}')
        if self.unmapped not in UNMAPPED_POLICIES:
            raise ClassMappingError(
                f'{where}: unmapped: must be one of {UNMAPPED_POLICIES}, got {self.unmapped!r}')
        for source, target in self.map.items():
            if target not in self.classes and target not in (IGNORE, DROP):
                raise ClassMappingError(
                    f'{where}: map.{source}: target {target!r} is not a model class '
                    f'(classes: {self.classes}) nor ignore/drop')
        self._index = {name: i for i, name in enumerate(self.classes)}

    @classmethod
    def identity(cls, classes: list[str]) -> 'ClassMapping':
        return cls(classes=list(classes), map={c: c for c in classes}, unmapped='error')

    @classmethod
    def from_dict(cls, data: dict, where: str = 'class mapping') -> 'ClassMapping':
        if not isinstance(data, dict):
            raise ClassMappingError(f'{where}: expected a mapping with classes/map/unmapped')
        unknown = set(data) - {'classes', 'map', 'unmapped'}
        if unknown:
            raise ClassMappingError(f'{where}: unknown key(s) {sorted(unknown)}; '
                                    'allowed: classes, map, unmapped')
        classes = data.get('classes')
        if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
            raise ClassMappingError(f'{where}: classes: must be a list of class names')
        mapping = data.get('map') or {}
        if not isinstance(mapping, dict):
            raise ClassMappingError(f'{where}: map: must map dataset class -> model class')
        try:
            return cls(classes=classes, map={str(k): str(v) for k, v in mapping.items()},
                       unmapped=data.get('unmapped', 'error'))
        except ClassMappingError as exc:
            raise ClassMappingError(str(exc).replace('class mapping', where, 1)) from None

    @classmethod
    def from_yaml(cls, path: str | Path) -> 'ClassMapping':
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_bytes().decode('utf-8-sig'))
        except yaml.YAMLError as exc:
            raise ClassMappingError(f'{path}: not valid YAML: {" ".join(str(exc).split())}') from None
        except UnicodeDecodeError as exc:
            from aiat_training.data.issues import decode_error_message
            raise ClassMappingError(f'{path}: {decode_error_message(exc)}') from None
        except RecursionError:
            raise ClassMappingError(f'{path}: not valid YAML: nested too deeply') from None
        except OSError as exc:
            raise ClassMappingError(f'{path}: cannot read it: {exc.strerror or exc}') from None
        return cls.from_dict(data, where=str(path))

    def resolve(self, name: str) -> int | str | None:
        """Model class id, ``'ignore'``, ``'drop'``, or None when the class is unknown (unmapped: error)."""
        target = self.map.get(name)
        if target is None and name in self._index:
            target = name
        if target is None:
            return None if self.unmapped == 'error' else self.unmapped
        if target in (IGNORE, DROP):
            return target
        return self._index[target]
