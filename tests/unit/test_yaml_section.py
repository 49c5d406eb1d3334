"""The one YAML-section helper of the vehicle's readers (bundle.yaml, scenarios, launch graphs)."""
from __future__ import annotations

import math

import pytest

from aiat_perception.yaml_section import YamlSection, read_yaml


class FileError(ValueError):
    pass


def section(data, known=None):
    return YamlSection(data, 'f.yaml', 'top', FileError, known)


def test_typed_getters_and_defaults():
    s = section({'n': 3, 'x': 0.5, 'name': 'a', 'flag': True, 'v': [1, 2.5], 'sub': {'k': 1}})
    assert s.integer('n', minimum=1, maximum=5) == 3 and s.number('x', None, 0.0, 1.0) == 0.5
    assert s.number('n', integer=True) == 3 and s.string('name', choices=('a', 'b')) == 'a'
    assert s.boolean('flag') is True and s.numbers('v', 2) == (1.0, 2.5)
    assert s.section('sub').integer('k') == 1 and s.section('absent', None).data == {}
    assert s.number('missing', None) is None and s.string('missing', 'dflt') == 'dflt'
    s.finish()


@pytest.mark.parametrize('data, read, pattern', [
    ({}, lambda s: s.integer('n'), r"f\.yaml: missing key 'top\.n'"),
    ({'n': 2.5}, lambda s: s.integer('n'), r'f\.yaml: top\.n: expected an integer'),
    ({'x': math.nan}, lambda s: s.number('x'), r'top\.x: expected a number in .*finite'),
    ({'x': 10 ** 400}, lambda s: s.number('x'), r'top\.x: expected a number'),
    ({'x': 0.0}, lambda s: s.number('x', low=0.0, strict_low=True), r'top\.x: expected a number in \(0'),
    ({'x': True}, lambda s: s.number('x'), r'top\.x: expected a number'),
    ({'v': [1, 'a']}, lambda s: s.numbers('v', 2), r'top\.v: expected a list of 2 numbers'),
    ({'c': 'z'}, lambda s: s.string('c', choices=('a',)), r"top\.c: 'z' is not one of"),
    ({'sub': 3}, lambda s: s.section('sub'), r'f\.yaml: top\.sub must be a mapping, got int'),
])
def test_errors_name_the_file_and_key(data, read, pattern):
    with pytest.raises(FileError, match=pattern):
        read(section(data))


def test_unknown_keys_get_a_hint():
    with pytest.raises(FileError, match=r"unknown key 'top\.heigth' \(did you mean 'height'\?\)"):
        section({'heigth': 1}, known=('height', 'width'))
    s = section({'height': 1, 'colour': 2})
    s.integer('height')
    with pytest.raises(FileError, match=r"unknown key 'top\.colour' \(valid keys: height\)"):
        s.finish()


def test_read_yaml(tmp_path):
    good = tmp_path / 'good.yaml'
    good.write_text('a: 1\n')
    assert read_yaml(good, FileError) == {'a': 1}
    with pytest.raises(FileError, match='missing.yaml: cannot read'):
        read_yaml(tmp_path / 'missing.yaml', FileError)
    bad = tmp_path / 'bad.yaml'
    bad.write_text('a: [unclosed')
    with pytest.raises(FileError, match='bad.yaml: not valid YAML'):
        read_yaml(bad, FileError)
    bad.write_bytes(b'a: \xff\xfe')
    with pytest.raises(FileError, match='not UTF-8'):
        read_yaml(bad, FileError)
    with pytest.raises(FileError, match='more than a graph file needs'):
        read_yaml(good, FileError, max_bytes=2, what='graph file')
    deep = tmp_path / 'deep.yaml'
    deep.write_text('[' * 5000 + ']' * 5000)
    with pytest.raises(FileError, match='(nested too deeply|not valid YAML)'):
        read_yaml(deep, FileError)
