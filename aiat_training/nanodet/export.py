"""Export a :class:`NanoDet` to ONNX and write it as a model bundle (schema in docs/dev/HELPERS.md).

ONNX graph: input ``images`` float32 [batch, 3, H, W] (dynamic batch), outputs ``scores``
[batch, N, C] (sigmoid applied) and ``box_dist`` [batch, N, 4*(reg_max+1)] (raw logits).
"""
from __future__ import annotations

import copy
import tempfile
import warnings
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from aiat_perception.inference.bundle import write_bundle

from .model import NanoDet

INPUT_NAME = 'images'
SCORES_NAME = 'scores'
BOXES_NAME = 'box_dist'
BGR_MEAN = (103.53, 116.28, 123.675)
BGR_STD = (57.375, 57.12, 58.395)


class _ScoresAndBoxes(nn.Module):
    """The exported computation: class probabilities and raw box-distribution logits."""

    def __init__(self, model: NanoDet):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        cls_logits, box_logits = self.model(images)
        return torch.sigmoid(cls_logits), box_logits


def export_onnx(model: NanoDet, onnx_path: Union[str, Path], input_size: Tuple[int, int] = (416, 416),
                opset: int = 17, simplify: bool = True) -> Dict[str, Any]:
    """Write the ONNX file; returns notes for the provenance (exporter, whether onnxsim ran)."""
    import onnx

    height, width = input_size
    export_model = _ScoresAndBoxes(copy.deepcopy(model).float().cpu().eval())
    dummy = torch.zeros(1, 3, height, width)
    onnx_path = Path(onnx_path)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')   # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            export_model, (dummy,), str(onnx_path), dynamo=False, opset_version=opset,
            input_names=[INPUT_NAME], output_names=[SCORES_NAME, BOXES_NAME],
            dynamic_axes={INPUT_NAME: {0: 'batch'}, SCORES_NAME: {0: 'batch'},
                          BOXES_NAME: {0: 'batch'}},
            do_constant_folding=True)
    notes: Dict[str, Any] = {'exporter': f'torch.onnx (TorchScript) {torch.__version__}',
                             'opset': opset, 'onnxsim': 'not run'}
    if simplify:
        try:
            import onnxsim
            simplified, ok = onnxsim.simplify(onnx.load(str(onnx_path)))
            if ok:
                onnx.save(simplified, str(onnx_path))
                notes['onnxsim'] = onnxsim.__version__
            else:
                notes['onnxsim'] = 'check failed; unsimplified graph kept'
        except Exception as exc:  # onnxsim missing or unable to handle the graph
            notes['onnxsim'] = f'skipped ({type(exc).__name__}: {exc})'[:200]
    return notes


def bundle_metadata(class_names: Sequence[str], input_size: Tuple[int, int], reg_max: int,
                    strides: Sequence[int], score_threshold: float, nms_iou_threshold: float,
                    name: str, provenance: Optional[Dict[str, Any]] = None,
                    max_detections: int = 100, resize: str = 'stretch') -> Dict[str, Any]:
    height, width = input_size
    return {
        'name': name,
        'input': {'name': INPUT_NAME, 'layout': 'NCHW', 'height': int(height), 'width': int(width),
                  'color_order': 'BGR', 'resize': resize, 'mean': list(BGR_MEAN),
                  'std': list(BGR_STD), 'dtype': 'float32'},
        'outputs': {'scores': {'name': SCORES_NAME}, 'boxes': {'name': BOXES_NAME}},
        'classes': [str(c) for c in class_names],
        'decoder': {'type': 'nanodet_gfl', 'strides': [int(s) for s in strides],
                    'reg_max': int(reg_max), 'scores_are_probabilities': True, 'cell_offset': 0.5},
        'postprocess': {'score_threshold': float(score_threshold),
                        'nms_iou_threshold': float(nms_iou_threshold),
                        'max_detections': int(max_detections), 'class_agnostic_nms': False},
        'provenance': dict(provenance or {}),
    }


def export_bundle(model: NanoDet, out_dir: Union[str, Path], class_names: Sequence[str],
                  input_size: Tuple[int, int] = (416, 416), score_threshold: float = 0.35,
                  nms_iou_threshold: float = 0.6, provenance: Optional[Dict[str, Any]] = None,
                  opset: int = 17, *, name: Optional[str] = None, max_detections: int = 100,
                  resize: str = 'stretch', simplify: bool = True) -> Path:
    """Export ``model`` as a bundle directory at ``out_dir`` and return its path.

    ``input_size`` is (height, width), each a multiple of the largest stride (32).
    """
    class_names = list(class_names)
    if len(class_names) != model.num_classes:
        raise ValueError(f'model has {model.num_classes} classes but {len(class_names)} class '
                         f'names were given')
    height, width = input_size
    stride = max(model.strides)
    if height % stride or width % stride:
        raise ValueError(f'input_size {input_size} must be a multiple of {stride}')
    out_dir = Path(out_dir)
    provenance = dict(provenance or {})
    provenance.setdefault('tool', 'aiat_training.nanodet.export')
    with tempfile.TemporaryDirectory(prefix='nanodet-export-') as tmp:
        onnx_path = Path(tmp) / 'model.onnx'
        provenance['export'] = export_onnx(model, onnx_path, (height, width), opset, simplify)
        meta = bundle_metadata(class_names, (height, width), model.reg_max, model.strides,
                               score_threshold, nms_iou_threshold, name or out_dir.name,
                               provenance, max_detections, resize)
        return Path(write_bundle(out_dir, onnx_path, meta))
