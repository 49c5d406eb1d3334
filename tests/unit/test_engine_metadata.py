"""Engine metadata: writing, reading, validation, and every refusal of a mismatched engine."""
from __future__ import annotations

import json
import shlex

import pytest

from aiat_perception.engine.metadata import (EngineMetadata, EngineMetadataError, EngineMismatch,
                                             MachineFacts, build_command, check_engine, differences,
                                             metadata_path, read_metadata, write_metadata)
from aiat_perception.inference.bundle import load_bundle
from aiat_perception.inference.synthetic import make_synthetic_bundle

ORIN = MachineFacts('10.3.0', 'Orin', '8.7')


@pytest.fixture(scope='module')
def bundle(tmp_path_factory):
    return load_bundle(make_synthetic_bundle(tmp_path_factory.mktemp('b') / 'synthetic'))


def _meta(bundle, **changes):
    spec = bundle.input
    fields = dict(tensorrt_version='10.3.0', gpu_name='Orin', compute_capability='8.7', precision='fp16',
                  batch=(1, 2, 4), bundle_sha256=bundle.model.sha256, bundle_name=bundle.name,
                  input_name=spec.name, input_shape=(spec.channels, spec.height, spec.width),
                  builder_flags=('FP16',), workspace_mb=1024, created='2026-12-01T00:00:00+00:00',
                  engine_sha256='ab' * 32)
    fields.update(changes)
    return EngineMetadata(**fields)


def test_write_read_roundtrip(tmp_path, bundle):
    engine = tmp_path / 'model.engine'
    meta = _meta(bundle, calibration={'source': '/data/split.txt', 'images': 64}, extra={'a': 1})
    path = write_metadata(engine, meta)
    assert path == metadata_path(engine) == tmp_path / 'model.engine.json'
    data = json.loads(path.read_text())
    assert data['format'] == 'aiat-engine' and data['batch'] == {'min': 1, 'opt': 2, 'max': 4}
    assert data['tensorrt_version'] == '10.3.0' and data['gpu_name'] == 'Orin'
    assert data['compute_capability'] == '8.7' and data['bundle_sha256'] == bundle.model.sha256
    assert data['builder_flags'] == ['FP16'] and data['precision'] == 'fp16'
    assert read_metadata(engine) == meta == read_metadata(path)


def test_matching_engine_passes(bundle):
    meta = _meta(bundle)
    assert differences(meta, ORIN, bundle, 'fp16', 4) == []
    check_engine('/e/model.engine', meta, ORIN, bundle, 'fp16', 1)


@pytest.mark.parametrize('change, machine, expected', [
    ({'tensorrt_version': '8.6.2'}, ORIN, 'TensorRT version: engine built with 8.6.2, this machine has 10.3.0'),
    ({'compute_capability': '7.2', 'gpu_name': 'Xavier'}, ORIN,
     'GPU compute capability: engine built for 7.2 (Xavier), this GPU is 8.7 (Orin)'),
    ({'gpu_name': 'NVIDIA GeForce RTX 3080'}, MachineFacts('10.3.0', 'NVIDIA RTX A6000', '8.6'),
     "GPU: engine built on 'NVIDIA GeForce RTX 3080', this GPU is 'NVIDIA RTX A6000'"),
    ({'bundle_sha256': '0' * 64}, ORIN, 'bundle: engine built from model sha256 0000000000000000...'),
    ({'input_shape': (3, 320, 320)}, ORIN, "input: engine takes 'images' [3, 320, 320]"),
])
def test_each_difference_is_named(bundle, change, machine, expected):
    meta = _meta(bundle, **change)
    if 'gpu_name' in change and 'compute_capability' not in change:
        meta = _meta(bundle, compute_capability='8.6', **change)
    found = differences(meta, machine, bundle)
    assert len(found) == 1 and found[0].startswith(expected), found


def test_refusal_message_names_all_differences_and_the_rebuild_command(bundle, tmp_path):
    engine = tmp_path / 'cache' / 'model.engine'
    meta = _meta(bundle, tensorrt_version='8.6.2', compute_capability='7.2', gpu_name='Xavier',
                 calibration={'source': '/data/cal dir'})
    with pytest.raises(EngineMismatch) as info:
        check_engine(engine, meta, ORIN, bundle, precision='int8', batch=8)
    error = info.value
    text = str(error)
    assert str(engine) in text and 'TensorRT version' in text and 'compute capability' in text
    assert 'precision: engine is fp16, int8 was asked for' in text
    assert 'batch: engine profile 1:2:4 does not admit batch 8' in text
    assert len(error.differences) == 4
    words = shlex.split(error.command)
    assert words[:3] == ['aiat-engine', 'build', str(bundle.path)]
    assert words[words.index('--precision') + 1] == 'int8'
    assert words[words.index('--batch') + 1] == '1:2:8'
    assert words[words.index('--output') + 1] == str(engine)
    assert words[words.index('--calibration') + 1] == '/data/cal dir'
    assert error.command in text


def test_build_command_quotes_paths():
    cmd = build_command('/my bundles/b', 'fp32', (1, 1, 1), output='/c/x.engine', workspace_mb=512)
    assert shlex.split(cmd) == ['aiat-engine', 'build', '/my bundles/b', '--precision', 'fp32',
                                '--batch', '1:1:1', '--workspace', '512', '--output', '/c/x.engine']


def _write_raw(tmp_path, data):
    path = tmp_path / 'model.engine.json'
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


@pytest.mark.parametrize('mutate, message', [
    (lambda d: d.update(format='other'), "format is 'other'"),
    (lambda d: d.update(format_version=9), 'format_version 9'),
    (lambda d: d.update(precision='int4'), "precision 'int4' is not one of"),
    (lambda d: d.update(batch={'min': 4, 'opt': 1, 'max': 1}), 'batch: batch profile 4:1:1'),
    (lambda d: d.update(batch=[1, 1, 1]), 'batch: expected {min, opt, max}'),
    (lambda d: d.update(input_shape=[3, 0, 416]), 'input_shape: expected'),
    (lambda d: d.update(compute_capability='eight'), "compute_capability 'eight'"),
    (lambda d: d.pop('tensorrt_version'), 'tensorrt_version: expected a non-empty string'),
    (lambda d: d.update(workspace_mb=-5), 'workspace_mb: expected a positive whole number'),
    (lambda d: d.update(builder_flags='FP16'), 'builder_flags: expected a list'),
])
def test_bad_metadata_is_refused_with_the_file_named(tmp_path, bundle, mutate, message):
    data = _meta(bundle).to_dict()
    mutate(data)
    path = _write_raw(tmp_path, data)
    with pytest.raises(EngineMetadataError, match=message) as info:
        read_metadata(path)
    assert str(path) in str(info.value)


def test_unreadable_metadata(tmp_path):
    with pytest.raises(EngineMetadataError, match='engine metadata missing'):
        read_metadata(tmp_path / 'none.engine')
    with pytest.raises(EngineMetadataError, match='not valid JSON'):
        read_metadata(_write_raw(tmp_path, '{"format": '))
    with pytest.raises(EngineMetadataError, match='expected a JSON object'):
        read_metadata(_write_raw(tmp_path, '[1, 2]'))
    big = tmp_path / 'big.engine.json'
    big.write_text(' ' * (2 << 20))
    with pytest.raises(EngineMetadataError, match='too large'):
        read_metadata(big)
