"""The training configuration (YAML): sections of validated, documented keys.

Every section is a pydantic model; every key carries a ``description`` (the documentation) and its
constraints. Unknown keys are errors. :func:`load_config` reports problems as
``<file>: <section.key.path>: <problem>``.

Adding a section (e.g. ``model``, ``optimizer``, ``schedule`` for fine-tuning): write a
``class ModelSection(Section)`` with ``Field(..., description=...)`` on every key, add
``model: ModelSection = Field(default_factory=ModelSection, description='...')`` to
:class:`TrainingConfig`, then regenerate the reference with
``python -m aiat_training.config --write-docs docs/training_config.md`` (a test checks it is current).
"""
from __future__ import annotations

import argparse
import sys
import types
import typing
from pathlib import Path
from typing import Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from aiat_perception.inference.bundle import InputSpec
from aiat_perception.inference.preprocess import NANODET_BGR_MEAN, NANODET_BGR_STD

DOCS_PATH = Path(__file__).resolve().parent.parent / 'docs' / 'training_config.md'


class ConfigError(ValueError):
    """An invalid configuration; the message names the file and the key."""


class Section(BaseModel):
    model_config = ConfigDict(extra='forbid', validate_assignment=True)


# --- data ------------------------------------------------------------------------------------------
class DataSection(Section):
    format: Literal['kitti', 'bdd100k', 'cityscapes', 'coco', 'yolo', 'voc'] = Field(
        'kitti', description='Dataset format.')
    path: Optional[Path] = Field(
        None, description='Dataset location: KITTI split directory (holds image_2/, label_2/, calib/), '
        'BDD100K label JSON, Cityscapes root (holds gtFine/, leftImg8bit/), COCO annotation JSON, '
        'YOLO data YAML, or VOC root (holds Annotations/, JPEGImages/). Relative to the config file.')
    images: Optional[Path] = Field(
        None, description='Image directory, needed for BDD100K and COCO. Relative to the config file.')
    subset: Optional[str] = Field(
        None, description='Part of the dataset to read: Cityscapes split (default train), YOLO split '
        'key (default train), VOC ImageSets/Main list name (default: every annotation).')
    on_error: Literal['raise', 'skip'] = Field(
        'raise', description='Broken input (missing image, box outside the image, unknown class, '
        'malformed line): raise = stop at the first one; skip = leave the item out, count and report it.')
    sequence_regex: Optional[str] = Field(
        None, description='Regex applied to image file stems; its first group is the sequence id '
        '(for grouping splits) of samples the format gives none.')

    @model_validator(mode='after')
    def _images_where_needed(self):
        if self.format in ('bdd100k', 'coco') and self.path is not None and self.images is None:
            raise ValueError(f'images: required for format {self.format}')
        return self


class ClassMappingSection(Section):
    classes: Optional[list[str]] = Field(
        None, description="The model's classes (index = class id). Unset: keep the dataset's own classes.")
    map: dict[str, str] = Field(
        default_factory=dict, description='Dataset class -> model class, `ignore` (becomes an ignore '
        'region) or `drop` (removed). A dataset class equal to a model class maps to it implicitly.')
    unmapped: Literal['error', 'ignore', 'drop'] = Field(
        'error', description='Dataset classes that are not mapped: error (reported as unknown_class), '
        'ignore or drop.')
    file: Optional[Path] = Field(
        None, description='Read classes/map/unmapped from this YAML file instead. Relative to the config file.')

    @model_validator(mode='after')
    def _consistent(self):
        if self.file is not None and (self.classes or self.map):
            raise ValueError('file: give either file or classes/map, not both')
        if self.map and not self.classes:
            raise ValueError('classes: required when map is given')
        for source, target in self.map.items():
            if target not in (self.classes or []) and target not in ('ignore', 'drop'):
                raise ValueError(f'map.{source}: {target!r} is not one of classes {self.classes} '
                                 'nor ignore/drop')
        return self

    def to_mapping(self):
        """The :class:`~aiat_training.data.classmap.ClassMapping`, or None to keep dataset classes."""
        from aiat_training.data.classmap import ClassMapping
        if self.file is not None:
            return ClassMapping.from_yaml(self.file)
        if not self.classes:
            return None
        return ClassMapping(classes=list(self.classes), map=dict(self.map), unmapped=self.unmapped)


class SplitSection(Section):
    train: float = Field(0.6, gt=0, lt=1, description='Fraction of images (or sequences) for training.')
    val: float = Field(0.2, ge=0, lt=1, description='Fraction for validation.')
    test: float = Field(0.2, ge=0, lt=1, description='Fraction for the held-out test set.')
    seed: int = Field(0, description='Random seed: the same seed and dataset give the same split.')
    stratify: bool = Field(True, description='Balance class presence (which classes an image holds) '
                           'across the splits.')
    group_by_sequence: bool = Field(False, description='Keep all frames of a sequence in one split.')
    lists_dir: Optional[Path] = Field(
        None, description='Directory of train.txt/val.txt/test.txt file lists (written by '
        '`aiat-data split`, read for training). Relative to the config file.')

    @model_validator(mode='after')
    def _sum_to_one(self):
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f'train: train + val + test must be 1, got {total:g}')
        return self


# --- augmentation ----------------------------------------------------------------------------------

class FlipAug(Section):
    p: float = Field(0.5, ge=0, le=1, description='Probability of a horizontal flip.')


class RotationAug(Section):
    p: float = Field(0.0, ge=0, le=1, description='Probability of a rotation.')
    degrees: float = Field(5.0, ge=0, le=180, description='Maximum angle; drawn from [-degrees, degrees]. '
                           'Boxes become the box around the rotated box (never cut the object).')


class ScaleAug(Section):
    p: float = Field(0.3, ge=0, le=1, description='Probability of a zoom in/out about the centre.')
    range: float = Field(0.2, ge=0, lt=1, description='Scale drawn from [1 - range, 1 + range].')


class CropAug(Section):
    p: float = Field(0.3, ge=0, le=1, description='Probability of a random crop.')
    max_fraction: float = Field(0.2, ge=0, lt=0.5, description='Up to this fraction of the width/height '
                                'is cut from each border (the crop is then resized to the input size).')


class TranslationAug(Section):
    p: float = Field(0.3, ge=0, le=1, description='Probability of a shift.')
    fraction: float = Field(0.1, ge=0, le=0.5, description='Shift drawn from [-fraction, fraction] of '
                            'the width/height.')


class NoiseAug(Section):
    p: float = Field(0.2, ge=0, le=1, description='Probability of additive Gaussian noise.')
    std: float = Field(0.05, ge=0, le=1, description='Maximum noise standard deviation as a fraction '
                       'of the 0..255 range; drawn from [0, std].')


class ColorJitterAug(Section):
    p: float = Field(0.5, ge=0, le=1, description='Probability of colour jitter.')
    brightness: float = Field(0.2, ge=0, le=1, description='Brightness factor drawn from [1-b, 1+b].')
    contrast: float = Field(0.2, ge=0, le=1, description='Contrast factor drawn from [1-c, 1+c].')
    saturation: float = Field(0.2, ge=0, le=1, description='Saturation factor drawn from [1-s, 1+s].')
    hue: float = Field(0.02, ge=0, le=0.5, description='Hue shift drawn from [-h, h] (fraction of the hue circle).')


class CutoutAug(Section):
    p: float = Field(0.2, ge=0, le=1, description='Probability of cut-out (filled rectangles).')
    max_holes: int = Field(4, ge=1, le=64, description='Number of holes drawn from [1, max_holes].')
    max_size: float = Field(0.1, gt=0, le=0.5, description='Hole side drawn from [max_size/4, max_size] '
                            'of the image side. Boxes hidden below min_visibility are dropped.')


class AugmentationSection(Section):
    enabled: bool = Field(True, description='Master switch; false = only resize and normalise.')
    min_visibility: float = Field(0.3, ge=0, le=1, description='A box keeping less than this fraction of '
                                  'its area after cropping/shifting/cut-out is dropped.')
    min_size: float = Field(2.0, ge=0, description='A box narrower or lower than this (network-input '
                            'pixels) after augmentation is dropped.')
    flip: FlipAug = Field(default_factory=FlipAug, description='Horizontal flip.')
    rotation: RotationAug = Field(default_factory=RotationAug, description='Rotation.')
    scale: ScaleAug = Field(default_factory=ScaleAug, description='Scale (zoom).')
    crop: CropAug = Field(default_factory=CropAug, description='Random crop.')
    translation: TranslationAug = Field(default_factory=TranslationAug, description='Translation.')
    gaussian_noise: NoiseAug = Field(default_factory=NoiseAug, description='Gaussian noise.')
    color_jitter: ColorJitterAug = Field(default_factory=ColorJitterAug, description='Colour jitter.')
    cutout: CutoutAug = Field(default_factory=CutoutAug, description='Cut-out.')


# --- network input -----------------------------------------------------------------------------------
class InputSection(Section):
    height: int = Field(416, ge=32, le=4096, multiple_of=32, description='Network input height (pixels).')
    width: int = Field(416, ge=32, le=4096, multiple_of=32, description='Network input width (pixels).')
    color_order: Literal['BGR', 'RGB'] = Field('BGR', description='Channel order the model expects.')
    resize: Literal['stretch'] = Field('stretch', description='How images reach the input size '
                                       '(bundle `input.resize`); only stretch is implemented.')
    mean: list[float] = Field(list(NANODET_BGR_MEAN), min_length=3, max_length=3,
                              description='Per-channel mean subtracted (in color_order).')
    std: list[float] = Field(list(NANODET_BGR_STD), min_length=3, max_length=3,
                             description='Per-channel divisor (in color_order).')

    @model_validator(mode='after')
    def _positive_std(self):
        if any(s <= 0 for s in self.std):
            raise ValueError(f'std: every value must be > 0, got {self.std}')
        return self

    def spec(self) -> InputSpec:
        """This contract as the bundle's InputSpec: what the training loader, validation and export
        use, so training sees exactly what the vehicle's Preprocessor gives the exported model."""
        return InputSpec('images', self.height, self.width, self.color_order, self.resize,
                         tuple(self.mean), tuple(self.std))


# --- the whole file ----------------------------------------------------------------------------------
class TrainingConfig(Section):
    data: DataSection = Field(default_factory=DataSection, description='Where the dataset is and how to read it.')
    class_mapping: ClassMappingSection = Field(default_factory=ClassMappingSection,
                                               description='Dataset classes onto model classes.')
    split: SplitSection = Field(default_factory=SplitSection, description='Train/val/test split.')
    augmentation: AugmentationSection = Field(default_factory=AugmentationSection,
                                              description='Training-time augmentation (albumentations).')
    input: InputSection = Field(default_factory=InputSection,
                                description='Network input contract; must match the model bundle `input`.')


PATH_KEYS = (('data', 'path'), ('data', 'images'), ('class_mapping', 'file'), ('split', 'lists_dir'))


def _format_errors(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        loc = '.'.join(str(p) for p in err['loc']) or '(top level)'
        msg = err['msg']
        if msg.startswith('Value error, '):
            msg = msg[len('Value error, '):]
            key, sep, rest = msg.partition(': ')
            if sep and ' ' not in key:     # validators name their key first
                loc = f'{loc}.{key}' if loc != '(top level)' else key
                msg = rest
        if err['type'] == 'extra_forbidden':
            msg = 'unknown key'
        elif 'input' in err and err['type'] not in ('missing',) and not isinstance(err['input'], dict):
            msg += f' (got {err["input"]!r})'
        lines.append(f'{source}: {loc}: {msg}')
    return '\n'.join(lines)


def config_from_dict(data: dict | None, source: str = '<config>', base_dir: Path | None = None,
                     schema=None) -> TrainingConfig:
    """Validate ``data`` against ``schema`` (default :class:`TrainingConfig`; the fit config extends it)
    and make its paths relative to ``base_dir``."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f'{source}: expected a mapping of sections at the top level')
    try:
        config = (schema or TrainingConfig).model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, source)) from None
    if base_dir is not None:
        for section, key in PATH_KEYS:
            part = getattr(config, section)
            value = getattr(part, key)
            if value is not None and not value.is_absolute():
                setattr(part, key, (base_dir / value))
    return config


def read_config_file(path: Path):
    try:
        return yaml.safe_load(path.read_bytes().decode('utf-8-sig'))
    except FileNotFoundError:
        raise ConfigError(f'{path}: config file not found') from None
    except yaml.YAMLError as exc:
        raise ConfigError(f'{path}: not valid YAML: {" ".join(str(exc).split())}') from None
    except UnicodeDecodeError as exc:
        from aiat_training.data.issues import decode_error_message
        raise ConfigError(f'{path}: {decode_error_message(exc)}') from None
    except RecursionError:
        raise ConfigError(f'{path}: not valid YAML: nested too deeply') from None
    except OSError as exc:
        raise ConfigError(f'{path}: cannot read it: {exc.strerror or exc}') from None


def load_config(path: str | Path) -> TrainingConfig:
    path = Path(path)
    return config_from_dict(read_config_file(path), str(path), path.parent)


# --- reference documentation ---------------------------------------------------------------------------
def _type_name(annotation) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Literal:
        return ' \\| '.join(f'`{a}`' for a in args)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return ' \\| '.join(_type_name(a) for a in inner) + ' (optional)'
    if origin in (list, dict):
        return f'{origin.__name__}[{", ".join(_type_name(a) for a in args)}]'
    return getattr(annotation, '__name__', str(annotation)).replace('PosixPath', 'path')


def _constraints(info) -> str:
    parts = []
    for meta in info.metadata:
        for attr, sym in (('ge', '>='), ('gt', '>'), ('le', '<='), ('lt', '<'),
                          ('multiple_of', 'multiple of'), ('min_length', 'min length'),
                          ('max_length', 'max length')):
            value = getattr(meta, attr, None)
            if value is not None:
                parts.append(f'{sym} {value}')
    return ', '.join(parts)


def _rows(model: type[BaseModel], prefix: str, out: list[str]) -> None:
    nested = []
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            nested.append((f'{prefix}{name}', annotation, info))
            continue
        default = info.default_factory() if info.default_factory else info.default
        default_text = '—' if default is None else f'`{default}`'
        out.append(f'| `{prefix}{name}` | {_type_name(annotation)} | {default_text} | '
                   f'{_constraints(info)} | {info.description} |')
    for key, sub, info in nested:
        out.append(f'| `{key}` | section | | | {info.description} |')
        _rows(sub, f'{key}.', out)


def render_sections(model, header: list, skip=()) -> str:
    """Markdown key reference of the sections of ``model`` (a config class), after ``header``."""
    lines = list(header)
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        lines += [f'## `{name}`', '', info.description or '', '',
                  '| key | type | default | constraint | meaning |', '|---|---|---|---|---|']
        _rows(info.annotation, f'{name}.', lines)
        lines.append('')
    return '\n'.join(lines)


def render_docs() -> str:
    return render_sections(TrainingConfig, [
        '# Training configuration reference', '',
        '<!-- generated by `python -m aiat_training.config --write-docs docs/training_config.md`; '
        'do not edit by hand -->', '',
        'A YAML file of sections; every key is optional (defaults below) and unknown keys are '
        'errors. Relative paths are relative to the config file. Example: '
        '`config/training_example.yaml`. Validate with `python -m aiat_training.config --check FILE`.', ''])


def config_tool(argv, prog: str, render, load) -> int:
    """``--write-docs FILE`` / ``--check FILE`` for a config schema (``render``, ``load``)."""
    parser = argparse.ArgumentParser(prog=prog, description='write the key reference or validate a file')
    parser.add_argument('--write-docs', type=Path, help='write the Markdown key reference here')
    parser.add_argument('--check', type=Path, help='validate this config file')
    args = parser.parse_args(argv)
    if args.write_docs:
        args.write_docs.write_text(render())
        print(f'wrote {args.write_docs}')
    if args.check:
        try:
            load(args.check)
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            return 1
        print(f'{args.check}: ok')
    return 0


def main(argv=None) -> int:
    return config_tool(argv, 'python -m aiat_training.config', render_docs, load_config)


if __name__ == '__main__':
    sys.exit(main())
