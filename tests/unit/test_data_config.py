"""Training config: the example validates, errors name the key, the generated reference is current."""
from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from aiat_training.config import (DOCS_PATH, ConfigError, TrainingConfig, config_from_dict, load_config,
                                  render_docs)

ROOT = Path(__file__).resolve().parents[2]


def test_example_config_loads_and_resolves_paths():
    config = load_config(ROOT / 'config' / 'training_example.yaml')
    assert config.data.format == 'kitti' and config.input.width == 416
    assert config.data.path.is_absolute() and config.data.path.parts[-2:] == ('kitti', 'training')
    mapping = config.class_mapping.to_mapping()
    assert mapping.classes == ['car', 'pedestrian', 'cyclist'] and mapping.resolve('Van') == 0
    assert mapping.resolve('Tram') == 'ignore' and mapping.resolve('Misc') == 'drop'
    assert mapping.resolve('Bus') is None


def test_defaults_need_no_file():
    config = config_from_dict({})
    assert config.augmentation.flip.p == 0.5 and config.split.train == 0.6


@pytest.mark.parametrize('data, key, words', [
    ({'augmentation': {'rotation': {'degrees': 400}}}, 'augmentation.rotation.degrees', 'less than or equal to 180'),
    ({'augmentation': {'flip': {'p': -0.1}}}, 'augmentation.flip.p', 'greater than or equal to 0'),
    ({'augmentation': {'cutout': {'holes': 3}}}, 'augmentation.cutout.holes', 'unknown key'),
    ({'augmentaton': {}}, 'augmentaton', 'unknown key'),
    ({'data': {'format': 'kiti'}}, 'data.format', "'kitti'"),
    ({'data': {'format': 'coco', 'path': 'a.json'}}, 'data.images', 'required for format coco'),
    ({'split': {'train': 0.7}}, 'split.train', 'must be 1'),
    ({'class_mapping': {'classes': ['car'], 'map': {'Van': 'truck'}}}, 'class_mapping.map.Van', 'not one of'),
    ({'input': {'width': 400}}, 'input.width', 'multiple of 32'),
    ({'input': {'std': [1, 0, 1]}}, 'input.std', '> 0'),
    ({'input': {'mean': [1, 2]}}, 'input.mean', 'at least 3'),
])
def test_errors_name_the_key(data, key, words):
    with pytest.raises(ConfigError) as err:
        config_from_dict(data, 'my.yaml')
    text = str(err.value)
    assert text.startswith(f'my.yaml: {key}: '), text
    assert words in text, text


def test_bad_yaml_and_missing_file(tmp_path):
    bad = tmp_path / 'bad.yaml'
    bad.write_text('data: [unclosed\n')
    with pytest.raises(ConfigError, match='bad.yaml: not valid YAML'):
        load_config(bad)
    with pytest.raises(ConfigError, match='config file not found'):
        load_config(tmp_path / 'nope.yaml')


def _sections(model):
    for name, info in model.model_fields.items():
        yield name, info
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            yield from ((f'{name}.{k}', v) for k, v in _sections(info.annotation))


def test_every_key_is_documented_and_the_reference_is_current():
    undocumented = [k for k, info in _sections(TrainingConfig) if not (info.description or '').strip()]
    assert undocumented == []
    assert DOCS_PATH.read_text() == render_docs(), (
        'docs/training_config.md is stale: python -m aiat_training.config --write-docs docs/training_config.md')
    for key, _ in _sections(TrainingConfig):
        assert f'`{key}`' in DOCS_PATH.read_text() or key in [n for n in TrainingConfig.model_fields]
