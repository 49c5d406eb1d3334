"""A small, real ONNX graph with NanoDet's input/output layout, for tests and benchmarks.

Per stride: average-pool the image to the grid, a 1x1 convolution to class logits (+ sigmoid) and
to box-bin logits, flattened row-major and concatenated over strides, exactly the layout of the
bundle contract. Needs the ``onnx`` package (training/test environments; not the vehicle).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Sequence, Union

import numpy as np

from .bundle import write_bundle
from .cells import num_cells
from .preprocess import NANODET_BGR_MEAN, NANODET_BGR_STD


def build_onnx(path: Union[str, Path], height: int = 64, width: int = 64, num_classes: int = 3,
               strides: Sequence[int] = (8, 16, 32), reg_max: int = 7, channels: int = 3,
               input_name: str = 'images', scores_name: str = 'scores', boxes_name: str = 'box_dist',
               opset: int = 17, seed: int = 0, flexible: bool = False) -> Path:
    """``flexible``: symbolic height, width and cell count (the graph runs at any size)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    bins = reg_max + 1
    nodes, inits = [], []
    score_parts, box_parts = [], []
    inits.append(numpy_helper.from_array(np.array([0, 0, -1], np.int64), 'flat_shape'))
    for s in strides:
        pooled = f'pool{s}'
        nodes.append(helper.make_node('AveragePool', [input_name], [pooled], kernel_shape=[s, s],
                                      strides=[s, s], ceil_mode=1))
        for kind, out_ch, parts in (('cls', num_classes, score_parts), ('reg', 4 * bins, box_parts)):
            w = rng.normal(0, 1.0, (out_ch, channels, 1, 1)).astype(np.float32)
            b = rng.normal(0, 0.5, (out_ch,)).astype(np.float32)
            inits += [numpy_helper.from_array(w, f'{kind}{s}_w'), numpy_helper.from_array(b, f'{kind}{s}_b')]
            conv = f'{kind}{s}_conv'
            nodes.append(helper.make_node('Conv', [pooled, f'{kind}{s}_w', f'{kind}{s}_b'], [conv]))
            if kind == 'cls':
                nodes.append(helper.make_node('Sigmoid', [conv], [conv + '_sig']))
                conv += '_sig'
            nodes.append(helper.make_node('Reshape', [conv, 'flat_shape'], [conv + '_flat']))
            nodes.append(helper.make_node('Transpose', [conv + '_flat'], [conv + '_t'], perm=[0, 2, 1]))
            parts.append(conv + '_t')
    nodes.append(helper.make_node('Concat', score_parts, [scores_name], axis=1))
    nodes.append(helper.make_node('Concat', box_parts, [boxes_name], axis=1))
    cells = 'cells' if flexible else num_cells(height, width, strides)
    in_hw = ['height', 'width'] if flexible else [height, width]
    graph = helper.make_graph(
        nodes, 'synthetic_nanodet',
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ['batch', channels] + in_hw)],
        [helper.make_tensor_value_info(scores_name, TensorProto.FLOAT, ['batch', cells, num_classes]),
         helper.make_tensor_value_info(boxes_name, TensorProto.FLOAT, ['batch', cells, 4 * bins])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', opset)],
                              producer_name='aiat_perception.inference.synthetic')
    model.ir_version = min(model.ir_version, 8)  # readable by older ONNX Runtime builds
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def synthetic_meta(height: int = 64, width: int = 64, num_classes: int = 3,
                   strides: Sequence[int] = (8, 16, 32), reg_max: int = 7,
                   color_order: str = 'BGR', resize: str = 'stretch',
                   flexible: bool = False) -> Dict[str, Any]:
    channels = 1 if color_order == 'GRAY' else 3
    meta = {
        'name': 'synthetic',
        'input': {'name': 'images', 'layout': 'NCHW', 'height': height, 'width': width,
                  'color_order': color_order, 'resize': resize,
                  'mean': list(NANODET_BGR_MEAN)[:channels], 'std': list(NANODET_BGR_STD)[:channels],
                  'dtype': 'float32'},
        'outputs': {'scores': {'name': 'scores'}, 'boxes': {'name': 'box_dist'}},
        'classes': [f'class{i}' for i in range(num_classes)],
        'decoder': {'type': 'nanodet_gfl', 'strides': list(strides), 'reg_max': reg_max,
                    'scores_are_probabilities': True},
        'postprocess': {'score_threshold': 0.35, 'nms_iou_threshold': 0.6, 'max_detections': 100,
                        'class_agnostic_nms': False},
        'provenance': {'source': 'synthetic random weights', 'license': 'Apache-2.0',
                       'tool': 'aiat_perception.inference.synthetic'},
    }
    if flexible:
        meta['input'].update(flexible=True, size_multiple=max(strides))
    return meta


def make_synthetic_bundle(out_dir: Union[str, Path], **kwargs: Any) -> Path:
    """Build the graph and write a valid bundle around it (kwargs as for :func:`build_onnx`)."""
    out_dir = Path(out_dir)
    meta_keys = ('height', 'width', 'num_classes', 'strides', 'reg_max')
    meta = synthetic_meta(**{k: kwargs[k] for k in meta_keys if k in kwargs},
                          color_order=kwargs.pop('color_order', 'BGR'),
                          resize=kwargs.pop('resize', 'stretch'), flexible=kwargs.get('flexible', False))
    if kwargs.get('channels', 3) == 1 and meta['input']['color_order'] != 'GRAY':
        raise ValueError('channels=1 needs color_order GRAY')
    onnx_path = build_onnx(out_dir.parent / f'.{out_dir.name}.onnx', **kwargs)
    try:
        return write_bundle(out_dir, onnx_path, meta)
    finally:
        onnx_path.unlink()
