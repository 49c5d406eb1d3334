"""The fit config: composition with the data sections, validation messages, documentation."""
from pathlib import Path

import pytest

from aiat_training.config import ConfigError
from aiat_training.train.config import DOCS_PATH, fit_config_from_dict, load_fit_config, render_docs

REPO = Path(__file__).resolve().parents[2]


def test_defaults_and_data_sections_compose():
    cfg = fit_config_from_dict({'input': {'height': 320, 'width': 320}, 'model': {'strategy': 'head_only'}})
    assert cfg.model.strategy == 'head_only' and cfg.input.height == 320
    assert cfg.optimizer.type == 'adamw' and cfg.train.ema and cfg.data.format == 'kitti'


@pytest.mark.parametrize('data, message', [
    ({'model': {'strategyy': 'x'}}, 'cfg.yaml: model.strategyy: unknown key'),
    ({'model': {'strategy': 'all'}}, 'cfg.yaml: model.strategy'),
    ({'optimizer': {'lr': 0}}, 'cfg.yaml: optimizer.lr'),
    ({'train': {'amp': 'fp8'}}, 'cfg.yaml: train.amp'),
    ({'model': {'reg_max': 7}}, 'cfg.yaml: model.reg_max: the pretrained COCO head has reg_max 10'),
    ({'data': {'format': 'nope'}}, 'cfg.yaml: data.format'),
])
def test_errors_name_file_and_key(data, message):
    with pytest.raises(ConfigError, match=message.replace('.', r'\.')):
        fit_config_from_dict(data, 'cfg.yaml')


def test_scratch_may_change_reg_max_and_paths_resolve(tmp_path):
    (tmp_path / 'c.yaml').write_text('model: {strategy: scratch, reg_max: 7}\n'
                                     'data: {path: kitti/training}\n')
    cfg = load_fit_config(tmp_path / 'c.yaml')
    assert cfg.model.reg_max == 7 and cfg.data.path == tmp_path / 'kitti/training'


def test_example_config_is_valid():
    load_fit_config(REPO / 'config' / 'fit_example.yaml')


def test_reference_docs_are_current():
    assert DOCS_PATH.read_text() == render_docs(), \
        'regenerate: python -m aiat_training.train.config --write-docs docs/training_fit_config.md'
