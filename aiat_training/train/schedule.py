"""Per-iteration learning-rate factor: linear warm-up, then cosine decay (Loshchilov & Hutter 2017)."""
from __future__ import annotations

import math

import torch


def lr_factor(iteration: int, total_iters: int, warmup_iters: int, warmup_start_factor: float,
              min_lr_ratio: float) -> float:
    warmup_iters = min(warmup_iters, total_iters // 3)
    if iteration < warmup_iters:
        return warmup_start_factor + (1 - warmup_start_factor) * iteration / warmup_iters
    span = max(total_iters - 1 - warmup_iters, 1)
    progress = min(max(iteration - warmup_iters, 0) / span, 1.0)
    return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def warmup_cosine(optimizer: torch.optim.Optimizer, total_iters: int, warmup_iters: int,
                  warmup_start_factor: float = 0.1, min_lr_ratio: float = 0.05):
    """A LambdaLR stepped once per iteration; each group's ``lr`` is its peak (e.g. layer-decayed) LR."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda it: lr_factor(it, total_iters, warmup_iters, warmup_start_factor, min_lr_ratio))
