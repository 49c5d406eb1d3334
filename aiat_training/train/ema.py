"""Exponential moving average of model weights (Polyak averaging), with a warm-up of the decay."""
from __future__ import annotations

import copy
import math

import torch
from torch import nn


class ModelEMA:
    """``ema = d * ema + (1 - d) * model`` after each step, d = decay * (1 - exp(-updates / ramp)).

    The ramp keeps early averages from being dominated by the random/pretrained start.
    Buffers (BatchNorm statistics) are copied, not averaged.
    """

    def __init__(self, model: nn.Module, decay: float = 0.9998, ramp: float = 2000.0):
        self.module = copy.deepcopy(unwrap(model)).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.ramp = ramp
        self.updates = 0

    def current_decay(self) -> float:
        return self.decay * (1 - math.exp(-self.updates / self.ramp))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = self.current_decay()
        source = unwrap(model).state_dict()
        for name, value in self.module.state_dict().items():
            new = source[name].detach()
            if value.dtype.is_floating_point and name in self._param_names:
                value.mul_(d).add_(new.to(value.dtype), alpha=1 - d)
            else:
                value.copy_(new)

    @property
    def _param_names(self):
        if not hasattr(self, '_names'):
            self._names = {n for n, _ in self.module.named_parameters()}
        return self._names

    def state_dict(self) -> dict:
        return {'module': self.module.state_dict(), 'updates': self.updates, 'decay': self.decay,
                'ramp': self.ramp}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state['module'])
        self.updates = int(state['updates'])
        self.decay = float(state['decay'])
        self.ramp = float(state['ramp'])


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside a DistributedDataParallel / DataParallel wrapper."""
    return model.module if hasattr(model, 'module') and isinstance(model, (nn.parallel.DistributedDataParallel,
                                                                          nn.DataParallel)) else model
