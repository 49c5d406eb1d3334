"""Optimization-profile shapes from the bundle's input spec, and batch-profile parsing."""
from __future__ import annotations

import pytest

from aiat_perception.engine.profile import (MAX_BATCH, ProfileError, check_network_input, parse_batch,
                                            profile_shapes)
from aiat_perception.inference.bundle import InputSpec


def _spec(color='BGR', h=416, w=416, name='images'):
    ch = 1 if color == 'GRAY' else 3
    return InputSpec(name=name, height=h, width=w, color_order=color, resize='stretch',
                     mean=(0.0,) * ch, std=(1.0,) * ch)


def test_profile_shapes_follow_the_input_spec():
    assert profile_shapes(_spec(), (1, 4, 8)) == {
        'images': ((1, 3, 416, 416), (4, 3, 416, 416), (8, 3, 416, 416))}
    assert profile_shapes(_spec('GRAY', 64, 96, 'x')) == {
        'x': ((1, 1, 64, 96), (1, 1, 64, 96), (1, 1, 64, 96))}


def test_profile_shapes_of_the_pretrained_bundle_layout(tmp_path):
    from aiat_perception.inference.bundle import load_bundle
    from aiat_perception.inference.synthetic import make_synthetic_bundle
    bundle = load_bundle(make_synthetic_bundle(tmp_path / 'b'))
    shapes = profile_shapes(bundle.input, (2, 2, 2))
    assert shapes == {bundle.input.name: ((2, 3, bundle.input.height, bundle.input.width),) * 3}


@pytest.mark.parametrize('text, expected', [('1', (1, 1, 1)), ('4', (4, 4, 4)), ('1:4:8', (1, 4, 8)),
                                            (' 2:2:2 ', (2, 2, 2)), (3, (3, 3, 3)), ((1, 2, 3), (1, 2, 3))])
def test_parse_batch(text, expected):
    assert parse_batch(text) == expected


@pytest.mark.parametrize('text, message', [
    ('0', 'needs 1 <= min'), ('4:2:1', 'needs 1 <= min <= opt <= max'), ('1:2', 'MIN:OPT:MAX'),
    ('a:b:c', 'whole numbers'), ('1:1:4000', f'above {MAX_BATCH}'), ('', 'whole numbers'),
    ((1.5, 2, 3), 'three whole numbers'), ((True, 1, 1), 'three whole numbers')])
def test_bad_batches_are_refused(text, message):
    with pytest.raises(ProfileError, match=message):
        parse_batch(text)


def test_network_input_must_admit_the_profile():
    shapes = profile_shapes(_spec(), (1, 2, 4))
    check_network_input('images', (-1, 3, 416, 416), shapes['images'])
    check_network_input('images', (-1, 3, -1, -1), shapes['images'])
    with pytest.raises(ProfileError, match=r"batch is fixed at 1 in the ONNX graph .* build with --batch 1"):
        check_network_input('images', (1, 3, 416, 416), shapes['images'])
    with pytest.raises(ProfileError, match='dimension 2 is fixed at 320'):
        check_network_input('images', (-1, 3, 320, 416), shapes['images'])
    with pytest.raises(ProfileError, match='rank 3'):
        check_network_input('images', (-1, 3, 416), shapes['images'])


def test_flexible_profile_spreads_height_and_width_within_max_input_pixels():
    import dataclasses

    import pytest

    from aiat_perception.inference.bundle import MAX_INPUT_PIXELS

    spec = dataclasses.replace(_spec(), height=416, width=416, flexible=True, size_multiple=32)
    (low, opt, high), = profile_shapes(spec, (1, 2, 4)).values()
    assert low == (1, 3, 32, 32) and opt == (2, 3, 416, 416) and high[:2] == (4, 3)
    assert high[2] * high[3] <= MAX_INPUT_PIXELS and high[2] % 32 == 0
    assert profile_shapes(spec, (1, 1, 1), (448, 1280))[spec.name][2] == (1, 3, 448, 1280)
    for bad in ((448, 1270), (384, 1280), (4096, 8192)):
        with pytest.raises(ProfileError):
            profile_shapes(spec, (1, 1, 1), bad)
    with pytest.raises(ProfileError, match='flexible'):
        profile_shapes(_spec(), (1, 1, 1), (384, 1280))
