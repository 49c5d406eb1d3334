"""The training loop behind ``aiat-train fit``.

One process per device. Under ``torchrun`` with several processes the model is wrapped in
DistributedDataParallel (NCCL on GPUs, gloo on CPU); rank 0 logs, validates and writes checkpoints.
Every epoch ends with ``checkpoints/last.pt`` (everything a resume needs) and, when validation
improves mAP@[.5:.95], ``checkpoints/best.pt``.
"""
from __future__ import annotations

import json
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from aiat_perception.inference.bundle import InputSpec
from aiat_perception.inference.decode import GflDecoder
from aiat_perception.inference.preprocess import Preprocessor

from .checkpoint import (CHECKPOINT_VERSION, CheckpointCorrupt, CheckpointError, CheckpointMissing,
                         copy_checkpoint, load_checkpoint, remove_leftover_temp_files, rng_state,
                         save_checkpoint, set_rng_state)
from .ema import ModelEMA
from .evaluate import EVAL_SCORE_THRESHOLD, coco_metrics
from .head_loss import GFLHeadLoss, LossWeights
from .sampler import EpochSampler
from .schedule import warmup_cosine
from .strategy import apply_strategy, build_optimizer


# ------------------------------------------------------------------------------------------------
# process group

@dataclass
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> 'DistInfo':
        """torchrun sets WORLD_SIZE/RANK/LOCAL_RANK; a plain run is a world of one."""
        return cls(int(os.environ.get('RANK', 0)), int(os.environ.get('LOCAL_RANK', 0)),
                   int(os.environ.get('WORLD_SIZE', 1)))


def select_device(setting: str, dist: DistInfo) -> torch.device:
    if setting == 'auto':
        setting = 'cuda' if torch.cuda.is_available() else 'cpu'
    device = torch.device(setting)
    if device.type == 'cuda':
        if not torch.cuda.is_available():
            raise RuntimeError(f'train.device: {setting!r} but CUDA is not available')
        if device.index is None:
            device = torch.device('cuda', dist.local_rank if dist.enabled else torch.cuda.current_device())
        torch.cuda.set_device(device)
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


# ------------------------------------------------------------------------------------------------
# model

def build_model(cfg, class_names: Sequence[str]) -> nn.Module:
    """The network for the config's strategy, with a head for ``class_names``."""
    from aiat_training.nanodet import importer

    m = cfg.model
    if m.strategy == 'scratch':
        model = importer.build_model(len(class_names), m.reg_max)
        model.class_names = tuple(class_names)
        return model
    if m.pretrained == 'coco':
        model = importer.load_pretrained(frozen_bn=True)
    else:
        model = model_from_checkpoint(load_checkpoint(m.pretrained), prefer_ema=True, source=m.pretrained)
    if tuple(getattr(model, 'class_names', ())) != tuple(class_names):
        importer.replace_head(model, class_names, m.coco_mapping or None)
    return model


def model_from_checkpoint(ckpt: dict, prefer_ema: bool = True, source='checkpoint') -> nn.Module:
    """The NanoDet a checkpoint describes; a checkpoint whose metadata or weights do not fit raises
    :class:`CheckpointCorrupt` naming ``source``."""
    from aiat_training.nanodet.model import NanoDet

    try:
        meta = ckpt['model_meta']
        model = NanoDet(num_classes=len(meta['class_names']), reg_max=int(meta['reg_max']))
        state = ckpt['ema']['module'] if prefer_ema and ckpt.get('ema') else ckpt['model']
        model.load_state_dict(state)
        model.class_names = tuple(str(n) for n in meta['class_names'])
    except (KeyError, TypeError, ValueError, RuntimeError, OverflowError) as exc:
        reason = ' '.join(str(exc).split())[:200]
        raise CheckpointCorrupt(f'{source}: not a usable aiat-train checkpoint ({type(exc).__name__}: '
                                f'{reason})') from None
    return model.eval()


# ------------------------------------------------------------------------------------------------
# validation through the vehicle's preprocessing and decoding

@torch.no_grad()
def predict(model: nn.Module, samples, spec: InputSpec, reg_max: int, strides: Sequence[int],
            device: torch.device, batch_size: int = 8, score_threshold: float = EVAL_SCORE_THRESHOLD,
            nms_iou_threshold: float = 0.6, max_detections: int = 100, class_names=(),
            on_unreadable=None) -> list:
    """Detections (original image pixels) for every sample, with the inference core's
    :class:`Preprocessor` and :class:`GflDecoder` around the torch model.

    An image that cannot be decoded raises :class:`DatasetError`, or, with ``on_unreadable``
    (called with its :class:`ReadIssue`), gets ``None`` instead of detections."""
    from aiat_training.data.issues import DatasetError
    pre = Preprocessor(spec)
    decoder = GflDecoder(strides, reg_max, spec.height, spec.width, class_names)
    was_training = model.training
    model.eval()
    out = []
    samples = list(samples)
    for start in range(0, len(samples), batch_size):
        images, chunk = [], [None] * len(samples[start:start + batch_size])
        for j, s in enumerate(samples[start:start + batch_size]):
            try:
                images.append((j, s.load_image()))
            except DatasetError as exc:
                if on_unreadable is None:
                    raise
                on_unreadable(exc.issue)
        if images:
            batch, transforms = pre([image for _, image in images], 'bgr8')
            cls_logits, box_logits = model(torch.from_numpy(batch).to(device))
            dets = decoder.decode(cls_logits.float().sigmoid().cpu().numpy(), box_logits.float().cpu().numpy(),
                                  transforms, score_threshold=score_threshold,
                                  nms_iou_threshold=nms_iou_threshold, max_detections=max_detections)
            for (j, _), det in zip(images, dets):
                chunk[j] = det
        out += chunk
    model.train(was_training)
    return out


def draw_detections(image: np.ndarray, detections, gt_boxes=None, class_names=(), min_score=0.3):
    """RGB copy with ground truth (red) and detections above ``min_score`` (green)."""
    from aiat_perception.draw import draw_boxes
    canvas = draw_boxes(image, np.asarray(gt_boxes if gt_boxes is not None else []), None,
                        color=(0, 0, 255), thickness=1)
    keep = detections.scores >= min_score
    names = [class_names[c] if c < len(class_names) else str(c) for c in detections.class_ids[keep].tolist()]
    canvas = draw_boxes(canvas, detections.boxes[keep], names, scores=detections.scores[keep],
                        color=(0, 255, 0), thickness=1, copy=False)
    return canvas[:, :, ::-1]


# ------------------------------------------------------------------------------------------------

def _amp_settings(mode: str, device: torch.device):
    """(autocast enabled, dtype, use GradScaler)."""
    if mode == 'auto':
        mode = 'fp16' if device.type == 'cuda' else 'off'
    if mode == 'off':
        return False, torch.float32, False
    if mode == 'fp16':
        if device.type != 'cuda':
            raise ValueError('train.amp: fp16 needs a CUDA device; use bf16 or off on CPU')
        return True, torch.float16, True
    return True, torch.bfloat16, False


def _reseed_augmentation(dataset, seed: int) -> None:
    transform = getattr(dataset, 'transform', None)
    if transform is not None and hasattr(transform, 'set_random_seed'):
        transform.set_random_seed(seed % 2 ** 31)


class Trainer:
    """``Trainer(cfg, class_names, train_set, val_set).fit(resume=False)``.

    ``train_set`` is a torch dataset of dicts (``image``, ``boxes``, ``labels``, ``ignore``:
    :class:`aiat_training.data.loader.TrainingDataset`); ``val_set`` a
    :class:`~aiat_training.data.dataset.DetectionDataset` (validated with the vehicle's pre- and
    post-processing) or None.
    """

    def __init__(self, cfg, class_names: Sequence[str], train_set, val_set=None,
                 model: Optional[nn.Module] = None, progress: bool = True, config_dict: Optional[dict] = None):
        from aiat_training.data.loader import collate, worker_init_fn

        self.cfg = cfg
        self.class_names = list(class_names)
        self.dist = DistInfo.from_env()
        if self.dist.enabled and not torch.distributed.is_initialized():
            backend = 'nccl' if torch.cuda.is_available() and cfg.train.device != 'cpu' else 'gloo'
            torch.distributed.init_process_group(backend)
        self.device = select_device(cfg.train.device, self.dist)
        seed_everything(cfg.train.seed + self.dist.rank)
        self.out_dir = Path(cfg.output.dir)
        self.ckpt_dir = self.out_dir / 'checkpoints'
        self.progress = progress and self.dist.is_main
        self.config_dict = config_dict or json.loads(cfg.model_dump_json())

        model = model if model is not None else build_model(cfg, self.class_names)
        self.trainable_blocks = apply_strategy(model, cfg)
        if self.dist.enabled and cfg.model.strategy == 'scratch' and self.device.type == 'cuda':
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)   # BN statistics over all GPUs
        model.to(self.device)
        self.model = model
        self.ema = ModelEMA(model, cfg.train.ema_decay) if cfg.train.ema else None
        self.net = model
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == 'cuda' else None
            self.net = nn.parallel.DistributedDataParallel(model, device_ids=ids,
                                                           find_unused_parameters=False)

        self.spec = cfg.input.spec()
        self.loss_fn = GFLHeadLoss(len(self.class_names), model.reg_max, model.strides,
                                   LossWeights(cfg.loss.qfl_weight, cfg.loss.dfl_weight, cfg.loss.giou_weight),
                                   cfg.loss.atss_topk, cfg.loss.anchor_scale)
        self.train_set, self.val_set = train_set, val_set

        self.sampler = EpochSampler(len(train_set), cfg.train.seed, True, self.dist.rank, self.dist.world_size)
        self._collate, self._worker_init = collate, worker_init_fn
        per_rank = len(self.sampler.indices())
        self.drop_last = per_rank >= cfg.train.batch_size
        self.iters_per_epoch = (per_rank // cfg.train.batch_size if self.drop_last else 1)
        if cfg.train.max_iters_per_epoch:
            self.iters_per_epoch = min(self.iters_per_epoch, cfg.train.max_iters_per_epoch)
        self.total_iters = self.iters_per_epoch * cfg.schedule.epochs

        self.optimizer = build_optimizer(model, cfg)
        self.scheduler = warmup_cosine(self.optimizer, self.total_iters, cfg.schedule.warmup_iters,
                                       cfg.schedule.warmup_start_factor, cfg.schedule.min_lr_ratio)
        self.autocast, self.amp_dtype, use_scaler = _amp_settings(cfg.train.amp, self.device)
        self.scaler = torch.amp.GradScaler('cuda', enabled=use_scaler)
        self.epoch = 0              # next epoch to run
        self.iteration = 0          # optimiser steps done
        self.best_metric = -1.0
        self.history: list = []
        self.writer = None
        self.on_error = getattr(getattr(cfg, 'data', None), 'on_error', 'raise')
        self.skipped_images: dict = {}      # image path -> issue, for images that could not be decoded

    # -- checkpoints ------------------------------------------------------------------------------
    def state(self) -> dict:
        m = self.model
        return {'version': CHECKPOINT_VERSION, 'model': m.state_dict(),
                'ema': self.ema.state_dict() if self.ema else None,
                'optimizer': self.optimizer.state_dict(), 'scheduler': self.scheduler.state_dict(),
                'scaler': self.scaler.state_dict(), 'rng': rng_state(),
                'epoch': self.epoch, 'iteration': self.iteration, 'sampler': {'epoch': self.epoch, 'start': 0},
                'best_metric': self.best_metric, 'history': self.history,
                'model_meta': {'class_names': self.class_names, 'reg_max': m.reg_max,
                               'strides': list(m.strides), 'input_size': [self.spec.height, self.spec.width],
                               'input': {'color_order': self.spec.color_order, 'resize': self.spec.resize,
                                         'mean': list(self.spec.mean), 'std': list(self.spec.std)}},
                'config': self.config_dict}

    def save(self, improved: bool) -> None:
        last = save_checkpoint(self.ckpt_dir / 'last.pt', **self.state())
        if improved:
            copy_checkpoint(last, self.ckpt_dir / 'best.pt')

    def newest_intact_checkpoint(self) -> tuple:
        """(path, content) of ``last.pt``, or of ``best.pt`` (an earlier epoch's full state) when
        ``last.pt`` is corrupt or gone. A refused (unsafe) file stops the resume; it is never skipped."""
        problems = []
        for path in (self.ckpt_dir / 'last.pt', self.ckpt_dir / 'best.pt'):
            if not path.is_file():
                continue
            try:
                ckpt = load_checkpoint(path, map_location=self.device)
            except CheckpointCorrupt as exc:
                problems.append(str(exc))
                continue
            if problems and self.dist.is_main:
                print(f'aiat-train: {problems[0]}; resuming from {path} (epoch {ckpt.get("epoch")}) instead',
                      file=sys.stderr)
            return path, ckpt
        if problems:
            raise CheckpointCorrupt('; '.join(problems) + ': no intact checkpoint to resume from')
        raise CheckpointMissing(f'{self.ckpt_dir}: --resume: no checkpoint to resume yet (no last.pt or '
                                'best.pt); run without --resume to start a fresh run')

    def resume(self, path: Optional[Path] = None) -> None:
        if path is None:
            path, ckpt = self.newest_intact_checkpoint()
        else:
            path = Path(path)
            ckpt = load_checkpoint(path, map_location=self.device)
        if ckpt['model_meta'].get('class_names') != self.class_names:
            raise CheckpointError(f'{path}: checkpoint classes {ckpt["model_meta"].get("class_names")} differ '
                                  f'from the config\'s {self.class_names}')
        iteration = ckpt.get('iteration')
        if not isinstance(iteration, int) or isinstance(iteration, bool) or iteration < 0:
            raise CheckpointCorrupt(f'{path}: cannot resume from it (iteration {iteration!r:.40})')
        if iteration % self.iters_per_epoch:
            raise CheckpointError(f'{path}: iterations per epoch differ from the checkpointed run '
                                  '(batch size, dataset or max_iters_per_epoch changed)')
        try:
            self.model.load_state_dict(ckpt['model'])
            if self.ema and ckpt.get('ema'):
                self.ema.load_state_dict(ckpt['ema'])
            self.optimizer.load_state_dict(ckpt['optimizer'])
            self.scheduler.load_state_dict(ckpt['scheduler'])
            self.scaler.load_state_dict(ckpt['scaler'])
            self.epoch, self.iteration = int(ckpt['epoch']), int(ckpt['iteration'])
            self.best_metric, self.history = float(ckpt['best_metric']), list(ckpt['history'])
            set_rng_state(ckpt['rng'])
        except (KeyError, TypeError, ValueError, RuntimeError, OverflowError) as exc:
            reason = ' '.join(str(exc).split())[:200]
            raise CheckpointCorrupt(f'{path}: cannot resume from it ({type(exc).__name__}: {reason})') from None

    # -- loop -------------------------------------------------------------------------------------
    def loader(self, epoch: int) -> DataLoader:
        seed = self.cfg.train.seed * 100003 + epoch
        self.sampler.set_epoch(epoch)
        if self.cfg.train.num_workers == 0:
            _reseed_augmentation(self.train_set, seed)
        workers = self.cfg.train.num_workers
        return DataLoader(self.train_set, batch_size=self.cfg.train.batch_size, sampler=self.sampler,
                          num_workers=workers, collate_fn=self._collate, drop_last=self.drop_last,
                          worker_init_fn=self._worker_init if workers else None,
                          generator=torch.Generator().manual_seed(seed),
                          pin_memory=self.device.type == 'cuda')

    def train_step(self, batch: dict) -> dict:
        images = batch['image'].to(self.device, non_blocking=True)
        targets = [{'boxes': b, 'labels': l, 'ignore': i}
                   for b, l, i in zip(batch['boxes'], batch['labels'], batch.get('ignore', [None] * len(images)))]
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.autocast):
            cls_logits, box_logits = self.net(images)
        losses = self.loss_fn(cls_logits, box_logits, targets, images.shape[-2:])
        loss = losses['loss']
        self.optimizer.zero_grad(set_to_none=True)
        if not torch.isfinite(loss):
            losses['skipped'] = True        # keep the run alive; the step is not taken
            return losses
        self.scaler.scale(loss).backward()
        clip = self.cfg.optimizer.grad_clip
        if clip:
            self.scaler.unscale_(self.optimizer)
            losses['grad_norm'] = float(nn.utils.clip_grad_norm_(
                [p for g in self.optimizer.param_groups for p in g['params']], clip))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        if self.ema:
            self.ema.update(self.model)
        return losses

    def eval_model(self) -> nn.Module:
        return self.ema.module if self.ema else self.model

    def unreadable_image(self, issue) -> None:
        """An image the loader could not decode: stop (on_error raise) or skip it, reported once."""
        from aiat_training.data.issues import DatasetError
        if self.on_error == 'raise':
            raise DatasetError(issue)
        if issue.file not in self.skipped_images:
            self.skipped_images[issue.file] = issue
            if self.dist.is_main:
                from tqdm import tqdm
                tqdm.write(f'aiat-train: skipped: {issue}', file=sys.stderr)

    def validate(self) -> dict:
        model = self.eval_model()
        dets = predict(model, self.val_set.samples, self.spec, model.reg_max, model.strides, self.device,
                       batch_size=max(1, self.cfg.train.batch_size), class_names=self.class_names,
                       on_unreadable=self.unreadable_image)
        samples = [s for s, d in zip(self.val_set.samples, dets) if d is not None]
        dets = [d for d in dets if d is not None]
        metrics = coco_metrics(samples, dets, self.class_names)
        metrics['_detections'], metrics['_samples'] = dets, samples
        return metrics

    def _log_validation(self, metrics: dict) -> None:
        w, step = self.writer, self.iteration
        w.add_scalar('val/mAP', metrics['mAP'], step)
        w.add_scalar('val/mAP50', metrics['mAP50'], step)
        op = metrics['operating_point']
        w.add_scalar('val/precision@op', op['precision'], step)
        w.add_scalar('val/recall@op', op['recall'], step)
        w.add_scalar('val/mean_iou_of_matches', op['mean_iou_of_matches'], step)
        for name, ap in metrics['per_class'].items():
            if ap.get('AP') is not None:
                w.add_scalar(f'val_AP/{name}', ap['AP'], step)
                w.add_scalar(f'val_AP50/{name}', ap['AP50'], step)
        for k in range(min(self.cfg.train.log_images, len(metrics['_samples']))):
            s = metrics['_samples'][k]
            image = draw_detections(s.load_image(), metrics['_detections'][k], s.boxes, self.class_names)
            w.add_image(f'val_images/{k}', np.ascontiguousarray(image), step, dataformats='HWC')

    def fit(self, resume: bool = False, stop_after_epoch: Optional[int] = None,
            on_epoch_end: Optional[Callable[[dict], bool]] = None) -> dict:
        """Train to ``schedule.epochs``; ``stop_after_epoch`` ends early after that epoch's
        checkpoint (as a kill would; the schedule still spans all epochs). ``on_epoch_end(record)``
        is called with each epoch's history record (``val_mAP`` when validated) after its checkpoint;
        a true return stops training there (``stopped_early`` in the summary): the hyperparameter
        search's pruning. Single process only (not under torchrun)."""
        cfg = self.cfg
        if on_epoch_end is not None and self.dist.enabled:
            raise ValueError('on_epoch_end: not supported under torchrun (one process per trial)')
        stopped_early = False
        if resume:
            self.resume()
        if self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            for tmp in remove_leftover_temp_files(self.ckpt_dir):
                print(f'aiat-train: removed {tmp} (left by an interrupted checkpoint write)', file=sys.stderr)
            (self.out_dir / 'config.json').write_text(json.dumps(self.config_dict, indent=2, default=str))
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(str(self.out_dir / 'tensorboard'), purge_step=self.iteration or None)
        from tqdm import tqdm

        run_start = time.perf_counter()
        start_iteration = self.iteration
        bar = tqdm(total=self.total_iters, initial=self.iteration, disable=not self.progress,
                   dynamic_ncols=True, unit='it', desc='fit')
        self.net.train()
        end = cfg.schedule.epochs if stop_after_epoch is None else min(stop_after_epoch, cfg.schedule.epochs)
        while self.epoch < end:
            epoch = self.epoch
            bar.set_description(f'epoch {epoch + 1}/{cfg.schedule.epochs}')
            sums, count, data_time, step_time = {'loss': 0.0, 'qfl': 0.0, 'dfl': 0.0, 'giou': 0.0}, 0, 0.0, 0.0
            t_fetch = time.perf_counter()
            for i, batch in enumerate(self.loader(epoch)):
                if i >= self.iters_per_epoch:
                    break
                for issue in batch.get('unreadable', ()):
                    self.unreadable_image(issue)
                if batch['image'] is None:          # every image of the batch was unreadable
                    t_fetch = time.perf_counter()
                    continue
                t_step = time.perf_counter()
                data_time += t_step - t_fetch
                losses = self.train_step(batch)
                step_time += time.perf_counter() - t_step
                if not losses.get('skipped'):
                    self.iteration += 1
                    for k in sums:
                        sums[k] += float(losses[k].detach())
                    count += 1
                    if self.writer and self.iteration % cfg.train.log_every == 0:
                        for k in ('loss', 'qfl', 'dfl', 'giou'):
                            self.writer.add_scalar(f"train/{k}", float(losses[k].detach()), self.iteration)
                        self.writer.add_scalar('train/num_pos', losses['num_pos'], self.iteration)
                        self.writer.add_scalar('train/lr', self.optimizer.param_groups[0]['lr'], self.iteration)
                bar.update(1)
                bar.set_postfix(loss=f"{float(losses['loss'].detach()):.3f}", lr=f'{self.optimizer.param_groups[0]["lr"]:.2e}')
                t_fetch = time.perf_counter()
            record = {'epoch': epoch + 1, 'iteration': self.iteration,
                      **{f'train_{k}': v / max(count, 1) for k, v in sums.items()},
                      'data_time_s': data_time, 'step_time_s': step_time}
            self.epoch = epoch + 1
            improved = False
            if self.dist.is_main:
                do_eval = (self.val_set is not None and len(self.val_set) and cfg.train.eval_every
                           and (self.epoch % cfg.train.eval_every == 0 or self.epoch == cfg.schedule.epochs))
                if do_eval:
                    metrics = self.validate()
                    record.update({'val_mAP': metrics['mAP'], 'val_mAP50': metrics['mAP50'],
                                   'val_recall@op': metrics['operating_point']['recall']})
                    self._log_validation(metrics)
                    improved = metrics['mAP'] > self.best_metric
                    if improved:
                        self.best_metric = metrics['mAP']
                elif not cfg.train.eval_every or self.val_set is None:
                    improved = True     # no validation: best = latest
                self.history.append(record)
                self.writer.add_scalar('train/epoch_loss', record['train_loss'], self.iteration)
                self.save(improved)
                bar.write(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in record.items()}))
            if self.dist.enabled:
                torch.distributed.barrier()
            if on_epoch_end is not None and on_epoch_end(dict(record)):
                stopped_early = True
                break
        bar.close()
        if self.writer:
            self.writer.close()
        steps = self.iteration - start_iteration
        return {'epochs': self.epoch, 'iterations': self.iteration, 'best_mAP': self.best_metric,
                'stopped_early': stopped_early,
                'history': self.history, 'seconds': time.perf_counter() - run_start,
                'images_per_second': steps * cfg.train.batch_size * self.dist.world_size
                / max(time.perf_counter() - run_start, 1e-9),
                'checkpoint': str(self.ckpt_dir / 'last.pt'), 'best_checkpoint': str(self.ckpt_dir / 'best.pt'),
                'skipped_images': sorted(self.skipped_images)}
