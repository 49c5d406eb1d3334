"""NanoDet in PyTorch: head replacement, training (gradients, batch size 2), frozen and normal BatchNorm."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from aiat_training.nanodet.coco import COCO_CLASSES
from aiat_training.nanodet.importer import build_model, load_pretrained, replace_head
from aiat_training.nanodet.model import PRIOR_BIAS, NanoDet

SIZE = 128          # small input keeps the tests fast: 16x16 + 8x8 + 4x4 = 336 cells


@pytest.fixture
def pretrained():
    return load_pretrained(frozen_bn=True)


def images(batch=2, seed=0):
    return torch.randn(batch, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def bn_state(model):
    return [(bn.running_mean.clone(), bn.running_var.clone(), bn.weight.clone(), bn.bias.clone())
            for bn in model.batch_norms()]


def test_architecture_names_and_output_layout():
    model = NanoDet()
    assert {'backbone', 'neck', 'head'} <= {name for name, _ in model.named_children()}
    assert len(model.batch_norms()) == 28           # 25 backbone convs + 3 head towers
    with torch.no_grad():
        cls, box = model.eval()(torch.zeros(1, 3, 416, 416))
    assert cls.shape == (1, 3549, 80) and box.shape == (1, 3549, 44)


def test_replace_head_keeps_pretrained_rows(pretrained):
    x = images(1)
    with torch.no_grad():
        old_cls, old_box = pretrained(x)
    names = ['car', 'pedestrian', 'traffic_cone', 'truck', 'van']
    model = replace_head(pretrained, names, coco_mapping={'van': 'car'})
    assert model.num_classes == 5 and model.class_names == tuple(names)
    assert model.head_source_rows == (2, 0, None, 7, 2)
    with torch.no_grad():
        new_cls, new_box = model(x)
    assert new_cls.shape == (1, 336, 5)
    for i, coco in enumerate(model.head_source_rows):
        if coco is not None:
            assert torch.equal(new_cls[..., i], old_cls[..., coco]), names[i]
    assert torch.equal(new_box, old_box)
    for conv in model.head.gfl_cls:
        assert conv.weight.shape[0] == 5 + 44
        assert conv.bias[2].item() == pytest.approx(PRIOR_BIAS)
        assert conv.weight[2].abs().max() < 0.1
    # The new class starts near the prior probability everywhere.
    assert torch.sigmoid(new_cls[..., 2]).max() < 0.05


def test_replace_head_mapping_by_index_none_and_errors(pretrained):
    model = replace_head(pretrained, ['person', 'thing'], coco_mapping={'person': None, 'thing': 16})
    assert model.head_source_rows == (None, 16)
    with pytest.raises(ValueError, match='not one of'):
        replace_head(load_pretrained(), ['x'], coco_mapping={'x': 'spaceship'})
    with pytest.raises(ValueError, match='unique'):
        replace_head(load_pretrained(), ['car', 'car'])


def test_gradients_flow_with_batch_two_in_train_mode(pretrained):
    model = replace_head(pretrained, ['car', 'person', 'cone']).train()
    cls, box = model(images(2))
    assert cls.shape == (2, 336, 3) and box.shape == (2, 336, 44)
    target = torch.zeros_like(cls)
    target[:, :10, 0] = 1
    loss = nn.functional.binary_cross_entropy_with_logits(cls, target) + box.logsumexp(-1).mean()
    loss.backward()
    for name in ('backbone.stem.conv.weight', 'backbone.stage4.res_out_conv.conv.weight',
                 'neck.lateral_convs.0.weight', 'neck.lateral_convs.2.weight',
                 'head.cls_convs.1.0.conv.weight', 'head.gfl_cls.0.weight', 'head.gfl_cls.2.bias'):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name
    for bn in model.batch_norms():
        assert not bn.weight.requires_grad and bn.weight.grad is None and bn.bias.grad is None


def test_frozen_bn_stays_frozen_in_train(pretrained):
    x = images(2)
    with torch.no_grad():
        eval_out = pretrained(x)
    before = bn_state(pretrained)
    pretrained.train()
    assert pretrained.training and all(not bn.training for bn in pretrained.batch_norms())
    with torch.no_grad():
        train_out = pretrained(x)
    assert all(torch.equal(a, b) for old, new in zip(before, bn_state(pretrained))
               for a, b in zip(old, new))
    assert torch.equal(eval_out[0], train_out[0]) and torch.equal(eval_out[1], train_out[1])
    # Imported BatchNorms are the identity: var + eps == 1, mean 0, weight 1.
    bn = pretrained.backbone.stem.bn
    assert torch.allclose(bn.running_var + bn.eps, torch.ones_like(bn.running_var))
    assert bn.running_mean.abs().max() == 0 and torch.equal(bn.weight, torch.ones_like(bn.weight))


def test_unfrozen_pretrained_bn_updates(pretrained):
    pretrained.freeze_bn(False).train()
    assert all(bn.training and bn.weight.requires_grad for bn in pretrained.batch_norms())
    before = pretrained.backbone.stem.bn.running_mean.clone()
    pretrained(images(2))
    assert not torch.equal(before, pretrained.backbone.stem.bn.running_mean)


def test_from_scratch_model_has_normal_batchnorm():
    model = build_model(num_classes=3).train()
    assert model.num_classes == 3 and not model.bn_frozen
    bns = model.batch_norms()
    assert all(bn.training and bn.weight.requires_grad and bn.bias.requires_grad for bn in bns)
    assert all(torch.equal(bn.running_var, torch.ones_like(bn.running_var)) for bn in bns)
    cls, _ = model(images(2))
    assert all(bn.num_batches_tracked.item() == 1 for bn in bns)
    assert all(bn.running_mean.abs().sum() > 0 for bn in bns)
    # Focal-loss prior: fresh class scores start near 0.01.
    assert torch.sigmoid(cls).mean().item() == pytest.approx(0.01, abs=0.01)
    cls.sum().backward()
    assert all(bn.weight.grad is not None for bn in bns)


def test_coco_class_list():
    assert len(COCO_CLASSES) == 80 and COCO_CLASSES[0] == 'person' and COCO_CLASSES[79] == 'toothbrush'
