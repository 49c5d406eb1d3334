"""The flat cell layout of the head: grids per stride, row-major, concatenated over strides.

Same convention as the bundle contract: cell centre = ((col + 0.5) * stride, (row + 0.5) * stride),
grid size = ceil(input size / stride).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

DEFAULT_STRIDES = (8, 16, 32)


@dataclass(frozen=True)
class CellLayout:
    centres: torch.Tensor        # [N, 2] (x, y) in input pixels
    strides: torch.Tensor        # [N] stride of each cell
    level_sizes: tuple           # cells per level, in stride order

    @property
    def num_cells(self) -> int:
        return int(self.centres.shape[0])

    def level_slices(self):
        start = 0
        for size in self.level_sizes:
            yield slice(start, start + size)
            start += size


def grid_shape(height: int, width: int, stride: int) -> tuple:
    return math.ceil(height / stride), math.ceil(width / stride)


def cell_layout(height: int, width: int, strides: Sequence[int] = DEFAULT_STRIDES,
                device=None, dtype=torch.float32) -> CellLayout:
    centres, cell_strides, sizes = [], [], []
    for stride in strides:
        rows, cols = grid_shape(height, width, stride)
        ys, xs = torch.meshgrid(torch.arange(rows, device=device, dtype=dtype),
                                torch.arange(cols, device=device, dtype=dtype), indexing='ij')
        centre = torch.stack([(xs.reshape(-1) + 0.5) * stride, (ys.reshape(-1) + 0.5) * stride], dim=-1)
        centres.append(centre)
        cell_strides.append(torch.full((rows * cols,), float(stride), device=device, dtype=dtype))
        sizes.append(rows * cols)
    return CellLayout(torch.cat(centres), torch.cat(cell_strides), tuple(sizes))


def distances_to_boxes(centres: torch.Tensor, ltrb: torch.Tensor) -> torch.Tensor:
    """Boxes (x1, y1, x2, y2) from distances (left, top, right, bottom) to cell centres."""
    return torch.cat([centres - ltrb[..., :2], centres + ltrb[..., 2:]], dim=-1)


def boxes_to_distances(centres: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Distances (left, top, right, bottom) from cell centres to box sides."""
    return torch.cat([centres - boxes[..., :2], boxes[..., 2:] - centres], dim=-1)


def expected_distances(box_logits: torch.Tensor, reg_max: int) -> torch.Tensor:
    """[..., 4*(reg_max+1)] bin logits -> [..., 4] expected distance in bin (stride) units."""
    bins = box_logits.reshape(*box_logits.shape[:-1], 4, reg_max + 1).softmax(dim=-1)
    project = torch.arange(reg_max + 1, device=box_logits.device, dtype=bins.dtype)
    return (bins * project).sum(dim=-1)
