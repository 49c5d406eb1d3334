"""Optimization-profile shapes for an engine, from the bundle's input spec.

Today a bundle has one fixed input size, so only the batch varies between the profile's min, opt and
max. When bundles gain flexible input sizes with a maximum-pixel rule, :func:`profile_shapes` is the
one function that changes: it will spread height and width over the allowed range too.
"""
from __future__ import annotations

from typing import Dict, Sequence, Tuple, Union

from ..inference.bundle import InputSpec

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


def profile_shapes(bundle_input_spec: InputSpec, batch: Sequence[int] = (1, 1, 1)
                   ) -> Dict[str, Tuple[Shape, Shape, Shape]]:
    """{input name: (min shape, opt shape, max shape)} for ``IOptimizationProfile.set_shape``."""
    spec = bundle_input_spec
    low, opt, high = check_batch(tuple(batch))
    chw = (spec.channels, spec.height, spec.width)
    return {spec.name: ((low,) + chw, (opt,) + chw, (high,) + chw)}


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
