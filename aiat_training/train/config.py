"""The ``aiat-train fit`` config: the data contributor's :class:`~aiat_training.config.TrainingConfig`
(data, class_mapping, split, augmentation, input) plus the sections of training proper, composed by
subclassing (same validation, same ``<file>: <key>: <problem>`` errors, same documentation style).

The reference of every key: ``docs/training_fit_config.md`` (``python -m aiat_training.train.config
--write-docs docs/training_fit_config.md``).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal, Optional, Union

from pydantic import Field

from aiat_training.config import (ConfigError, Section, TrainingConfig, config_from_dict, config_tool,
                                  read_config_file, render_sections)

DOCS_PATH = Path(__file__).resolve().parents[2] / 'docs' / 'training_fit_config.md'


class ModelSection(Section):
    strategy: Literal['head_only', 'early_layers', 'finetune_all', 'scratch'] = Field(
        'finetune_all', description='Transfer strategy. head_only: pretrained weights, only the detection '
        'head trains. early_layers: pretrained; the first `frozen_stages` blocks stay frozen, the rest '
        'trains. finetune_all: pretrained; everything trains (optionally with layer_lr_decay). scratch: '
        'the same architecture from random initialisation with ordinary (training-mode) BatchNorm.')
    frozen_stages: int = Field(2, ge=0, le=5, description='early_layers: blocks kept frozen counted from '
                               'the input (1 = stem, 2..5 = backbone stage1..stage4).')
    layer_lr_decay: float = Field(1.0, gt=0, le=1, description='finetune_all: block k counted from the '
                                  'head (head = 0, neck = 1, stage4 = 2, ...) trains at lr * decay^k; '
                                  '1 = one learning rate.')
    pretrained: str = Field('coco', description='Start weights for the pretrained strategies: `coco` = the '
                            'imported NanoDet COCO model (head rows of classes that exist in COCO are '
                            'kept), or a path to an aiat-train checkpoint (.pt; its EMA weights). '
                            'Relative to the config file.')
    coco_mapping: dict[str, Optional[str]] = Field(
        default_factory=dict, description='Model class -> COCO class whose pretrained head row it '
        'starts from (null = fresh row); classes not listed are matched by name/alias.')
    reg_max: int = Field(10, ge=1, le=32, description='Box-distribution bins per side minus one; '
                         'must be 10 for the pretrained strategies.')


class LossSection(Section):
    qfl_weight: float = Field(1.0, ge=0, description='Weight of the quality focal loss (classification).')
    dfl_weight: float = Field(0.25, ge=0, description='Weight of the distribution focal loss (box bins).')
    giou_weight: float = Field(2.0, ge=0, description='Weight of the GIoU box loss.')
    atss_topk: int = Field(9, ge=1, description='ATSS: candidate cells per level and box.')
    anchor_scale: float = Field(5.0, gt=0, description='ATSS: side of each cell\'s prior box in strides.')


class OptimizerSection(Section):
    type: Literal['adamw', 'sgd'] = Field('adamw', description='Optimiser.')
    lr: float = Field(1e-3, gt=0, description='Peak learning rate (reached after warm-up).')
    weight_decay: float = Field(0.05, ge=0, description='Weight decay on conv/linear weights (not biases '
                                'or normalisation parameters).')
    momentum: float = Field(0.9, ge=0, lt=1, description='SGD momentum (Nesterov) / AdamW beta1.')
    grad_clip: float = Field(35.0, ge=0, description='Clip the gradient norm to this (0 = off).')


class ScheduleSection(Section):
    epochs: int = Field(30, ge=1, description='Training epochs.')
    warmup_iters: int = Field(300, ge=0, description='Linear warm-up iterations (capped at a third of '
                              'the run).')
    warmup_start_factor: float = Field(0.1, gt=0, le=1, description='Warm-up starts at this fraction of lr.')
    min_lr_ratio: float = Field(0.05, ge=0, le=1, description='Cosine decay ends at this fraction of lr.')


class TrainSection(Section):
    batch_size: int = Field(16, ge=1, description='Images per step (per GPU under torchrun).')
    num_workers: int = Field(2, ge=0, description='DataLoader worker processes (0 = load in the main process).')
    seed: int = Field(0, description='Seed of python/numpy/torch RNGs and of the shuffling; the same '
                      'seed gives the same run (also across --resume).')
    amp: Literal['auto', 'off', 'fp16', 'bf16'] = Field(
        'auto', description='Mixed precision: auto = fp16 autocast + grad scaling on CUDA, off on CPU; '
        'bf16 = bfloat16 autocast (CPU or GPU).')
    ema: bool = Field(True, description='Keep an exponential moving average of the weights; it is what '
                      'is validated, kept as best and exported.')
    ema_decay: float = Field(0.9998, gt=0, lt=1, description='EMA decay (ramped up over the first '
                             '~2000 steps).')
    max_iters_per_epoch: int = Field(0, ge=0, description='> 0: cut each epoch to this many iterations '
                                     '(smoke tests, studies with a fixed budget).')
    eval_every: int = Field(1, ge=0, description='Validate every N epochs (0 = never; best.pt then '
                            'follows the last epoch).')
    log_every: int = Field(10, ge=1, description='Write training scalars to TensorBoard every N iterations.')
    log_images: int = Field(4, ge=0, description='Validation images with boxes logged per evaluation.')
    device: str = Field('auto', description='auto | cpu | cuda | cuda:N (torchrun: the local rank\'s GPU).')


class OutputSection(Section):
    dir: Path = Field(Path('runs/train'), description='Run directory: checkpoints/ (last.pt, best.pt), '
                      'tensorboard/, eval/, bundle/. Relative to the current directory.')


class ExportSection(Section):
    flexible: Union[bool, Literal['auto']] = Field(
        'auto', description='Export ONNX with dynamic height and width, so the bundle takes any input '
        'that is a multiple of the largest stride (`input.flexible`, `size_multiple`). `auto`: when the '
        'model allows it (checked by running it at another size); a model that cannot be flexible is '
        'exported fixed with a note in `export_check.json`. `true`: fail instead; `false`: fixed size.')
    resize: Literal['keep_aspect', 'letterbox', 'stretch'] = Field(
        'keep_aspect', description='The bundle\'s `input.resize` (how the vehicle fits camera frames to '
        'the network): `keep_aspect` picks per camera resolution an input that keeps the aspect ratio '
        'within the trained pixel count (flexible bundles; a fixed export falls back to `letterbox`), '
        '`letterbox` pads into the trained size, `stretch` resizes to it as training does.')


class FitConfig(TrainingConfig):
    model: ModelSection = Field(default_factory=ModelSection, description='Network and transfer strategy.')
    loss: LossSection = Field(default_factory=LossSection, description='Loss weights and label assignment.')
    optimizer: OptimizerSection = Field(default_factory=OptimizerSection, description='Optimiser.')
    schedule: ScheduleSection = Field(default_factory=ScheduleSection, description='Epochs and learning-rate schedule.')
    train: TrainSection = Field(default_factory=TrainSection, description='Batching, precision, EMA, logging.')
    output: OutputSection = Field(default_factory=OutputSection, description='Where the run is written.')
    export: ExportSection = Field(default_factory=ExportSection, description='The bundle `aiat-train export` '
                                  '(and `eval --checkpoint`) writes from a checkpoint of this run.')


def fit_config_from_dict(data: dict | None, source: str = '<config>',
                         base_dir: Path | None = None) -> FitConfig:
    config = config_from_dict(data, source, base_dir, schema=FitConfig)
    if config.model.strategy != 'scratch' and config.model.pretrained == 'coco' and config.model.reg_max != 10:
        raise ConfigError(f'{source}: model.reg_max: the pretrained COCO head has reg_max 10, got '
                          f'{config.model.reg_max}')
    if base_dir is not None:
        pretrained = config.model.pretrained
        if pretrained != 'coco' and not Path(pretrained).is_absolute():
            config.model.pretrained = str(base_dir / pretrained)
    return config


def load_fit_config(path: str | Path) -> FitConfig:
    path = Path(path)
    return fit_config_from_dict(read_config_file(path), str(path), path.parent)


def render_docs() -> str:
    return render_sections(FitConfig, [
        '# `aiat-train fit` configuration reference', '',
        '<!-- generated by `python -m aiat_training.train.config --write-docs '
        'docs/training_fit_config.md`; do not edit by hand -->', '',
        'The data sections (`data`, `class_mapping`, `split`, `augmentation`, `input`) are described '
        'in `docs/training_config.md`; this file adds the training sections below. Every key is '
        'optional; unknown keys are errors. Example: `config/fit_example.yaml`.', ''],
        skip=set(TrainingConfig.model_fields))


def main(argv=None) -> int:
    return config_tool(argv, 'python -m aiat_training.train.config', render_docs, load_fit_config)


if __name__ == '__main__':
    sys.exit(main())
