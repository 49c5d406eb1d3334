"""Checkpoints are loaded weights-only: a crafted .pt whose unpickling would run a command is refused
by every entry point (export, eval --checkpoint, fit --resume, model.pretrained), with a one-line
message naming the file, and the command never runs (issue 10, defect 3)."""
import os
import pickle
import random

import numpy as np
import pytest
import torch
import yaml

from aiat_training.cli.train import main
from aiat_training.data.synthetic import write_synthetic_kitti
from aiat_training.train.checkpoint import (CheckpointError, CheckpointRefused, load_checkpoint, rng_state, save_checkpoint,
                                            set_rng_state)


class _RunsCommand:
    """Unpickling this calls os.system: what a hostile checkpoint would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


def _hostile(path, marker, how='zip'):
    content = {'version': 2, 'model': {'w': torch.zeros(2)}, 'model_meta': {'class_names': ['car']},
               'payload': _RunsCommand(marker)}
    path.parent.mkdir(parents=True, exist_ok=True)
    if how == 'zip':
        torch.save(content, path)
    elif how == 'legacy':
        torch.save(content, path, _use_new_zipfile_serialization=False)
    else:
        path.write_bytes(pickle.dumps(content))
    return path


def _fit_config(tmp_path, data_root, **model):
    cfg = {'data': {'format': 'kitti', 'path': str(data_root)},
           'class_mapping': {'classes': ['Car', 'Pedestrian'], 'unmapped': 'drop'},
           'split': {'train': 0.75, 'val': 0.25, 'test': 0.0, 'stratify': False},
           'input': {'height': 64, 'width': 64},
           'model': {'strategy': 'scratch', **model},
           'schedule': {'epochs': 1, 'warmup_iters': 1},
           'train': {'batch_size': 2, 'num_workers': 0, 'log_images': 0},
           'output': {'dir': str(tmp_path / 'run')}}
    path = tmp_path / f'fit-{len(model)}.yaml'
    path.write_text(yaml.safe_dump(cfg))
    return path


def _refused(capsys, code, path, marker):
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    assert str(path) in err and 'refused' in err, err
    assert not marker.exists(), 'the checkpoint ran its command'


@pytest.mark.parametrize('how', ['zip', 'legacy', 'pickle'])
def test_load_checkpoint_refuses_code_and_runs_nothing(tmp_path, how):
    marker = tmp_path / 'pwned'
    path = _hostile(tmp_path / 'evil.pt', marker, how)
    # torch.save formats: refused by the global they ask for; a bare protocol-4 pickle already
    # fails on an opcode the weights-only unpickler does not take (reported as unreadable)
    expected, match = ((CheckpointRefused, r'evil.pt: refused.*posix.system') if how != 'pickle'
                       else (CheckpointError, 'evil.pt: not a readable checkpoint'))
    with pytest.raises(expected, match=match):
        load_checkpoint(path)
    assert not marker.exists()


def test_every_entry_point_refuses_a_hostile_checkpoint(tmp_path, capsys):
    marker = tmp_path / 'pwned'
    evil = _hostile(tmp_path / 'evil.pt', marker)
    data = write_synthetic_kitti(tmp_path / 'data', num_images=8, width=80, height=64)
    cfg = _fit_config(tmp_path, data)

    _refused(capsys, main(['export', str(evil), '--out', str(tmp_path / 'bundle')]), evil, marker)
    _refused(capsys, main(['eval', '--checkpoint', str(evil), '--config', str(cfg),
                           '--out', str(tmp_path / 'eval')]), evil, marker)
    last = _hostile(tmp_path / 'run/checkpoints/last.pt', marker)
    _refused(capsys, main(['fit', str(cfg), '--resume', '--quiet']), last, marker)
    pretrained = _fit_config(tmp_path, data, pretrained=str(evil))
    yaml_cfg = yaml.safe_load(pretrained.read_text())
    yaml_cfg['model']['strategy'] = 'finetune_all'
    pretrained.write_text(yaml.safe_dump(yaml_cfg))
    _refused(capsys, main(['fit', str(pretrained), '--quiet']), evil, marker)


def test_rng_state_is_plain_data_and_restores_every_generator(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    state = rng_state()
    path = save_checkpoint(tmp_path / 'c.pt', model={'w': torch.ones(1)}, model_meta={}, rng=state)
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    restored = torch.load(path, weights_only=True)          # plain data: no allowlist needed
    set_rng_state(restored['rng'])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_save_refuses_what_a_weights_only_load_would_refuse(tmp_path):
    with pytest.raises(TypeError, match='not plain data'):
        save_checkpoint(tmp_path / 'c.pt', model={}, model_meta={}, extra=object())
    assert not list(tmp_path.glob('c.pt*'))


def test_version_1_checkpoint_with_numpy_rng_state_stays_readable(tmp_path):
    """Checkpoints written before weights-only loading hold np.random.get_state() (an ndarray):
    loaded with only numpy's array reconstructors allowed, and the RNG state restores."""
    np.random.seed(5)
    old = {'version': 1, 'model': {'w': torch.ones(2)}, 'model_meta': {'class_names': ['car']},
           'rng': {'python': random.getstate(), 'numpy': np.random.get_state(), 'torch': torch.get_rng_state()},
           'epoch': 1}
    torch.save(old, tmp_path / 'v1.pt')
    expected = np.random.rand()
    ckpt = load_checkpoint(tmp_path / 'v1.pt')
    assert ckpt['version'] == 1 and ckpt['epoch'] == 1
    set_rng_state(ckpt['rng'])
    assert np.random.rand() == expected


def test_version_1_layout_with_a_payload_is_still_refused(tmp_path):
    marker = tmp_path / 'pwned'
    content = {'version': 1, 'model': {}, 'model_meta': {}, 'rng': {'numpy': np.random.get_state()},
               'payload': _RunsCommand(marker)}
    torch.save(content, tmp_path / 'mixed.pt')
    with pytest.raises(CheckpointRefused, match='mixed.pt: refused.*system'):
        load_checkpoint(tmp_path / 'mixed.pt')
    assert not marker.exists()
