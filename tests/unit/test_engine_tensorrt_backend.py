"""The ``tensorrt`` backend and builder: registry entry, the pure helpers, and (where TensorRT and a
GPU exist) a real fp32 engine compared with ONNX Runtime."""
from __future__ import annotations


import numpy as np
import pytest

from aiat_perception.engine import trt_api
from aiat_perception.engine.builder import (format_parser_error, network_flags, onnx_node_labels)
from aiat_perception.inference.backends import (BackendUnavailable, available_backends, backend_problem,
                                                create_backend)
from aiat_perception.inference.bundle import BundleError, load_bundle
from aiat_perception.inference.synthetic import make_synthetic_bundle
from aiat_perception.inference.tensorrt_backend import (availability, check_engine_io, concrete_shape,
                                                        tensor_name_map)

HAS_TRT = trt_api.tensorrt_problem() is None


@pytest.fixture(scope='module')
def bundle(tmp_path_factory):
    return load_bundle(make_synthetic_bundle(tmp_path_factory.mktemp('b') / 'synthetic'))


@pytest.mark.skipif(HAS_TRT, reason='checks the registry entry where TensorRT is not installed')
def test_registry_entry_reports_not_available_cleanly(bundle):
    assert 'tensorrt' in available_backends()
    problem = backend_problem('tensorrt')
    assert problem == availability()
    assert problem.startswith('TensorRT is not installed') and "'tensorrt>=8.6,<11'" in problem
    assert '\n' not in problem
    with pytest.raises(BackendUnavailable, match='tensorrt backend is not available: TensorRT is not installed'):
        create_backend('tensorrt', bundle)
    with pytest.raises(BackendUnavailable):
        create_backend('tensorrt', bundle.path, engine='/some/model.engine', precision='fp32')


def test_other_backends_report_available():
    assert backend_problem('onnxruntime') is None
    assert backend_problem('nope').startswith("unknown backend 'nope'")


@pytest.mark.parametrize('version, ok', [('8.6.1', True), ('8.6.2.3', True), ('10.3.0', True),
                                         ('10.13.0.35', True), ('8.5.3', False), ('11.0.0', False),
                                         ('11.4.0.106', False)])
def test_supported_tensorrt_versions(version, ok):
    if ok:
        trt_api.check_version(version)
    else:
        with pytest.raises(trt_api.TensorRTUnavailable, match=f'TensorRT {version} is not supported'):
            trt_api.check_version(version)
    assert trt_api.version_tuple('8.6.2.post1')[:3] == (8, 6, 2)


def test_network_flags_for_both_api_generations():
    assert network_flags('8.6.2', 0) == 1          # EXPLICIT_BATCH is bit 0
    assert network_flags('10.3.0', 0) == 0         # always explicit batch, flag deprecated
    assert network_flags('8.6.2', None) == 0


def _named_graph(path):
    from onnx import TensorProto, helper, save
    x = helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, 4])
    nodes = [helper.make_node('Relu', ['x'], ['a'], name='stem/Relu'),
             helper.make_node('Softmax', ['a'], ['y'], name='head/Softmax_3', axis=1)]
    save(helper.make_model(helper.make_graph(nodes, 'g', [x], [y])), str(path))
    return path


def test_parser_errors_name_the_node(tmp_path):
    labels = onnx_node_labels(_named_graph(tmp_path / 'g.onnx'))
    assert labels == [('stem/Relu', 'Relu'), ('head/Softmax_3', 'Softmax')]
    name, op = labels[1]
    # TensorRT 8.6: only the node index; the name comes from the ONNX graph
    assert format_parser_error('Assertion failed: axis in range', 'UNSUPPORTED_NODE', 1, labels=labels) == \
        f'node 1 "{name}" ({op}): Assertion failed: axis in range [UNSUPPORTED_NODE]'
    # TensorRT 10: name and operator from the parser
    assert format_parser_error('no importer', 'UNSUPPORTED_NODE', 7, 'head/Softmax_3', 'Softmax') == \
        'node 7 "head/Softmax_3" (Softmax): no importer [UNSUPPORTED_NODE]'
    assert format_parser_error('bad protobuf', 'MODEL_DESERIALIZE_FAILED') == \
        'bad protobuf [MODEL_DESERIALIZE_FAILED]'
    assert format_parser_error('x', '', 99, labels=labels) == 'node 99: x'
    assert onnx_node_labels('/no/such.onnx') == []


def test_engine_io_is_checked_against_the_bundle(bundle):
    spec = bundle.input
    cells, classes, box = bundle.num_cells, bundle.num_classes, bundle.outputs['boxes'].shape[2]
    good_in = {spec.name: (-1, 3, spec.height, spec.width)}
    good_out = {'scores': (-1, cells, classes), 'box_dist': (-1, cells, box)}
    assert check_engine_io(bundle, good_in, good_out) == []
    problems = check_engine_io(bundle, {'input_0': (1, 3, 64, 64)}, {'scores': (1, cells + 1, classes)})
    assert any("engine has no input 'images'" in p for p in problems)
    assert any("engine has no output 'box_dist'" in p for p in problems)
    assert any(f"engine output 'scores' is [1, {cells + 1}, {classes}]" in p for p in problems)
    assert check_engine_io(bundle, {spec.name: (-1, 1, spec.height, spec.width)}, good_out) == [
        f"engine input 'images' is [-1, 1, {spec.height}, {spec.width}], the bundle needs "
        f"[batch, 3, {spec.height}, {spec.width}]"]


def test_shapes_and_tensor_names():
    assert concrete_shape((-1, 3, 64, 64), 4) == (4, 3, 64, 64)
    assert concrete_shape((2, 84, 3), 4) == (2, 84, 3)
    with pytest.raises(BundleError, match='dynamic dimensions besides the batch'):
        concrete_shape((-1, 3, -1, 64), 4)
    assert tensor_name_map(['images', 'scores', 'box_dist']) == {
        'images': 'images', 'scores': 'scores', 'box_dist': 'box_dist'}
    assert tensor_name_map(['input_0', 'output_0', 'output_1'],
                           {'images': 'input_0', 'scores': 'output_0', 'box_dist': 'output_1'}) == {
        'images': 'input_0', 'scores': 'output_0', 'box_dist': 'output_1'}
    with pytest.raises(BundleError, match=r"maps to tensors \['x'\]"):
        tensor_name_map(['a'], {'images': 'x'})


@pytest.mark.skipif(not HAS_TRT, reason=f'needs TensorRT and a GPU: {trt_api.tensorrt_problem()}')
def test_fp32_engine_matches_onnxruntime(bundle, tmp_path):
    """Runs only where TensorRT and an NVIDIA GPU exist (never here; see scripts/device_check.sh)."""
    from aiat_perception.engine.builder import BuildOptions, build_engine
    result = build_engine(bundle, tmp_path / 'model.engine', BuildOptions(precision='fp32', batch=(1, 2, 4)))
    backend = create_backend('tensorrt', bundle, engine=result.engine_path)
    reference = create_backend('onnxruntime', bundle, device='cpu')
    batch = np.random.default_rng(0).normal(0, 1, (3, 3, 64, 64)).astype(np.float32)
    got, want = backend.run(batch), reference.run(batch)
    for name in want:
        assert got[name].dtype == np.float32 and got[name].shape == want[name].shape
        np.testing.assert_allclose(got[name], want[name], atol=1e-3)
    backend.close()
