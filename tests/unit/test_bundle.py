"""Model bundle: round trip and every validation failure, on small real ONNX graphs."""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from aiat_perception.inference.bundle import (
    SCHEMA_VERSION, Bundle, BundleError, load_bundle, write_bundle)
from aiat_perception.inference.synthetic import build_onnx, make_synthetic_bundle, synthetic_meta


@pytest.fixture
def bundle_dir(tmp_path: Path) -> Path:
    return make_synthetic_bundle(tmp_path / 'bundle')


def _edit_yaml(directory: Path, edit) -> Path:
    path = directory / 'bundle.yaml'
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _replace_model(directory: Path, tmp_path: Path, **graph) -> Path:
    """Swap in another graph and re-sign it, so only the graph mismatch is left to find."""
    model = directory / 'model.onnx'
    build_onnx(tmp_path / 'other.onnx', **graph)
    model.write_bytes((tmp_path / 'other.onnx').read_bytes())
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    _edit_yaml(directory, lambda d: d['model'].__setitem__('sha256', digest))
    return model


def test_round_trip(bundle_dir: Path):
    bundle = load_bundle(bundle_dir)
    assert isinstance(bundle, Bundle)
    assert bundle.schema_version == SCHEMA_VERSION
    assert bundle.onnx_path == bundle_dir / 'model.onnx'
    assert bundle.model.sha256 == hashlib.sha256(bundle.onnx_path.read_bytes()).hexdigest()
    assert bundle.model.opset == 17
    assert (bundle.input.height, bundle.input.width, bundle.input.channels) == (64, 64, 3)
    assert bundle.input.color_order == 'BGR' and bundle.input.resize == 'stretch'
    assert bundle.input.mean == pytest.approx((103.53, 116.28, 123.675))
    assert bundle.classes == ('class0', 'class1', 'class2')
    assert bundle.decoder.strides == (8, 16, 32) and bundle.decoder.reg_max == 7
    assert bundle.num_cells == 64 + 16 + 4
    assert bundle.outputs['scores'].shape == ('batch', 84, 3)
    assert bundle.outputs['boxes'].shape == ('batch', 84, 32)
    assert bundle.postprocess.score_threshold == 0.35
    assert bundle.provenance['license'] == 'Apache-2.0' and 'created' in bundle.provenance
    # load via the yaml path too, and re-writing the loaded metadata gives the same bundle
    assert load_bundle(bundle_dir / 'bundle.yaml') == bundle
    again = write_bundle(bundle_dir.parent / 'copy', bundle.onnx_path, bundle.to_dict())
    assert load_bundle(again).to_dict() == bundle.to_dict()


def test_write_bundle_letterbox_gray(tmp_path: Path):
    directory = make_synthetic_bundle(tmp_path / 'gray', channels=1, color_order='GRAY',
                                      resize='letterbox', height=96, width=128, num_classes=5,
                                      reg_max=10)
    bundle = load_bundle(directory)
    assert bundle.input.channels == 1 and bundle.input.resize == 'letterbox'
    assert bundle.num_classes == 5 and bundle.outputs['boxes'].shape[2] == 44
    assert bundle.num_cells == 12 * 16 + 6 * 8 + 3 * 4


def test_load_without_onnx_package_uses_onnxruntime(bundle_dir: Path, tmp_path: Path, monkeypatch):
    # The vehicle may have onnxruntime but not onnx: the graph check must still work.
    other = make_synthetic_bundle(tmp_path / 'other')
    _replace_model(other, tmp_path, num_classes=4)
    monkeypatch.setitem(sys.modules, 'onnx', None)
    assert load_bundle(bundle_dir).num_classes == 3
    bundle_dir = other
    with pytest.raises(BundleError, match=r'model\.onnx.*4 classes.*says 3'):
        load_bundle(bundle_dir)


def test_missing_directory(tmp_path: Path):
    with pytest.raises(BundleError, match=r'nowhere: bundle directory does not exist'):
        load_bundle(tmp_path / 'nowhere')


def test_missing_bundle_yaml(bundle_dir: Path):
    (bundle_dir / 'bundle.yaml').unlink()
    with pytest.raises(BundleError, match=r'bundle\.yaml: missing'):
        load_bundle(bundle_dir)


def test_missing_model_file(bundle_dir: Path):
    (bundle_dir / 'model.onnx').unlink()
    with pytest.raises(BundleError, match=r'model\.onnx: model file missing'):
        load_bundle(bundle_dir)


def test_corrupt_yaml(bundle_dir: Path):
    (bundle_dir / 'bundle.yaml').write_text('schema_version: 1\ninput: {name: [unclosed\n')
    with pytest.raises(BundleError, match=r'bundle\.yaml: not valid YAML'):
        load_bundle(bundle_dir)


def test_yaml_not_a_mapping(bundle_dir: Path):
    (bundle_dir / 'bundle.yaml').write_text('- just\n- a list\n')
    with pytest.raises(BundleError, match=r'bundle\.yaml: top level must be a mapping'):
        load_bundle(bundle_dir)


@pytest.mark.parametrize('path, pattern', [
    (('classes',), r"missing key 'classes'"),
    (('input', 'height'), r"missing key 'input\.height'"),
    (('decoder', 'reg_max'), r"missing key 'decoder\.reg_max'"),
    (('outputs', 'boxes'), r"missing key 'outputs\.boxes'"),
    (('model', 'sha256'), r"missing key 'model\.sha256'"),
])
def test_missing_keys(bundle_dir: Path, path, pattern):
    def drop(data):
        for key in path[:-1]:
            data = data[key]
        del data[path[-1]]
    _edit_yaml(bundle_dir, drop)
    with pytest.raises(BundleError, match=r'bundle\.yaml: ' + pattern):
        load_bundle(bundle_dir)


@pytest.mark.parametrize('section, key, value, pattern', [
    ('input', 'color_order', 'YUV', r"input\.color_order: 'YUV' is not one of"),
    ('input', 'mean', [1.0, 2.0], r'input\.mean: expected a list of 3 numbers'),
    ('input', 'height', -4, r'input\.height: expected an integer >= 1'),
    ('decoder', 'type', 'yolo', r"decoder\.type: 'yolo' is not one of"),
    ('postprocess', 'score_threshold', 1.5, r'postprocess\.score_threshold: expected a number'),
])
def test_bad_field_values(bundle_dir: Path, section, key, value, pattern):
    _edit_yaml(bundle_dir, lambda d: d[section].__setitem__(key, value))
    with pytest.raises(BundleError, match=r'bundle\.yaml: ' + pattern):
        load_bundle(bundle_dir)


def test_wrong_schema_version(bundle_dir: Path):
    _edit_yaml(bundle_dir, lambda d: d.__setitem__('schema_version', 2))
    with pytest.raises(BundleError, match=r'bundle\.yaml: schema_version is 2, this code reads version 1'):
        load_bundle(bundle_dir)


def test_sha256_mismatch(bundle_dir: Path):
    model = bundle_dir / 'model.onnx'
    data = bytearray(model.read_bytes())
    data[-10] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r'model\.onnx: sha256 [0-9a-f]+ does not match model\.sha256'):
        load_bundle(bundle_dir)


def _swap_model_file(bundle_dir: Path, data: bytes) -> None:
    """Another model file, with its hash in bundle.yaml (so only the model itself is wrong)."""
    (bundle_dir / 'model.onnx').write_bytes(data)
    _edit_yaml(bundle_dir, lambda d: d['model'].__setitem__('sha256', hashlib.sha256(data).hexdigest()))


def test_onnx_does_not_parse(bundle_dir: Path, tmp_path: Path):
    _swap_model_file(bundle_dir, b'\x08\x07this is not a protobuf' * 10)
    with pytest.raises(BundleError, match=r'model\.onnx: not a valid ONNX model'):
        load_bundle(bundle_dir)


def test_onnx_does_not_parse_onnxruntime(bundle_dir: Path, monkeypatch):
    monkeypatch.setitem(sys.modules, 'onnx', None)
    _swap_model_file(bundle_dir, b'garbage' * 100)
    with pytest.raises(BundleError, match=r'model\.onnx: ONNX Runtime cannot load the model'):
        load_bundle(bundle_dir)


@pytest.mark.parametrize('graph, pattern', [
    (dict(input_name='input_1'), r"graph has no input 'images' \(metadata input\.name\)"),
    (dict(scores_name='cls'), r"graph has no output 'scores' \(metadata outputs\.scores\.name\)"),
    (dict(boxes_name='reg'), r"graph has no output 'box_dist' \(metadata outputs\.boxes\.name\)"),
    (dict(channels=1), r"input 'images' has 1 channels, metadata color_order BGR needs 3"),
    (dict(height=96), r"input 'images' height is 96, metadata input\.height is 64"),
    (dict(num_classes=4), r"output 'scores' has 4 classes, metadata says 3"),
    (dict(reg_max=10), r"output 'box_dist' has 44 box values \(4 x 8 bins\), metadata says 32"),
    (dict(strides=(8, 16)), r"output 'scores' has 80 cells, .* gives 84"),
])
def test_onnx_mismatches_metadata(bundle_dir: Path, tmp_path: Path, graph, pattern):
    _replace_model(bundle_dir, tmp_path, **graph)
    with pytest.raises(BundleError, match=r'model\.onnx: ' + pattern):
        load_bundle(bundle_dir)


def test_onnx_rank_mismatch(bundle_dir: Path, tmp_path: Path):
    import onnx
    from onnx import TensorProto, helper
    # a graph whose input is [batch, 3, H*W] (rank 3) and outputs are rank 2
    graph = helper.make_graph(
        [helper.make_node('Identity', ['images'], ['scores']),
         helper.make_node('Identity', ['images'], ['box_dist'])], 'flat',
        [helper.make_tensor_value_info('images', TensorProto.FLOAT, ['batch', 3, 4096])],
        [helper.make_tensor_value_info('scores', TensorProto.FLOAT, ['batch', 3, 4096]),
         helper.make_tensor_value_info('box_dist', TensorProto.FLOAT, ['batch', 3, 4096])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    onnx.save(model, str(tmp_path / 'flat.onnx'))
    with pytest.raises(BundleError, match=r"flat\.onnx: input 'images' has rank 3 .* expected 4"):
        write_bundle(tmp_path / 'flat_bundle', tmp_path / 'flat.onnx', synthetic_meta())
    assert not (tmp_path / 'flat_bundle').exists()


def test_onnx_output_rank_mismatch(bundle_dir: Path, tmp_path: Path):
    import onnx
    from onnx import TensorProto, helper
    # right input, but outputs of rank 2 (e.g. an export that dropped the batch axis)
    graph = helper.make_graph(
        [helper.make_node('ReduceMean', ['images'], ['m'], keepdims=0, axes=[0, 1]),
         helper.make_node('Identity', ['m'], ['scores']),
         helper.make_node('Identity', ['m'], ['box_dist'])], 'rank2',
        [helper.make_tensor_value_info('images', TensorProto.FLOAT, ['batch', 3, 64, 64])],
        [helper.make_tensor_value_info('scores', TensorProto.FLOAT, [64, 64]),
         helper.make_tensor_value_info('box_dist', TensorProto.FLOAT, [64, 64])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)]),
              str(bundle_dir / 'model.onnx'))
    digest = hashlib.sha256((bundle_dir / 'model.onnx').read_bytes()).hexdigest()
    _edit_yaml(bundle_dir, lambda d: d['model'].__setitem__('sha256', digest))
    with pytest.raises(BundleError, match=r"model\.onnx: output 'scores' has rank 2 \[64, 64\], expected 3"):
        load_bundle(bundle_dir)


def test_write_bundle_rejects_mismatch_before_writing_yaml(tmp_path: Path):
    onnx_path = build_onnx(tmp_path / 'g.onnx', num_classes=3)
    meta = synthetic_meta(num_classes=5)
    with pytest.raises(BundleError, match=r"output 'scores' has 3 classes, metadata says 5"):
        write_bundle(tmp_path / 'out', onnx_path, meta)
    assert not (tmp_path / 'out').exists()


def test_write_bundle_missing_onnx(tmp_path: Path):
    with pytest.raises(BundleError, match=r'nothing\.onnx: ONNX file to bundle does not exist'):
        write_bundle(tmp_path / 'out', tmp_path / 'nothing.onnx', synthetic_meta())


def test_metadata_shape_inconsistent_with_classes(bundle_dir: Path):
    _edit_yaml(bundle_dir, lambda d: d['outputs']['scores'].__setitem__('shape', ['batch', 84, 7]))
    with pytest.raises(BundleError, match=r'outputs\.scores\.shape\[2\] is 7 but metadata says 3 classes'):
        load_bundle(bundle_dir)


def test_bundle_runs_in_onnxruntime(bundle_dir: Path):
    import onnxruntime as ort
    bundle = load_bundle(bundle_dir)
    session = ort.InferenceSession(str(bundle.onnx_path), providers=['CPUExecutionProvider'])
    scores, boxes = session.run(None, {'images': np.zeros((2, 3, 64, 64), np.float32)})
    assert scores.shape == (2, 84, 3) and boxes.shape == (2, 84, 32)
    assert np.all((scores > 0) & (scores < 1))


# --- issue 10, defect 5: numbers that are not numbers, misspelled keys, huge inputs, deep YAML ---

@pytest.mark.parametrize('key, value', [
    ('mean', [float('nan'), 116.28, 123.675]),
    ('mean', [float('inf'), 116.28, 123.675]),
    ('mean', [1e300, 116.28, 123.675]),
    ('std', [57.375, float('nan'), 58.395]),
    ('std', [57.375, 57.12, float('-inf')]),
    ('std', [1e-300, 57.12, 58.395]),
    ('std', [-57.375, 57.12, 58.395]),
    ('std', [1e300, 57.12, 58.395]),
    ('pad_value', float('inf')),
])
def test_non_finite_or_absurd_normalisation_is_refused(bundle_dir: Path, key, value):
    path = _edit_yaml(bundle_dir, lambda d: d['input'].__setitem__(key, value))
    with pytest.raises(BundleError, match=rf'bundle\.yaml: input\.{key}: ') as err:
        load_bundle(bundle_dir)
    assert str(path) in str(err.value)


@pytest.mark.parametrize('where, wrong, right', [
    ((), 'postproces', 'postprocess'),
    (('input',), 'colour_order', 'color_order'),
    (('decoder',), 'regmax', 'reg_max'),
    (('postprocess',), 'score_treshold', 'score_threshold'),
    (('model',), 'sha265', 'sha256'),
    (('outputs',), 'score', 'scores'),
    (('outputs', 'boxes'), 'shapes', 'shape'),
])
def test_unknown_keys_name_the_closest_valid_key(bundle_dir: Path, where, wrong, right):
    def rename(data):
        for key in where:
            data = data[key]
        if right in data and where != ('outputs',):
            data[wrong] = data.pop(right)
        else:
            data[wrong] = data.get(right, {'name': 'x', 'shape': ['batch', 84, 3]})
    path = _edit_yaml(bundle_dir, rename)
    prefix = '.'.join(where + (wrong,))
    with pytest.raises(BundleError, match=rf"unknown key '{prefix}' \(did you mean '{right}'\?\)") as err:
        load_bundle(bundle_dir)
    assert str(path) in str(err.value)


def test_misspelled_postprocess_does_not_silently_keep_defaults(bundle_dir: Path):
    _edit_yaml(bundle_dir, lambda d: d.__setitem__('postproces', {'score_threshold': 0.9}))
    with pytest.raises(BundleError, match='postproces'):
        load_bundle(bundle_dir)


def test_huge_input_size_is_refused(tmp_path: Path):
    # a graph with symbolic height/width accepts any size: the metadata's size is the only guard
    from aiat_perception.inference.bundle import MAX_INPUT_PIXELS
    directory = make_synthetic_bundle(tmp_path / 'big')
    _edit_yaml(directory, lambda d: (d['input'].update(height=100000, width=100000),
                                     d['outputs']['scores'].__setitem__('shape', ['batch', 'n', 3]),
                                     d['outputs']['boxes'].__setitem__('shape', ['batch', 'n', 32])))
    with pytest.raises(BundleError, match=r'bundle\.yaml: input\.height.*100000x100000.*limit'):
        load_bundle(directory)
    assert 416 * 416 <= MAX_INPUT_PIXELS < 100000 * 100000


@pytest.mark.parametrize('text', ['a: ' + '[' * 5000 + ']' * 5000 + '\n',
                                  'a: ' + '{b: ' * 3000 + '1' + '}' * 3000 + '\n',
                                  'x: &a [*a]\nschema_version: 1\n'],
                         ids=['deep-lists', 'deep-mappings', 'recursive-alias'])
def test_deeply_nested_or_recursive_yaml(bundle_dir: Path, text):
    (bundle_dir / 'bundle.yaml').write_text(text)
    with pytest.raises(BundleError, match=r'bundle\.yaml: .*(nested|recursi)') as err:
        load_bundle(bundle_dir)
    assert 'Traceback' not in str(err.value)


def test_deep_provenance_is_refused(bundle_dir: Path):
    deep = {}
    node = deep
    for _ in range(100):
        node['k'] = {}
        node = node['k']
    _edit_yaml(bundle_dir, lambda d: d['provenance'].__setitem__('deep', deep))
    with pytest.raises(BundleError, match=r'bundle\.yaml: provenance.*nested'):
        load_bundle(bundle_dir)
