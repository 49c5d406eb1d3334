"""Optimization-profile shapes for an engine, from the bundle's input spec.

A fixed bundle has one input size, so only the batch varies between the profile's min, opt and max.
A flexible bundle's profile spreads height and width too: min one ``size_multiple`` square, opt the
trained size, max a size whose pixel count MAX_INPUT_PIXELS bounds (the rule every backend and the
bundle validation use).
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Sequence, Tuple, Union

from ..inference.bundle import MAX_INPUT_PIXELS, InputSpec

Shape = Tuple[int, ...]
BatchProfile = Tuple[int, int, int]
MAX_BATCH = 256     # far above what a vehicle runs; guards against typos like 1:4:4000


class ProfileError(ValueError):
    pass


def parse_batch(text: Union[str, int, Sequence[int]]) -> BatchProfile:
    """'4' -> (4, 4, 4); '1:4:8' -> (1, 4, 8); validated (1 <= min <= opt <= max <= MAX_BATCH)."""
    if isinstance(text, int) and not isinstance(text, bool):
        values: Sequence = (text,)
    elif isinstance(text, str):
        pieces = text.strip().split(':')
        try:
            values = [int(p) for p in pieces]
        except ValueError:
            raise ProfileError(f'batch {text!r}: expected N or MIN:OPT:MAX with whole numbers') from None
    else:
        values = tuple(text)
    if len(values) == 1:
        values = (values[0],) * 3
    if len(values) != 3:
        raise ProfileError(f'batch {text!r}: expected N or MIN:OPT:MAX')
    return check_batch(tuple(values))


def check_batch(batch: Sequence[int]) -> BatchProfile:
    if len(batch) != 3 or not all(isinstance(b, int) and not isinstance(b, bool) for b in batch):
        raise ProfileError(f'batch profile {tuple(batch)!r}: expected three whole numbers (min, opt, max)')
    low, opt, high = batch
    if not 1 <= low <= opt <= high:
        raise ProfileError(f'batch profile {low}:{opt}:{high}: needs 1 <= min <= opt <= max')
    if high > MAX_BATCH:
        raise ProfileError(f'batch profile {low}:{opt}:{high}: max {high} is above {MAX_BATCH}')
    return (low, opt, high)


def profile_shapes(bundle_input_spec: InputSpec, batch: Sequence[int] = (1, 1, 1),
                   max_size: Optional[Tuple[int, int]] = None) -> Dict[str, Tuple[Shape, Shape, Shape]]:
    """{input name: (min shape, opt shape, max shape)} for ``IOptimizationProfile.set_shape``.

    ``max_size`` (height, width; flexible bundles only): the largest input the engine takes,
    multiples of the bundle's size_multiple, at most MAX_INPUT_PIXELS pixels; default the largest
    square within MAX_INPUT_PIXELS.
    """
    spec = bundle_input_spec
    low, opt, high = check_batch(tuple(batch))
    chw = (spec.channels, spec.height, spec.width)
    if not spec.flexible:
        if max_size is not None and tuple(max_size) != (spec.height, spec.width):
            raise ProfileError(f'input {spec.name!r} is fixed at {spec.height}x{spec.width}; '
                               f'max size {tuple(max_size)} needs a flexible bundle')
        return {spec.name: ((low,) + chw, (opt,) + chw, (high,) + chw)}
    m = spec.size_multiple
    if max_size is None:
        side = int(math.isqrt(MAX_INPUT_PIXELS)) // m * m
        max_size = (side, side)
    max_h, max_w = (int(v) for v in max_size)
    if max_h % m or max_w % m or max_h < spec.height or max_w < spec.width:
        raise ProfileError(f'max size {max_h}x{max_w}: needs multiples of {m}, at least the trained '
                           f'{spec.height}x{spec.width}')
    if max_h * max_w > MAX_INPUT_PIXELS:
        raise ProfileError(f'max size {max_h}x{max_w} = {max_h * max_w} pixels is over '
                           f'MAX_INPUT_PIXELS = {MAX_INPUT_PIXELS}')
    return {spec.name: ((low, spec.channels, m, m), (opt,) + chw, (high, spec.channels, max_h, max_w))}


def check_network_input(name: str, network_shape: Sequence[int],
                        shapes: Tuple[Shape, Shape, Shape]) -> None:
    """The network's declared input shape (-1 = dynamic) must admit every profile shape."""
    for label, shape in zip(('min', 'opt', 'max'), shapes):
        if len(shape) != len(network_shape):
            raise ProfileError(f'input {name!r}: the network has rank {len(network_shape)} '
                               f'{list(network_shape)}, the profile {label} shape is {list(shape)}')
        for axis, (want, got) in enumerate(zip(network_shape, shape)):
            if want >= 0 and want != got:
                what = 'batch' if axis == 0 else f'dimension {axis}'
                raise ProfileError(
                    f'input {name!r}: {what} is fixed at {want} in the ONNX graph but the profile '
                    f'{label} shape is {list(shape)}'
                    + (f'; build with --batch {want}' if axis == 0 else ''))
