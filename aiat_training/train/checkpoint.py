"""Checkpoints with everything a bit-exact resume needs: weights, EMA, optimiser, scheduler,
AMP scaler, the RNG states of python/numpy/torch(/CUDA), epoch and position in the epoch."""
from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch


def rng_state() -> dict:
    state = {'python': random.getstate(), 'numpy': np.random.get_state(), 'torch': torch.get_rng_state()}
    if torch.cuda.is_available():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state['python'])
    np.random.set_state(state['numpy'])
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


def save_checkpoint(path: str | Path, **content) -> Path:
    """Write atomically (temp file + rename) so a kill mid-write leaves the previous checkpoint intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + '.tmp')
    torch.save(content, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path, map_location='cpu') -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'checkpoint not found: {path}')
    # weights_only=False: the checkpoint holds numpy/python RNG states; only load checkpoints you made
    return torch.load(path, map_location=map_location, weights_only=False)
