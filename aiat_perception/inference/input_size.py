"""Network input size per camera resolution for a flexible (fully convolutional) bundle.

A flexible bundle takes any height and width that are multiples of its ``size_multiple`` (the
largest stride). For an image of a given size, :func:`aspect_input_size` picks the input that
keeps the image's aspect ratio best within a pixel budget: the image is then letterboxed into it
with less than one multiple of padding, instead of being stretched to the trained square.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

from .bundle import MAX_INPUT_PIXELS, InputSpec


def default_pixel_budget(spec: InputSpec) -> int:
    """The trained input's pixel count (416x416 -> 173056)."""
    return int(spec.height) * int(spec.width)


def check_pixel_budget(budget: int, multiple: int) -> int:
    """A budget is a whole number of pixels between one ``multiple`` square and MAX_INPUT_PIXELS."""
    if isinstance(budget, bool) or not isinstance(budget, int):
        raise ValueError(f'pixel budget must be a whole number of pixels, got {budget!r}')
    if not multiple * multiple <= budget <= MAX_INPUT_PIXELS:
        raise ValueError(f'pixel budget {budget} must be in [{multiple * multiple}, '
                         f'MAX_INPUT_PIXELS = {MAX_INPUT_PIXELS}]')
    return budget


def aspect_input_size(width: int, height: int, pixel_budget: int, multiple: int,
                      min_size: Optional[Sequence[int]] = None,
                      max_size: Optional[Sequence[int]] = None) -> Tuple[int, int]:
    """(input height, input width): multiples of ``multiple``, at most ``pixel_budget`` (and
    MAX_INPUT_PIXELS) pixels, the one whose letterbox scale of a ``width`` x ``height`` image is
    largest (ties: least padding).

    ``min_size``/``max_size`` ((height, width)) bound each side separately: the box a backend
    accepts (a TensorRT engine's optimization profile). They are rounded inwards to multiples.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f'image size {width}x{height} must be positive')
    check_pixel_budget(pixel_budget, multiple)
    budget = min(pixel_budget, MAX_INPUT_PIXELS)
    lo_h, lo_w = (max(multiple, -(-int(v) // multiple) * multiple) for v in (min_size or (1, 1)))
    hi_h, hi_w = ((int(v) // multiple * multiple for v in max_size) if max_size is not None
                  else (MAX_INPUT_PIXELS, MAX_INPUT_PIXELS))
    if hi_h < lo_h or hi_w < lo_w:
        raise ValueError(f'input size box {lo_h}x{lo_w} .. {hi_h}x{hi_w} holds no multiple of {multiple}')
    budget = max(budget, lo_h * lo_w)        # the smallest input the box allows, however small the budget
    # the scale that fills the budget, and no more than the box allows on either side
    scale = min(math.sqrt(budget / (float(width) * float(height))), hi_w / width, hi_h / height)

    def sides(length: float, low: int, high: int) -> set:
        return {min(high, max(low, math.floor(length * scale / multiple) * multiple)),
                min(high, max(low, math.ceil(length * scale / multiple) * multiple))}

    best = None
    for net_w in sides(width, lo_w, hi_w):
        for net_h in sides(height, lo_h, hi_h):
            if net_w * net_h > budget:
                continue
            fit = min(net_w / width, net_h / height)
            key = (fit, -(net_w * net_h))
            if best is None or key > best[0]:
                best = (key, (net_h, net_w))
    if best is None:      # a sliver image: the thin side at its minimum, the long side to the budget
        if width >= height:
            return lo_h, min(hi_w, max(lo_w, budget // lo_h // multiple * multiple))
        return min(hi_h, max(lo_h, budget // lo_w // multiple * multiple)), lo_w
    return best[1]
