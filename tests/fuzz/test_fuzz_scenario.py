"""Fuzz scenario files: every mutation of the reference scenarios gives a ScenarioError naming
the file, or a scenario whose every number is finite and within its documented range.

Structured mutations of the parsed mapping (replace a value with NaN, inf, huge, a wrong type,
a key of another type; delete; misspell; add) and text mutations of the YAML (bytes inserted or
cut, deep brackets, aliases, non-UTF-8). Parsing needs no PyBullet, but the file belongs to the
simulator's part (marker `sim`).
"""
from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path

import pytest
import yaml

from hypothesis import given, strategies as st  # noqa: E402

from aiat_perception.sim.scenario import (MAX_CAMERA_SIDE, MAX_LIDAR_BEAMS,  # noqa: E402
                                          MAX_LIDAR_POINTS,
                                          Scenario, ScenarioError, load_scenario,
                                          parse_scenario, scenario_dir)

from .outcomes import Outcomes  # noqa: E402
from .yaml_text import field_paths, mutate_fields, mutate_text  # noqa: E402

OUTCOMES = Outcomes(__name__)
FILES = sorted(scenario_dir().glob('*.yaml'))
DOCS = {path.name: yaml.safe_load(path.read_text()) for path in FILES}
SOURCE = '/fuzz/scenario.yaml'


@pytest.fixture(scope='module', autouse=True)
def _report_outcomes():
    yield
    OUTCOMES.report()


PATHS = {name: list(field_paths(doc)) for name, doc in DOCS.items()}


def _deep(depth):
    value = 1
    for _ in range(depth):
        value = [value]
    return value


HOSTILE = st.one_of(
    st.sampled_from([float('nan'), float('inf'), -float('inf'), 1e300, -1e300, 1e-300, 0, -1,
                     2 ** 63, 10 ** 400, '', 'x', None, [], {}, True, [float('nan')] * 2,
                     [1e308, 1e308], [[0, 0], [float('inf'), 0]], 10 ** 9, 100000, 1.5,
                     {1: 2}, {None: 1}, {(1, 2): 3}]),
    st.integers(-10 ** 6, 10 ** 6), st.floats(), st.text(max_size=8),
    st.integers(20, 40).map(_deep))


def _misspelt(draw, key):
    return draw(st.sampled_from([str(key) + 's', str(key)[:-1], 7, None, True]))


@st.composite
def mutated_scenarios(draw):
    name = draw(st.sampled_from(sorted(DOCS)))
    data = copy.deepcopy(DOCS[name])
    mutate_fields(draw, data, PATHS[name], HOSTILE, _misspelt, ['extra', 3, None, 2.5])
    return data


def _finite_everywhere(value, where='scenario'):
    if dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            _finite_everywhere(getattr(value, f.name), f'{where}.{f.name}')
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _finite_everywhere(v, f'{where}[{i}]')
    elif isinstance(value, float):
        assert math.isfinite(value), where


def _check_scenario(sc: Scenario) -> None:
    _finite_everywhere(sc)
    cam = sc.ego.camera
    assert 8 <= cam.width <= MAX_CAMERA_SIDE and 8 <= cam.height <= MAX_CAMERA_SIDE
    assert 2 <= sc.ego.lidar_2d.beams <= MAX_LIDAR_BEAMS
    assert sc.ego.lidar_3d.rings * 360.0 / sc.ego.lidar_3d.horizontal_resolution_deg <= MAX_LIDAR_POINTS
    assert cam.far > cam.near > 0
    for lidar in (sc.ego.lidar_2d, sc.ego.lidar_3d):
        assert lidar.range_max > lidar.range_min >= 0
    names = [a.name for a in sc.actors]
    assert len(names) == len(set(names))


def _read_and_check(target: str, source: Path, read) -> None:
    """``read()`` either refuses with a ScenarioError naming ``source`` or gives a scenario within
    the documented limits; the outcome is counted for ``target``."""
    try:
        sc = read()
    except ScenarioError as exc:
        assert str(exc).startswith(f'{source}: '), str(exc)
        OUTCOMES.record(target, 'ScenarioError')
        return
    _check_scenario(sc)
    OUTCOMES.record(target, 'valid')


@given(mutated_scenarios())
def test_fuzz_scenario_fields(data):
    _read_and_check('scenario.fields', SOURCE, lambda: parse_scenario(data, SOURCE))


SNIPPETS = [b'[' * 40, b'{a: ' * 40, b'&a [*a]', b'*a', b'\xff\xfe\x00', b'\x80\x81', b': : :',
            b'\t', b'- ', b'!!python/object/apply:os.system ["true"]', b'.nan', b'.inf', b'1e999',
            b'\n  - nested\n', b'<<: *a', b'---\n', b'? [1, 2]\n: 3\n', b'1: 2\n']
TEXTS = {path.name: path.read_bytes() for path in FILES}


@st.composite
def mutated_texts(draw):
    return mutate_text(draw, TEXTS[draw(st.sampled_from(sorted(TEXTS)))], SNIPPETS)


@pytest.fixture(scope='module')
def scenario_file(tmp_path_factory):
    return tmp_path_factory.mktemp('fuzz-scenario') / 'scenario.yaml'


@given(text=mutated_texts())
def test_fuzz_scenario_yaml_text(scenario_file: Path, text):
    scenario_file.write_bytes(text)
    _read_and_check('scenario.yaml_text', scenario_file, lambda: load_scenario(scenario_file))
