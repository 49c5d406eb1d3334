"""Transfer strategies, parameter groups, LR schedule and EMA."""
import math

import pytest
import torch

from aiat_training.nanodet.model import NanoDet
from aiat_training.train.config import fit_config_from_dict
from aiat_training.train.ema import ModelEMA
from aiat_training.train.schedule import lr_factor, warmup_cosine
from aiat_training.train.strategy import apply_strategy, blocks_input_to_output, build_optimizer, parameter_groups


def _trainable(model):
    return {name.split('.')[0] + ('.' + name.split('.')[1] if name.startswith('backbone') else '')
            for name, p in model.named_parameters() if p.requires_grad}


def _cfg(**model):
    return fit_config_from_dict({'model': model, 'optimizer': {'lr': 0.01, 'weight_decay': 0.1}})


def test_blocks_order():
    names = [n for n, _ in blocks_input_to_output(NanoDet(num_classes=2))]
    assert names == ['backbone.stem', 'backbone.stage1', 'backbone.stage2', 'backbone.stage3',
                     'backbone.stage4', 'neck', 'head']


def test_head_only_and_early_layers_freeze_the_right_blocks():
    model = NanoDet(num_classes=2)
    assert apply_strategy(model, _cfg(strategy='head_only')) == ['head']
    assert _trainable(model) == {'head'}
    assert model.bn_frozen
    model = NanoDet(num_classes=2)
    trained = apply_strategy(model, _cfg(strategy='early_layers', frozen_stages=3))
    assert trained == ['backbone.stage3', 'backbone.stage4', 'neck', 'head']
    assert _trainable(model) == {'backbone.stage3', 'backbone.stage4', 'neck', 'head'}
    model.train()
    assert not any(bn.training for bn in model.batch_norms())       # statistics stay fixed


def test_scratch_uses_training_batchnorm():
    model = NanoDet(num_classes=2)
    apply_strategy(model, _cfg(strategy='scratch'))
    model.train()
    assert all(bn.training for bn in model.batch_norms())
    assert all(p.requires_grad for p in model.parameters())


def test_layer_lr_decay_and_no_weight_decay_on_bias_and_norm():
    model = NanoDet(num_classes=2)
    cfg = _cfg(strategy='finetune_all', layer_lr_decay=0.5)
    apply_strategy(model, cfg)
    groups = {g['name']: g for g in parameter_groups(model, cfg)}
    assert groups['head']['lr'] == pytest.approx(0.01)
    assert groups['neck']['lr'] == pytest.approx(0.005)
    assert groups['backbone.stem']['lr'] == pytest.approx(0.01 * 0.5 ** 6)
    assert groups['head.no_decay']['weight_decay'] == 0 and groups['head']['weight_decay'] == 0.1
    assert all(p.ndim == 4 for p in groups['neck']['params'])
    counted = sum(p.numel() for g in groups.values() for p in g['params'])
    assert counted == sum(p.numel() for p in model.parameters())
    assert isinstance(build_optimizer(model, cfg), torch.optim.AdamW)


def test_warmup_then_cosine():
    total, warm = 100, 10
    assert lr_factor(0, total, warm, 0.1, 0.05) == pytest.approx(0.1)
    assert lr_factor(5, total, warm, 0.1, 0.05) == pytest.approx(0.55)
    assert lr_factor(10, total, warm, 0.1, 0.05) == pytest.approx(1.0)
    mid = 10 + 89 / 2
    assert lr_factor(int(mid), total, warm, 0.1, 0.05) == pytest.approx(
        0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * (int(mid) - 10) / 89)))
    assert lr_factor(99, total, warm, 0.1, 0.05) == pytest.approx(0.05)
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{'params': [p], 'lr': 0.2}])
    sched = warmup_cosine(opt, total, warm)
    assert opt.param_groups[0]['lr'] == pytest.approx(0.02)
    for _ in range(10):
        opt.step()
        sched.step()
    assert opt.param_groups[0]['lr'] == pytest.approx(0.2)


def test_ema_tracks_with_ramped_decay():
    model = torch.nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema = ModelEMA(model, decay=0.9, ramp=1.0)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model)
    d = 0.9 * (1 - math.exp(-1))
    assert ema.module.weight[0, 0].item() == pytest.approx(1 - d)
    for _ in range(200):
        ema.update(model)
    assert ema.module.weight[0, 0].item() == pytest.approx(1.0, abs=1e-6)
    state = ema.state_dict()
    other = ModelEMA(torch.nn.Linear(2, 1))
    other.load_state_dict(state)
    assert other.updates == 201 and torch.equal(other.module.weight, ema.module.weight)
