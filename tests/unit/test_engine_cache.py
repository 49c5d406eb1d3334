"""Engine cache: keys, directory names, lookups, and the start-up helper without TensorRT."""
from __future__ import annotations

import dataclasses
import importlib.util

import pytest

from aiat_perception.engine.cache import (ENGINE_FILE, EngineMissing, cache_entry, cache_key,
                                          default_cache_root, ensure_engine, find_cached_engine,
                                          timing_cache_path)
from aiat_perception.engine.metadata import EngineMetadata, MachineFacts, write_metadata
from aiat_perception.engine.trt_api import TensorRTUnavailable
from aiat_perception.inference.bundle import load_bundle
from aiat_perception.inference.synthetic import make_synthetic_bundle

ORIN = MachineFacts('10.3.0', 'Orin', '8.7')
HAS_TRT = importlib.util.find_spec('tensorrt') is not None


@pytest.fixture(scope='module')
def bundle(tmp_path_factory):
    return load_bundle(make_synthetic_bundle(tmp_path_factory.mktemp('b') / 'synthetic'))


def _key(**changes):
    args = dict(bundle_sha256='a' * 64, input_shape=(3, 64, 64), machine=ORIN, precision='fp16',
                batch=(1, 1, 1), builder_flags=('FP16',), calibration_source=None)
    args.update(changes)
    return cache_key(**args)


def test_cache_key_changes_with_everything_that_makes_engines_differ():
    base = _key()
    assert base == _key() and len(base) == 64
    variants = [_key(bundle_sha256='b' * 64), _key(input_shape=(3, 64, 96)),
                _key(machine=MachineFacts('8.6.2', 'Orin', '8.7')),
                _key(machine=MachineFacts('10.3.0', 'Orin', '8.6')),
                _key(machine=MachineFacts('10.3.0', 'Orin NX', '8.7')),
                _key(precision='fp32'), _key(batch=(1, 2, 4)), _key(builder_flags=('FP16', 'X'))]
    assert len({base, *variants}) == len(variants) + 1
    assert _key(builder_flags=('B', 'A')) == _key(builder_flags=('A', 'B'))
    # the calibration set matters only for int8
    assert _key(calibration_source='/x') == base
    assert _key(precision='int8', calibration_source='/x') != _key(precision='int8', calibration_source='/y')
    with pytest.raises(ValueError, match="precision 'bf16'"):
        _key(precision='bf16')


def test_cache_entry_is_readable_and_keyed(tmp_path, bundle):
    entry = cache_entry(tmp_path, bundle, ORIN, 'fp16', (1, 2, 4))
    assert entry.parent == tmp_path
    assert entry.name.startswith(f'{bundle.name}-fp16-b1-2-4-trt10.3.0-sm87-')
    assert entry != cache_entry(tmp_path, bundle, ORIN, 'fp32', (1, 2, 4))
    assert timing_cache_path(tmp_path, ORIN).name == 'timing-trt10.3.0-sm87-Orin.cache'


def test_default_cache_root_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv('AIAT_ENGINE_CACHE', str(tmp_path / 'engines'))
    assert default_cache_root() == tmp_path / 'engines'
    monkeypatch.delenv('AIAT_ENGINE_CACHE')
    monkeypatch.setenv('AIAT_CACHE', str(tmp_path / 'cache'))
    assert default_cache_root() == tmp_path / 'cache' / 'engines'


def _place_engine(entry, bundle, **changes):
    """An engine file with metadata, as ``aiat-engine build`` leaves it (the bytes are not an engine:
    the cache looks only at the metadata)."""
    spec = bundle.input
    fields = dict(tensorrt_version=ORIN.tensorrt_version, gpu_name=ORIN.gpu_name,
                  compute_capability=ORIN.compute_capability, precision='fp16', batch=(1, 1, 1),
                  bundle_sha256=bundle.model.sha256, bundle_name=bundle.name, input_name=spec.name,
                  input_shape=(spec.channels, spec.height, spec.width), builder_flags=('FP16',))
    fields.update(changes)
    entry.mkdir(parents=True, exist_ok=True)
    engine = entry / ENGINE_FILE
    engine.write_bytes(b'engine bytes')
    write_metadata(engine, EngineMetadata(**fields))
    return engine


def test_find_and_ensure_hit_the_cache_without_tensorrt(tmp_path, bundle):
    entry = cache_entry(tmp_path, bundle, ORIN, 'fp16', (1, 1, 1))
    assert find_cached_engine(entry, ORIN, bundle, 'fp16', (1, 1, 1)) is None
    engine = _place_engine(entry, bundle)
    assert find_cached_engine(entry, ORIN, bundle, 'fp16', (1, 1, 1)) == engine
    assert ensure_engine(bundle, 'fp16', (1, 1, 1), cache_root=tmp_path, machine=ORIN) == engine
    assert ensure_engine(bundle.path, 'fp16', (1, 1, 1), cache_root=tmp_path, machine=ORIN,
                         build_if_missing=False) == engine


def test_stale_or_damaged_entries_are_not_used(tmp_path, bundle):
    entry = cache_entry(tmp_path, bundle, ORIN, 'fp16', (1, 1, 1))
    engine = _place_engine(entry, bundle, tensorrt_version='8.6.2')
    assert find_cached_engine(entry, ORIN, bundle, 'fp16', (1, 1, 1)) is None
    _place_engine(entry, bundle, batch=(1, 1, 2))
    assert find_cached_engine(entry, ORIN, bundle, 'fp16', (1, 1, 1)) is None
    (entry / (ENGINE_FILE + '.json')).write_text('{broken')
    assert find_cached_engine(entry, ORIN, bundle, 'fp16', (1, 1, 1)) is None
    (entry / (ENGINE_FILE + '.json')).unlink()
    assert engine.is_file() and find_cached_engine(entry, ORIN, bundle, 'fp16', (1, 1, 1)) is None


def test_missing_engine_without_building_names_the_command(tmp_path, bundle):
    with pytest.raises(EngineMissing) as info:
        ensure_engine(bundle, 'int8', (1, 2, 4), cache_root=tmp_path, machine=ORIN,
                      build_if_missing=False, calibration='/data/split.txt')
    text = str(info.value)
    assert "no int8 engine for bundle 'synthetic' (batch 1:2:4)" in text
    assert f'aiat-engine build {bundle.path} --precision int8 --batch 1:2:4' in text
    assert '--calibration /data/split.txt' in text and '--output ' + str(tmp_path) in text


@pytest.mark.skipif(HAS_TRT, reason='checks the message given where TensorRT is not installed')
def test_building_a_missing_engine_without_tensorrt_says_what_to_install(tmp_path, bundle):
    with pytest.raises(TensorRTUnavailable, match=r"install TensorRT 8\.6-10\.x"):
        ensure_engine(bundle, 'fp16', (1, 1, 1), cache_root=tmp_path, machine=ORIN)
    with pytest.raises(TensorRTUnavailable, match='TensorRT is not installed'):
        ensure_engine(bundle, 'fp16', (1, 1, 1), cache_root=tmp_path)   # machine facts need TensorRT


def test_machine_facts_are_a_plain_record():
    assert dataclasses.asdict(ORIN) == {'tensorrt_version': '10.3.0', 'gpu_name': 'Orin',
                                        'compute_capability': '8.7'}


def test_onnxruntime_tensorrt_cache_dir_is_keyed_by_bundle_and_ort_version(tmp_path):
    from aiat_perception.engine.cache import ort_tensorrt_cache_dir
    a = ort_tensorrt_cache_dir('nanodet coco/416', 'ab' * 32, '1.20.1', root=tmp_path)
    assert a == tmp_path / 'onnxruntime-trt' / 'nanodet-coco-416-abababababab-ort1.20.1'
    assert not a.exists()
    assert ort_tensorrt_cache_dir('nanodet coco/416', 'ab' * 32, '1.22.0', root=tmp_path) != a
    assert ort_tensorrt_cache_dir('nanodet coco/416', 'cd' * 32, '1.20.1', root=tmp_path) != a
