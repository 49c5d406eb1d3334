"""Fuzz bundle.yaml: every mutation of a valid file gives a BundleError naming the file, or a
bundle that honours every documented limit (and survives its own round trip).

Two targets: structured mutations of the parsed mapping (delete, misspell, add a key; replace a
value with NaN, inf, a huge or tiny number, a wrong type, a deep nest), and text mutations of the
YAML itself (bytes inserted or cut, deep brackets, aliases, non-UTF-8). ROS-free and torch-free.
"""
from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import yaml

from hypothesis import given, strategies as st  # noqa: E402

from aiat_perception.inference.bundle import (KNOWN_KEYS, MAX_ABS_MEAN,  # noqa: E402
                                              MAX_INPUT_PIXELS, MAX_STD, MIN_STD, Bundle,
                                              BundleError, bundle_from_dict, read_bundle_yaml)
from aiat_perception.inference.synthetic import synthetic_meta  # noqa: E402

from .outcomes import Outcomes  # noqa: E402
from .yaml_text import field_paths, mutate_fields, mutate_text  # noqa: E402

OUTCOMES = Outcomes(__name__)
SOURCE = Path('/fuzz/bundle/bundle.yaml')


@pytest.fixture(scope='module', autouse=True)
def _report_outcomes():
    yield
    OUTCOMES.report()


def _valid() -> dict:
    meta = synthetic_meta()   # 64x64, strides 8/16/32 (84 cells), 3 classes, reg_max 7
    meta.update(schema_version=1, model={'file': 'model.onnx', 'sha256': 'ab' * 32,
                                         'format': 'onnx', 'opset': 17})
    meta['outputs']['scores']['shape'] = ['batch', 84, 3]
    meta['outputs']['boxes']['shape'] = ['batch', 84, 32]
    return bundle_from_dict(meta, SOURCE.parent, SOURCE).to_dict()


VALID = _valid()
PATHS = list(field_paths(VALID))


def _deep(depth):
    value = 1
    for _ in range(depth):
        value = {'k': value}
    return value


HOSTILE = st.one_of(
    st.sampled_from([float('nan'), float('inf'), -float('inf'), 1e300, -1e300, 1e-300, 5e-324,
                     0, -1, 0.0, 2 ** 63, 10 ** 30, '', 'x', None, [], {}, True, False,
                     [float('nan')] * 3, [1e-300] * 3, [1e300] * 3, [0, 0, 0], ['a', 'b', 'c'],
                     100000, 4097, 4096, 65536, 'batch']),
    st.integers(-10 ** 6, 10 ** 6), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.integers(14, 24).map(_deep))


def _typo(draw, key: str) -> str:
    kind = draw(st.sampled_from(['drop', 'double', 'swap', 'case', 'suffix']))
    if not key:
        return 'x'
    at = draw(st.integers(0, len(key) - 1))
    if kind == 'drop':
        out = key[:at] + key[at + 1:]
    elif kind == 'double':
        out = key[:at] + key[at] + key[at:]
    elif kind == 'swap' and len(key) > 1:
        at = min(at, len(key) - 2)
        out = key[:at] + key[at + 1] + key[at] + key[at + 2:]
    elif kind == 'case':
        out = key.upper()
    else:
        out = key + '_'
    return out if out != key else key + 's'


@st.composite
def mutated_documents(draw):
    data = copy.deepcopy(VALID)
    mutations = mutate_fields(draw, data, PATHS, HOSTILE, _typo, ['extra', 'threshold', 'nms', 'Input', 'means'])
    return data, mutations


def _check_bundle(bundle: Bundle, data: dict, source: Path = SOURCE) -> None:
    """What every accepted bundle must satisfy (the documented limits)."""
    inp = bundle.input
    assert all(math.isfinite(m) and abs(m) <= MAX_ABS_MEAN for m in inp.mean)
    assert all(math.isfinite(s) and MIN_STD <= s <= MAX_STD for s in inp.std)
    assert math.isfinite(inp.pad_value)
    assert 1 <= inp.height * inp.width <= MAX_INPUT_PIXELS
    post = bundle.postprocess
    assert 0 <= post.score_threshold <= 1 and 0 <= post.nms_iou_threshold <= 1
    assert post.max_detections >= 1 and post.pre_nms_top_k >= 1

    def known(level, mapping):
        assert set(mapping) <= set(KNOWN_KEYS[level]), (level, sorted(map(str, mapping)))
    known('', data)
    for level in ('model', 'input', 'outputs', 'decoder'):
        known(level, data[level])
    known('postprocess', data.get('postprocess', {}))
    again = bundle_from_dict(bundle.to_dict(), source.parent, source)
    assert again == bundle


@given(mutated_documents())
def test_fuzz_bundle_fields(case):
    data, mutations = case
    try:
        bundle = bundle_from_dict(data, SOURCE.parent, SOURCE)
    except BundleError as exc:
        assert str(exc).startswith(f'{SOURCE}: '), str(exc)
        OUTCOMES.record('bundle.fields', 'BundleError')
        return
    _check_bundle(bundle, data)
    OUTCOMES.record('bundle.fields', 'valid')


VALID_TEXT = yaml.safe_dump(VALID, sort_keys=False).encode()
SNIPPETS = [b'[' * 40, b'{a: ' * 40, b'&a [*a]', b'*a', b'\xff\xfe\x00', b'\x80\x81',
            b': : :', b'\t', b'- ', b'!!python/object/apply:os.system ["true"]',
            b'!!binary AAAA', b'? ', b'.nan', b'.inf', b'1e999', b'0x7fffffffffffffff',
            b'\n  - nested\n', b'"\\ud800"', b'<<: *a', b'---\n']


@st.composite
def mutated_texts(draw):
    return mutate_text(draw, VALID_TEXT, SNIPPETS)


@pytest.fixture(scope='module')
def yaml_file(tmp_path_factory):
    return tmp_path_factory.mktemp('fuzz-bundle') / 'bundle.yaml'


@given(text=mutated_texts())
def test_fuzz_bundle_yaml_text(yaml_file, text):
    yaml_file.write_bytes(text)
    try:
        data = read_bundle_yaml(yaml_file)
        bundle = bundle_from_dict(data, yaml_file.parent, yaml_file)
    except BundleError as exc:
        assert str(exc).startswith(f'{yaml_file}: '), str(exc)
        OUTCOMES.record('bundle.yaml_text', 'BundleError')
        return
    _check_bundle(bundle, data, yaml_file)
    OUTCOMES.record('bundle.yaml_text', 'valid')
