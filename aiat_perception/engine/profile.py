"""Optimization-profile shapes for an engine, from the bundle's input spec.

A fixed bundle has one input size, so only the batch varies between the profile's min, opt and max.
A flexible bundle's profile spreads height and width too: min one ``size_multiple`` square (or
``min_size``), opt the trained size, max ``max_size`` (default :func:`default_max_size`: every
aspect-keeping input of the trained pixel count up to 4:1 fits). A profile is a box (each side has
its own range); its max box is bounded by MAX_INPUT_PIXELS, the one rule every backend and the bundle
validation use. :class:`SizeRange` is the box in (height, width), recorded in the engine metadata,
checked per frame by the ``tensorrt`` backend and handed to the Detector's size picker.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple, Union

from ..inference.bundle import MAX_INPUT_PIXELS, InputSpec

Shape = Tuple[int, ...]
BatchProfile = Tuple[int, int, int]
MAX_BATCH = 256     # far above what a vehicle runs; guards against typos like 1:4:4000
# default profile max: aspect-keeping inputs of the trained pixel count fit up to this aspect ratio
# (KITTI's 1242x375 is 3.3:1; wider cameras get a --max-size)
DEFAULT_MAX_ASPECT = 4
Size = Tuple[int, int]      # (height, width)


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


@dataclass(frozen=True)
class SizeRange:
    """The network input sizes (height, width) an engine accepts: every h in [min_h, max_h] and w in
    [min_w, max_w] (a multiple of ``multiple`` for the Detector's picks); ``opt`` is what the engine
    was tuned for."""
    min: Size
    opt: Size
    max: Size
    multiple: int = 1

    def admits(self, height: int, width: int) -> bool:
        return self.min[0] <= height <= self.max[0] and self.min[1] <= width <= self.max[1]

    @property
    def fixed(self) -> bool:
        return self.min == self.max

    def describe(self) -> str:
        """'min 32x32, opt 416x416, max 832x832' (height x width)."""
        return ', '.join(f'{label} {h}x{w}' for label, (h, w) in
                         (('min', self.min), ('opt', self.opt), ('max', self.max)))

    def to_dict(self) -> Dict[str, list]:
        return {'min': list(self.min), 'opt': list(self.opt), 'max': list(self.max),
                'multiple': self.multiple}


def parse_size(text: Union[str, Sequence[int]]) -> Size:
    """'448x1280' (height x width) or (448, 1280) -> (448, 1280); positive whole numbers."""
    if isinstance(text, str):
        pieces = text.lower().replace(' ', '').split('x')
        try:
            values = tuple(int(p) for p in pieces)
        except ValueError:
            raise ProfileError(f'size {text!r}: expected HEIGHTxWIDTH, e.g. 448x1280') from None
    else:
        try:
            values = tuple(text)
        except TypeError:
            raise ProfileError(f'size {text!r}: expected HEIGHTxWIDTH or [height, width]') from None
    if len(values) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                                   for v in values):
        raise ProfileError(f'size {text!r}: expected HEIGHTxWIDTH with positive whole numbers')
    return values[0], values[1]


def default_max_size(spec: InputSpec, max_aspect: int = DEFAULT_MAX_ASPECT) -> Size:
    """A square whose side holds the long side of every aspect-keeping input of the trained pixel
    count up to ``max_aspect``:1 (416x416 trained -> 832x832), within MAX_INPUT_PIXELS."""
    m = spec.size_multiple
    side = math.ceil(math.sqrt(spec.height * spec.width * max_aspect) / m) * m
    side = max(side, spec.height, spec.width)
    limit = math.isqrt(MAX_INPUT_PIXELS) // m * m
    return min(side, limit), min(side, limit)


def input_size_range(spec: InputSpec, min_size: Optional[Sequence[int]] = None,
                     max_size: Optional[Sequence[int]] = None) -> SizeRange:
    """The (height, width) box of an engine built from a bundle with this input spec.

    Fixed bundles: the trained size only. Flexible: ``min_size`` (default one ``size_multiple``
    square) up to ``max_size`` (default :func:`default_max_size`), both multiples of the bundle's
    size_multiple around the trained size; the max box is at most MAX_INPUT_PIXELS pixels.
    """
    spec_hw = (spec.height, spec.width)
    if not spec.flexible:
        for label, size in (('min', min_size), ('max', max_size)):
            if size is not None and tuple(size) != spec_hw:
                raise ProfileError(f'input {spec.name!r} is fixed at {spec.height}x{spec.width}; '
                                   f'{label} size {size[0]}x{size[1]} needs a flexible bundle')
        return SizeRange(spec_hw, spec_hw, spec_hw, 1)
    m = spec.size_multiple
    low = parse_size(min_size) if min_size is not None else (m, m)
    high = parse_size(max_size) if max_size is not None else default_max_size(spec)
    for label, (h, w) in (('min', low), ('max', high)):
        if h % m or w % m:
            raise ProfileError(f'{label} size {h}x{w}: height and width must be multiples of the '
                               f'bundle\'s size_multiple {m}')
    if low[0] > spec.height or low[1] > spec.width:
        raise ProfileError(f'min size {low[0]}x{low[1]}: at most the trained {spec.height}x{spec.width}')
    if high[0] < spec.height or high[1] < spec.width:
        raise ProfileError(f'max size {high[0]}x{high[1]}: at least the trained {spec.height}x{spec.width}')
    if high[0] * high[1] > MAX_INPUT_PIXELS:
        raise ProfileError(f'max size {high[0]}x{high[1]} = {high[0] * high[1]} pixels is over '
                           f'MAX_INPUT_PIXELS = {MAX_INPUT_PIXELS}')
    return SizeRange(low, spec_hw, high, m)


def profile_shapes(bundle_input_spec: InputSpec, batch: Sequence[int] = (1, 1, 1),
                   max_size: Optional[Sequence[int]] = None, min_size: Optional[Sequence[int]] = None
                   ) -> Dict[str, Tuple[Shape, Shape, Shape]]:
    """{input name: (min shape, opt shape, max shape)} for ``IOptimizationProfile.set_shape``:
    the batch profile times the :func:`input_size_range` box."""
    spec = bundle_input_spec
    low, opt, high = check_batch(tuple(batch))
    sizes = input_size_range(spec, min_size, max_size)
    c = spec.channels
    return {spec.name: ((low, c) + sizes.min, (opt, c) + sizes.opt, (high, c) + sizes.max)}


def size_range_of_shapes(shapes: Tuple[Shape, Shape, Shape], multiple: int = 1) -> SizeRange:
    """The (height, width) box of NCHW profile shapes (what TensorRT's
    ``get_tensor_profile_shape(name, 0)`` returns)."""
    low, opt, high = (tuple(int(d) for d in s) for s in shapes)
    if any(len(s) != 4 for s in (low, opt, high)):
        raise ProfileError(f'profile shapes {[list(s) for s in (low, opt, high)]}: expected NCHW')
    return SizeRange(low[2:], opt[2:], high[2:], multiple)


def check_input_shape(shape: Sequence[int], sizes: SizeRange, batch: Sequence[int]) -> Optional[str]:
    """None when an NCHW input ``shape`` is inside the engine's profile, else what is outside."""
    n, _, h, w = (int(d) for d in shape)
    problems = []
    if not batch[0] <= n <= batch[2]:
        problems.append(f'batch {n} is outside {batch[0]}..{batch[2]}')
    if not sizes.admits(h, w):
        problems.append(f'input {h}x{w} is outside the profile box height {sizes.min[0]}..{sizes.max[0]}, '
                        f'width {sizes.min[1]}..{sizes.max[1]}')
    return '; '.join(problems) or None


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
