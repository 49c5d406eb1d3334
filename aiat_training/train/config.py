"""The training sections of an ``aiat-train fit`` config, validated into dataclasses.

A training YAML holds the data contributor's sections (``data``, class mapping, ``augmentation``;
see :mod:`aiat_training.config`) and these sections, each optional (defaults below):

```yaml
model:
  input_size: [416, 416]   # network input [height, width]; multiples of 32 keep every grid whole
  strategy: finetune_all   # head_only | early_layers | finetune_all | scratch
                           #   head_only:    pretrained weights, only the detection head trains
                           #   early_layers: pretrained; the first `frozen_stages` backbone stages stay frozen
                           #   finetune_all: pretrained; everything trains (optionally layer-wise LR decay)
                           #   scratch:      same architecture, random init, ordinary BatchNorm
  frozen_stages: 2         # early_layers only: blocks kept frozen from the input (stem = 1, stage1..4 = 2..5)
  layer_lr_decay: 1.0      # finetune_all: LR factor per block, from the head towards the input (1 = off)
  pretrained: coco         # 'coco' = imported NanoDet COCO weights, or a path to a checkpoint (.pt)
  reg_max: 10              # box bins per side minus one (the pretrained head has 10)
loss:
  qfl_weight: 1.0          # quality focal loss
  dfl_weight: 0.25         # distribution focal loss
  giou_weight: 2.0         # GIoU loss
  atss_topk: 9             # ATSS candidates per level and box
  anchor_scale: 5.0        # ATSS prior box side = anchor_scale * stride
optimizer:
  type: adamw              # adamw | sgd
  lr: 0.001                # peak learning rate (after warm-up)
  weight_decay: 0.05       # not applied to biases and normalisation weights
  momentum: 0.9            # sgd momentum / adamw beta1
  grad_clip: 35.0          # max gradient norm (0 = off)
schedule:
  epochs: 30
  warmup_iters: 300        # linear warm-up from warmup_start_factor * lr (capped at one third of the run)
  warmup_start_factor: 0.1
  min_lr_ratio: 0.05       # cosine decays to min_lr_ratio * lr at the last iteration
train:
  batch_size: 16
  num_workers: 2
  seed: 0
  amp: auto                # auto (CUDA fp16 autocast on GPU, off on CPU) | off | fp16 | bf16
  ema: true                # keep an exponential moving average of the weights (evaluated and exported)
  ema_decay: 0.9998
  max_iters_per_epoch: 0   # > 0 truncates each epoch (smoke tests)
  eval_every: 1            # validate every N epochs (0 = never)
  log_every: 10            # scalars to TensorBoard every N iterations
  log_images: 4            # validation images with boxes per evaluation in TensorBoard
  device: auto             # auto | cpu | cuda | cuda:N
output:
  dir: runs/train          # checkpoints, TensorBoard logs, exported bundle
```
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

STRATEGIES = ('head_only', 'early_layers', 'finetune_all', 'scratch')
OPTIMIZERS = ('adamw', 'sgd')
AMP_MODES = ('auto', 'off', 'fp16', 'bf16')
TRAIN_SECTIONS = ('model', 'loss', 'optimizer', 'schedule', 'train', 'output')


class TrainConfigError(ValueError):
    """A bad training config: the message names the file, the key and the problem."""


@dataclass
class ModelSection:
    input_size: list = field(default_factory=lambda: [416, 416])
    strategy: str = 'finetune_all'
    frozen_stages: int = 2
    layer_lr_decay: float = 1.0
    pretrained: str = 'coco'
    reg_max: int = 10


@dataclass
class LossSection:
    qfl_weight: float = 1.0
    dfl_weight: float = 0.25
    giou_weight: float = 2.0
    atss_topk: int = 9
    anchor_scale: float = 5.0


@dataclass
class OptimizerSection:
    type: str = 'adamw'
    lr: float = 1e-3
    weight_decay: float = 0.05
    momentum: float = 0.9
    grad_clip: float = 35.0


@dataclass
class ScheduleSection:
    epochs: int = 30
    warmup_iters: int = 300
    warmup_start_factor: float = 0.1
    min_lr_ratio: float = 0.05


@dataclass
class TrainSection:
    batch_size: int = 16
    num_workers: int = 2
    seed: int = 0
    amp: str = 'auto'
    ema: bool = True
    ema_decay: float = 0.9998
    max_iters_per_epoch: int = 0
    eval_every: int = 1
    log_every: int = 10
    log_images: int = 4
    device: str = 'auto'


@dataclass
class OutputSection:
    dir: str = 'runs/train'


@dataclass
class TrainConfig:
    model: ModelSection = field(default_factory=ModelSection)
    loss: LossSection = field(default_factory=LossSection)
    optimizer: OptimizerSection = field(default_factory=OptimizerSection)
    schedule: ScheduleSection = field(default_factory=ScheduleSection)
    train: TrainSection = field(default_factory=TrainSection)
    output: OutputSection = field(default_factory=OutputSection)

    def to_dict(self) -> dict:
        return asdict(self)


def _coerce(value: Any, default: Any, where: str):
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise TrainConfigError(f'{where}: expected true/false, got {value!r}')
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TrainConfigError(f'{where}: expected an integer, got {value!r}')
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TrainConfigError(f'{where}: expected a number, got {value!r}')
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, (str, Path)):
            raise TrainConfigError(f'{where}: expected a string, got {value!r}')
        return str(value)
    if isinstance(default, list):
        if not isinstance(value, (list, tuple)):
            raise TrainConfigError(f'{where}: expected a list, got {value!r}')
        return list(value)
    return value


def _section(cls, data: Any, name: str, source: str):
    if data is None:
        return cls()
    if not isinstance(data, dict):
        raise TrainConfigError(f'{source}: section {name!r} must be a mapping, got {type(data).__name__}')
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise TrainConfigError(f'{source}: unknown key(s) {", ".join(f"{name}.{k}" for k in unknown)}; '
                               f'known: {", ".join(sorted(known))}')
    defaults = cls()
    values = {k: _coerce(v, getattr(defaults, k), f'{source}: {name}.{k}') for k, v in data.items()}
    return cls(**{**asdict(defaults), **values})


def _check(cond: bool, source: str, key: str, problem: str):
    if not cond:
        raise TrainConfigError(f'{source}: {key}: {problem}')


def parse_train_config(data: dict | None, source: str = '<config>') -> TrainConfig:
    """Validate the training sections of a config mapping (other top-level keys are ignored here)."""
    data = data or {}
    cfg = TrainConfig(
        model=_section(ModelSection, data.get('model'), 'model', source),
        loss=_section(LossSection, data.get('loss'), 'loss', source),
        optimizer=_section(OptimizerSection, data.get('optimizer'), 'optimizer', source),
        schedule=_section(ScheduleSection, data.get('schedule'), 'schedule', source),
        train=_section(TrainSection, data.get('train'), 'train', source),
        output=_section(OutputSection, data.get('output'), 'output', source),
    )
    m, o, s, t = cfg.model, cfg.optimizer, cfg.schedule, cfg.train
    _check(len(m.input_size) == 2 and all(isinstance(v, int) and v >= 32 for v in m.input_size),
           source, 'model.input_size', f'expected [height, width], integers >= 32, got {m.input_size}')
    _check(m.strategy in STRATEGIES, source, 'model.strategy', f'{m.strategy!r} not one of {STRATEGIES}')
    _check(0 <= m.frozen_stages <= 5, source, 'model.frozen_stages', 'expected 0..5')
    _check(0 < m.layer_lr_decay <= 1, source, 'model.layer_lr_decay', 'expected in (0, 1]')
    _check(m.reg_max >= 1, source, 'model.reg_max', 'expected >= 1')
    _check(o.type in OPTIMIZERS, source, 'optimizer.type', f'{o.type!r} not one of {OPTIMIZERS}')
    _check(o.lr > 0, source, 'optimizer.lr', 'expected > 0')
    _check(o.weight_decay >= 0, source, 'optimizer.weight_decay', 'expected >= 0')
    _check(o.grad_clip >= 0, source, 'optimizer.grad_clip', 'expected >= 0')
    _check(s.epochs >= 1, source, 'schedule.epochs', 'expected >= 1')
    _check(s.warmup_iters >= 0, source, 'schedule.warmup_iters', 'expected >= 0')
    _check(0 < s.warmup_start_factor <= 1, source, 'schedule.warmup_start_factor', 'expected in (0, 1]')
    _check(0 <= s.min_lr_ratio <= 1, source, 'schedule.min_lr_ratio', 'expected in [0, 1]')
    _check(t.batch_size >= 1, source, 'train.batch_size', 'expected >= 1')
    _check(t.num_workers >= 0, source, 'train.num_workers', 'expected >= 0')
    _check(t.amp in AMP_MODES, source, 'train.amp', f'{t.amp!r} not one of {AMP_MODES}')
    _check(0 < t.ema_decay < 1, source, 'train.ema_decay', 'expected in (0, 1)')
    return cfg
