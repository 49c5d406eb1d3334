"""The flat cell layout of a NanoDet-style head: one grid per stride, row-major, concatenated in
stride order; grid size = ceil(input size / stride), cell centre = ((col + offset) * stride,
(row + offset) * stride). The one definition behind the bundle's output shapes, the GFL decoder
and the training loss (which wraps it in torch tensors).
"""
from __future__ import annotations

import math
from typing import Sequence, Tuple

import numpy as np

DEFAULT_STRIDES = (8, 16, 32)
DEFAULT_CELL_OFFSET = 0.5


def grid_shape(height: int, width: int, stride: int) -> Tuple[int, int]:
    return math.ceil(height / stride), math.ceil(width / stride)


def level_sizes(height: int, width: int, strides: Sequence[int]) -> Tuple[int, ...]:
    """Cells per stride level."""
    return tuple(rows * cols for rows, cols in (grid_shape(height, width, s) for s in strides))


def num_cells(height: int, width: int, strides: Sequence[int]) -> int:
    return sum(level_sizes(height, width, strides))


def cell_centres(height: int, width: int, strides: Sequence[int] = DEFAULT_STRIDES,
                 cell_offset: float = DEFAULT_CELL_OFFSET) -> Tuple[np.ndarray, np.ndarray]:
    """(centres [N, 2] as x, y in input pixels, stride of each cell [N]), both float64."""
    centres, cell_strides = [], []
    for s in strides:
        rows, cols = grid_shape(height, width, s)
        ys, xs = np.meshgrid((np.arange(rows) + cell_offset) * s, (np.arange(cols) + cell_offset) * s,
                             indexing='ij')
        centres.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
        cell_strides.append(np.full(rows * cols, float(s)))
    return (np.concatenate(centres).astype(np.float64).reshape(-1, 2),
            np.concatenate(cell_strides).astype(np.float64))
