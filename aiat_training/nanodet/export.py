"""Export a :class:`NanoDet` to ONNX and write it as a model bundle (schema in docs/contributing.md).

ONNX graph: input ``images`` float32 [batch, 3, H, W] (dynamic batch), outputs ``scores``
[batch, N, C] (sigmoid applied) and ``box_dist`` [batch, N, 4*(reg_max+1)] (raw logits).
"""
from __future__ import annotations

import copy
import dataclasses
import tempfile
import warnings
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from aiat_perception.inference.bundle import MAX_INPUT_PIXELS, InputSpec, write_bundle
from aiat_perception.inference.cells import DEFAULT_CELL_OFFSET
from aiat_perception.inference.preprocess import NANODET_BGR_MEAN, NANODET_BGR_STD

from .model import NanoDet

INPUT_NAME = 'images'
SCORES_NAME = 'scores'
BOXES_NAME = 'box_dist'


TORCH_PROGRAM_FILE = 'model.pt2'      # read by aiat_perception.inference.torch_backend


class ScoresAndBoxes(nn.Module):
    """The exported computation: class probabilities and raw box-distribution logits.

    Equivalent to the bundle's ONNX graph, so it can serve as the torch backend's ``module=``.
    """

    def __init__(self, model: NanoDet):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        cls_logits, box_logits = self.model(images)
        return torch.sigmoid(cls_logits), box_logits


def inference_module(model: NanoDet) -> ScoresAndBoxes:
    """``model`` (shared, not copied) mapping images to (scores, box_dist) like the ONNX graph."""
    return ScoresAndBoxes(model)


def export_torch_program(model: NanoDet, path: Union[str, Path],
                         input_size: Tuple[int, int] = (416, 416), flexible: bool = False) -> Path:
    """Save ``torch.export`` of the bundle computation (dynamic batch; with ``flexible`` also
    dynamic height and width, multiples of the largest stride) for the torch backend."""
    module = ScoresAndBoxes(copy.deepcopy(model).float().cpu().eval())
    example = torch.zeros(2, 3, *input_size)      # batch 2: a batch of 1 would be specialised
    dims = {0: torch.export.Dim('batch', min=1)}
    if flexible:
        stride = max(model.strides)
        limit = MAX_INPUT_PIXELS // (stride * stride)
        dims[2] = stride * torch.export.Dim('rows', min=1, max=limit)
        dims[3] = stride * torch.export.Dim('cols', min=1, max=limit)
    program = torch.export.export(module, (example,), dynamic_shapes={'images': dims})
    torch.export.save(program, str(path))
    return Path(path)


def export_onnx(model: NanoDet, onnx_path: Union[str, Path], input_size: Tuple[int, int] = (416, 416),
                opset: int = 17, simplify: bool = True, flexible: bool = False) -> Dict[str, Any]:
    """Write the ONNX file; returns notes for the provenance (exporter, whether onnxsim ran)."""
    import onnx

    height, width = input_size
    export_model = ScoresAndBoxes(copy.deepcopy(model).float().cpu().eval())
    dummy = torch.zeros(1, 3, height, width)
    onnx_path = Path(onnx_path)
    # flexible: height, width and the cell count stay symbolic (the network is fully convolutional
    # and its neck resizes to the actual feature sizes)
    dynamic_axes = ({INPUT_NAME: {0: 'batch', 2: 'height', 3: 'width'},
                     SCORES_NAME: {0: 'batch', 1: 'cells'}, BOXES_NAME: {0: 'batch', 1: 'cells'}}
                    if flexible else
                    {INPUT_NAME: {0: 'batch'}, SCORES_NAME: {0: 'batch'}, BOXES_NAME: {0: 'batch'}})
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')   # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            export_model, (dummy,), str(onnx_path), dynamo=False, opset_version=opset,
            input_names=[INPUT_NAME], output_names=[SCORES_NAME, BOXES_NAME],
            dynamic_axes=dynamic_axes, do_constant_folding=True)
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


def nanodet_input(height: int = 416, width: int = 416, resize: str = 'stretch',
                  flexible: bool = False, size_multiple: int = 32, max_stretch: float = 1.0) -> InputSpec:
    """The input contract of NanoDet's COCO weights (BGR, their mean/std) at a given size;
    ``flexible``: any multiple of ``size_multiple`` (the largest stride) at run time, with
    keep_aspect distorting toward the trained aspect by at most ``max_stretch``."""
    return InputSpec(INPUT_NAME, int(height), int(width), 'BGR', resize, NANODET_BGR_MEAN, NANODET_BGR_STD,
                     flexible=bool(flexible), size_multiple=int(size_multiple) if flexible else 1,
                     max_stretch=float(max_stretch) if flexible else 1.0)


def bundle_metadata(class_names: Sequence[str], input_spec: InputSpec, reg_max: int,
                    strides: Sequence[int], score_threshold: float, nms_iou_threshold: float,
                    name: str, provenance: Optional[Dict[str, Any]] = None,
                    max_detections: int = 100, cell_offset: float = DEFAULT_CELL_OFFSET) -> Dict[str, Any]:
    spec = dataclasses.replace(input_spec, name=INPUT_NAME)
    inp = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(spec).items()}
    if not spec.flexible:       # the keys of a flexible input only (older readers know no others)
        del inp['flexible'], inp['size_multiple']
    if inp['max_stretch'] == 1.0:
        del inp['max_stretch']
    return {
        'name': name,
        'input': inp,
        'outputs': {'scores': {'name': SCORES_NAME}, 'boxes': {'name': BOXES_NAME}},
        'classes': [str(c) for c in class_names],
        'decoder': {'type': 'nanodet_gfl', 'strides': [int(s) for s in strides],
                    'reg_max': int(reg_max), 'scores_are_probabilities': True,
                    'cell_offset': float(cell_offset)},
        'postprocess': {'score_threshold': float(score_threshold),
                        'nms_iou_threshold': float(nms_iou_threshold),
                        'max_detections': int(max_detections), 'class_agnostic_nms': False},
        'provenance': dict(provenance or {}),
    }


def export_bundle(model: NanoDet, out_dir: Union[str, Path], class_names: Sequence[str],
                  input_size: Tuple[int, int] = (416, 416), score_threshold: float = 0.35,
                  nms_iou_threshold: float = 0.6, provenance: Optional[Dict[str, Any]] = None,
                  opset: int = 17, *, name: Optional[str] = None, max_detections: int = 100,
                  resize: str = 'stretch', simplify: bool = True,
                  torch_program: bool = False, input_spec: Optional[InputSpec] = None,
                  flexible: bool = False) -> Path:
    """Export ``model`` as a bundle directory at ``out_dir`` and return its path.

    ``input_spec`` is the input contract the model was trained with (size, colour order, mean,
    std, resize); without it, NanoDet's COCO contract at ``input_size`` (height, width) with
    ``resize``. The size must be a multiple of the largest stride (32).
    ``torch_program`` also saves ``model.pt2`` (torch.export) for the torch backend.
    ``flexible`` (or a flexible ``input_spec``) exports dynamic height and width: the bundle then
    takes any multiple of the largest stride, and ``resize='keep_aspect'`` becomes possible.
    """
    class_names = list(class_names)
    if len(class_names) != model.num_classes:
        raise ValueError(f'model has {model.num_classes} classes but {len(class_names)} class '
                         f'names were given')
    stride = max(model.strides)
    spec = input_spec or nanodet_input(*input_size, resize=resize, flexible=flexible,
                                       size_multiple=stride)
    if flexible and not spec.flexible:
        spec = dataclasses.replace(spec, flexible=True, size_multiple=stride)
    height, width = input_size = spec.height, spec.width
    if height % stride or width % stride:
        raise ValueError(f'input_size {input_size} must be a multiple of {stride}')
    out_dir = Path(out_dir)
    provenance = dict(provenance or {})
    provenance.setdefault('tool', 'aiat_training.nanodet.export')
    with tempfile.TemporaryDirectory(prefix='nanodet-export-') as tmp:
        onnx_path = Path(tmp) / 'model.onnx'
        provenance['export'] = export_onnx(model, onnx_path, (height, width), opset, simplify,
                                           flexible=spec.flexible)
        meta = bundle_metadata(class_names, spec, model.reg_max, model.strides,
                               score_threshold, nms_iou_threshold, name or out_dir.name,
                               provenance, max_detections)
        out_dir = Path(write_bundle(out_dir, onnx_path, meta))
    if torch_program:
        export_torch_program(model, out_dir / TORCH_PROGRAM_FILE, (height, width), spec.flexible)
    elif (out_dir / TORCH_PROGRAM_FILE).is_file():
        (out_dir / TORCH_PROGRAM_FILE).unlink()     # from an earlier export: it would not match
    return out_dir
