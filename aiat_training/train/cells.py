"""The head's cell layout as torch tensors, from the inference core's one definition
(:mod:`aiat_perception.inference.cells`: grids per stride, row-major, concatenated over strides,
cell centre = ((col + cell_offset) * stride, (row + cell_offset) * stride)).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from aiat_perception.inference.cells import DEFAULT_CELL_OFFSET, DEFAULT_STRIDES, cell_centres, level_sizes


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


def cell_layout(height: int, width: int, strides: Sequence[int] = DEFAULT_STRIDES,
                cell_offset: float = DEFAULT_CELL_OFFSET, device=None, dtype=torch.float32) -> CellLayout:
    centres, cell_strides = cell_centres(height, width, strides, cell_offset)
    return CellLayout(torch.as_tensor(centres, dtype=dtype, device=device),
                      torch.as_tensor(cell_strides, dtype=dtype, device=device),
                      level_sizes(height, width, strides))


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
