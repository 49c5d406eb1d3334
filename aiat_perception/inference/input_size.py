"""Network input size per camera resolution for a flexible (fully convolutional) bundle.

A flexible bundle takes any height and width that are multiples of its ``size_multiple`` (the
largest stride). For an image of a given size, :func:`aspect_input_size` picks the input that
keeps the image's aspect ratio best within a pixel budget: the image is then letterboxed into it
with less than one multiple of padding, instead of being stretched to the trained square.
"""
from __future__ import annotations

import math
from typing import Tuple

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


def aspect_input_size(width: int, height: int, pixel_budget: int, multiple: int) -> Tuple[int, int]:
    """(input height, input width): multiples of ``multiple``, at most ``pixel_budget`` (and
    MAX_INPUT_PIXELS) pixels, the one whose letterbox scale of a ``width`` x ``height`` image is
    largest (ties: least padding)."""
    if width <= 0 or height <= 0:
        raise ValueError(f'image size {width}x{height} must be positive')
    check_pixel_budget(pixel_budget, multiple)
    budget = min(pixel_budget, MAX_INPUT_PIXELS)
    scale = math.sqrt(budget / (float(width) * float(height)))
    best = None
    for net_w in {max(multiple, math.floor(width * scale / multiple) * multiple),
                  max(multiple, math.ceil(width * scale / multiple) * multiple)}:
        for net_h in {max(multiple, math.floor(height * scale / multiple) * multiple),
                      max(multiple, math.ceil(height * scale / multiple) * multiple)}:
            if net_w * net_h > budget:
                continue
            fit = min(net_w / width, net_h / height)
            key = (fit, -(net_w * net_h))
            if best is None or key > best[0]:
                best = (key, (net_h, net_w))
    if best is None:      # a sliver image: the thin side at one multiple, the long side to the budget
        if width >= height:
            return multiple, max(multiple, budget // multiple // multiple * multiple)
        return max(multiple, budget // multiple // multiple * multiple), multiple
    return best[1]
