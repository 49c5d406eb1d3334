"""Tiling for small, far objects: the full frame plus overlapping tiles, each run through the network
at its own input size, merged with class-aware NMS.

A tile sees its part of the frame at a higher scale than the full frame does (a KITTI 1242x375 frame
at 256x640 is scaled by 0.68 vertically; each of its three 478x375 tiles at 416x416 by 1.1), so a far pedestrian covers more
network cells. A tile's detection that touches a tile edge inside the frame is a cut object: it is
dropped, and the full frame (or the neighbouring tile) supplies the whole box.
"""
from __future__ import annotations

import math
from typing import List, Sequence, Tuple

import numpy as np

Window = Tuple[int, int, int, int]    # x0, y0, x1, y1 in frame pixels (x1, y1 exclusive)
EDGE_MARGIN = 2.0                     # pixels: a box this close to an inner tile edge is cut


def auto_grid(width: int, height: int) -> Tuple[int, int]:
    """(rows, cols): about square tiles; a 3.3:1 KITTI frame gets 1 x 3."""
    if width >= height:
        return 1, max(1, int(round(width / height)))
    return max(1, int(round(height / width))), 1


def tile_windows(width: int, height: int, rows: int, cols: int, overlap: float) -> List[Window]:
    """Windows of a rows x cols grid covering the frame, neighbours overlapping by ``overlap`` of a
    tile's size; a 1 x 1 grid gives no tiles (the full frame is run anyway)."""
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f'tile overlap must be in [0, 1), got {overlap}')
    if rows < 1 or cols < 1:
        raise ValueError(f'tile grid {rows}x{cols} must have at least one row and column')
    if rows == cols == 1:
        return []

    def spans(size: int, n: int) -> List[Tuple[int, int]]:
        if n == 1:
            return [(0, size)]
        tile = size / (n - (n - 1) * overlap)        # n tiles, n - 1 overlaps, cover the size exactly
        step = tile * (1.0 - overlap)
        return [(int(math.floor(i * step)), min(size, int(math.ceil(i * step + tile)))) for i in range(n)]

    return [(x0, y0, x1, y1) for y0, y1 in spans(height, rows) for x0, x1 in spans(width, cols)]


def cut_by_tile_edge(boxes: np.ndarray, window: Window, width: int, height: int,
                     margin: float = EDGE_MARGIN) -> np.ndarray:
    """Per box (frame pixels): True when it touches an edge of the window that lies inside the frame."""
    x0, y0, x1, y1 = window
    cut = np.zeros(len(boxes), bool)
    if x0 > 0:
        cut |= boxes[:, 0] <= x0 + margin
    if y0 > 0:
        cut |= boxes[:, 1] <= y0 + margin
    if x1 < width:
        cut |= boxes[:, 2] >= x1 - margin
    if y1 < height:
        cut |= boxes[:, 3] >= y1 - margin
    return cut


def parse_grid(value: Sequence[int]) -> Tuple[int, int]:
    """(rows, cols) from a 2-sequence; (0, 0) = :func:`auto_grid`."""
    if len(value) != 2 or not all(isinstance(v, (int, np.integer)) and 0 <= v <= 16 for v in value):
        raise ValueError(f'tile grid must be (rows, cols), each 0..16 (0, 0 = automatic), got {value!r}')
    rows, cols = int(value[0]), int(value[1])
    if (rows == 0) != (cols == 0):
        raise ValueError(f'tile grid {rows}x{cols}: give both rows and cols, or 0, 0 for automatic')
    return rows, cols
