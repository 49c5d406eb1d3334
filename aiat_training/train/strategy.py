"""Transfer strategies (which blocks train) and the optimiser with its parameter groups."""
from __future__ import annotations

from typing import List, Tuple

import torch
from torch import nn




def blocks_input_to_output(model: nn.Module) -> List[Tuple[str, nn.Module]]:
    """The model's blocks from the input to the output: backbone stem, backbone stages, neck, head.

    Models without that structure count as one block.
    """
    backbone = getattr(model, 'backbone', None)
    neck = getattr(model, 'neck', None)
    head = getattr(model, 'head', None)
    if backbone is None or head is None:
        return [('model', model)]
    blocks = []
    stem = [m for n, m in backbone.named_children() if n in ('stem', 'maxpool')]
    if stem:
        blocks.append(('backbone.stem', nn.ModuleList(stem)))
    for name, module in backbone.named_children():
        if name not in ('stem', 'maxpool'):
            blocks.append((f'backbone.{name}', module))
    if neck is not None:
        blocks.append(('neck', neck))
    blocks.append(('head', head))
    return blocks


def apply_strategy(model: nn.Module, cfg) -> List[str]:
    """Set ``requires_grad`` per the strategy; return the names of the trainable blocks.

    Pretrained strategies keep BatchNorm statistics fixed (the imported weights have BN folded in
    and CPU batches are small); ``scratch`` uses ordinary BatchNorm.
    """
    strategy = cfg.model.strategy
    blocks = blocks_input_to_output(model)
    if strategy == 'head_only':
        trainable = {blocks[-1][0]}
    elif strategy == 'early_layers':
        trainable = {name for name, _ in blocks[cfg.model.frozen_stages:]}
    else:
        trainable = {name for name, _ in blocks}
    if hasattr(model, 'freeze_bn'):
        model.freeze_bn(strategy != 'scratch')
    for name, module in blocks:
        for p in module.parameters():
            p.requires_grad_(name in trainable)
    return [name for name, _ in blocks if name in trainable]


def _no_decay(name: str, param: nn.Parameter, module: nn.Module) -> bool:
    return param.ndim <= 1 or isinstance(module, nn.modules.batchnorm._BatchNorm)


def parameter_groups(model: nn.Module, cfg) -> List[dict]:
    """Groups of trainable parameters: weight decay only on conv/linear weights; with
    ``layer_lr_decay`` < 1 (finetune_all), block k from the head gets lr * decay**k."""
    blocks = blocks_input_to_output(model)
    decay_factor = cfg.model.layer_lr_decay if cfg.model.strategy == 'finetune_all' else 1.0
    groups = []
    for depth, (block_name, block) in enumerate(reversed(blocks)):
        scale = decay_factor ** depth
        with_decay, without_decay = [], []
        for module in block.modules():
            for pname, p in module.named_parameters(recurse=False):
                if p.requires_grad:
                    (without_decay if _no_decay(pname, p, module) else with_decay).append(p)
        for params, wd in ((with_decay, cfg.optimizer.weight_decay), (without_decay, 0.0)):
            if params:
                groups.append({'params': params, 'lr': cfg.optimizer.lr * scale, 'weight_decay': wd,
                               'name': f'{block_name}{"" if wd else ".no_decay"}'})
    if not groups:
        raise ValueError('no trainable parameters: check model.strategy / model.frozen_stages')
    return groups


def build_optimizer(model: nn.Module, cfg) -> torch.optim.Optimizer:
    groups = parameter_groups(model, cfg)
    o = cfg.optimizer
    if o.type == 'sgd':
        return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, nesterov=True)
    return torch.optim.AdamW(groups, lr=o.lr, betas=(o.momentum, 0.999))
