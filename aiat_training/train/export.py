"""Checkpoint -> model bundle, and the numerical check of ONNX Runtime against PyTorch.

The bundle is flexible (dynamic height and width, any multiple of the largest stride) when the model
allows it, with the resize mode of the run's ``export`` section (default keep_aspect); the check then
runs at the trained size and at a second size, so a graph that only works at one size is caught.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import List, Optional, Tuple, Union

import numpy as np
import torch

from .checkpoint import load_checkpoint
from .trainer import model_from_checkpoint


def other_size(height: int, width: int, multiple: int) -> Tuple[int, int]:
    """A second input size to prove a flexible graph with: one multiple taller, two wider (a
    different aspect ratio and cell count than the trained size)."""
    return height + multiple, width + 2 * multiple


def flexible_problem(model, height: int, width: int) -> Optional[str]:
    """None when ``model`` (NanoDet-style: outputs [B, cells, ...] over ``model.strides``) runs at
    another multiple of its largest stride and gives that size's cell count, else why not. A fully
    convolutional detector passes; one with a fixed-size layer (a Linear over the feature map, a
    reshape to trained constants) does not."""
    import torch

    from aiat_perception.inference.cells import num_cells

    strides = tuple(int(s) for s in getattr(model, 'strides', ()) or ())
    if not strides:
        return 'the model does not declare its strides'
    stride = max(strides)
    if height % stride or width % stride:
        return f'the trained size {height}x{width} is not a multiple of the largest stride {stride}'
    h, w = other_size(height, width, stride)
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            outputs = model(torch.zeros(1, 3, h, w))
    except Exception as exc:  # any failure at another size means: not flexible
        return f'it does not run at {h}x{w} ({type(exc).__name__}: {" ".join(str(exc).split())[:160]})'
    finally:
        model.train(was_training)
    cells = num_cells(h, w, strides)
    got = [tuple(o.shape) for o in outputs]
    if any(len(shape) != 3 or shape[1] != cells for shape in got):
        return f'at {h}x{w} it gives outputs {got}, not {cells} cells'
    return None


def compare_onnx_to_torch(model, bundle_dir, images: Optional[np.ndarray] = None, seed: int = 0,
                          size: Optional[Tuple[int, int]] = None) -> dict:
    """Max/mean abs differences of ONNX Runtime vs PyTorch outputs on the same input batch
    (random normal input of batch 2 at ``size`` (default: the bundle's) unless ``images``
    [B,3,H,W] float32 is given)."""
    import onnxruntime as ort

    from aiat_perception.inference.bundle import load_bundle

    bundle = load_bundle(bundle_dir)
    if images is None:
        rng = np.random.default_rng(seed)
        height, width = size or (bundle.input.height, bundle.input.width)
        images = rng.normal(0, 1, (2, 3, height, width)).astype(np.float32)
    session = ort.InferenceSession(str(bundle.onnx_path), providers=['CPUExecutionProvider'])
    names = [bundle.outputs['scores'].name, bundle.outputs['boxes'].name]
    onnx_scores, onnx_boxes = session.run(names, {bundle.input.name: images})
    model = model.float().cpu().eval()
    with torch.no_grad():
        cls_logits, box_logits = model(torch.from_numpy(images))
    torch_scores, torch_boxes = cls_logits.sigmoid().numpy(), box_logits.numpy()
    return {'batch': int(images.shape[0]), 'size': [int(images.shape[2]), int(images.shape[3])],
            'scores_max_abs_diff': float(np.abs(onnx_scores - torch_scores).max()),
            'scores_mean_abs_diff': float(np.abs(onnx_scores - torch_scores).mean()),
            'box_dist_max_abs_diff': float(np.abs(onnx_boxes - torch_boxes).max()),
            'box_dist_mean_abs_diff': float(np.abs(onnx_boxes - torch_boxes).mean()),
            'box_dist_max_abs': float(np.abs(torch_boxes).max())}


def checkpoint_input(meta: dict, source: str | Path = '<checkpoint>'):
    """The input contract a checkpoint was trained with (its ``model_meta``), as a bundle InputSpec."""
    from pydantic import ValidationError

    from aiat_training.config import InputSection

    try:
        height, width = meta['input_size']
        return InputSection(height=height, width=width, **dict(meta.get('input') or {})).spec()
    except (KeyError, TypeError, ValueError, ValidationError) as exc:
        raise ValueError(f'{source}: model_meta does not describe a valid input ({exc})') from None


def export_settings(config: dict, resize: Optional[str] = None,
                    flexible: Union[None, bool, str] = None) -> Tuple[str, Union[bool, str]]:
    """(resize, flexible) for an export: the arguments, else the run's ``export`` section, else the
    section's defaults (keep_aspect, auto). Validated like the fit config."""
    from pydantic import ValidationError

    from aiat_training.config import ConfigError
    from aiat_training.train.config import ExportSection
    section = dict((config or {}).get('export') or {})
    if resize is not None:
        section['resize'] = resize
    if flexible is not None:
        section['flexible'] = flexible
    try:
        parsed = ExportSection(**section)
    except (TypeError, ValidationError) as exc:
        problems = '; '.join(f'{".".join(str(p) for p in e["loc"])}: {e["msg"]}'
                             for e in getattr(exc, 'errors', lambda: [])()) or str(exc)
        raise ConfigError(f'export settings {section}: {problems}') from None
    return parsed.resize, parsed.flexible


def export_checkpoint(checkpoint: str | Path, out_dir: str | Path, weights: str = 'ema',
                      score_threshold: float = 0.35, nms_iou_threshold: float = 0.6, opset: int = 17,
                      simplify: bool = True, tolerance: float = 1e-3, name: Optional[str] = None,
                      resize: Optional[str] = None, flexible: Union[None, bool, str] = None) -> dict:
    """Export the checkpoint's EMA (or raw) weights as a bundle; check ONNX Runtime against PyTorch.

    ``resize`` (keep_aspect, letterbox, stretch) and ``flexible`` (True, False, 'auto') default to
    the run's ``export`` section (keep_aspect, auto). A flexible bundle is checked at the trained
    size and at :func:`other_size`; with 'auto', a model that cannot be flexible (or whose ONNX
    graph fails at the other size) is exported fixed, keep_aspect becoming letterbox, and
    ``notes`` says why. Raises if the largest difference exceeds ``tolerance``. Returns a report
    (also written as ``export_check.json`` next to ``bundle.yaml``).
    """
    from aiat_training.nanodet.export import export_bundle

    checkpoint = Path(checkpoint)
    ckpt = load_checkpoint(checkpoint)
    model = model_from_checkpoint(ckpt, prefer_ema=(weights == 'ema'), source=checkpoint)
    meta = ckpt['model_meta']
    trained = checkpoint_input(meta, checkpoint)
    config = ckpt.get('config') if isinstance(ckpt.get('config'), dict) else {}
    resize, want_flexible = export_settings(config, resize, flexible)
    notes: List[str] = []
    stride = max(model.strides)
    can_flex = False
    if want_flexible is not False:
        problem = flexible_problem(model, trained.height, trained.width)
        if problem and want_flexible is True:
            from aiat_training.config import ConfigError
            raise ConfigError(f'{checkpoint}: cannot export a flexible bundle: {problem}')
        if problem:
            notes.append(f'exported fixed at {trained.height}x{trained.width}: the model is not '
                         f'flexible ({problem})')
        can_flex = problem is None
    provenance = {'source': f'aiat-train checkpoint {checkpoint.name}', 'epoch': ckpt.get('epoch'),
                  'iteration': ckpt.get('iteration'), 'weights': 'ema' if ckpt.get('ema') and weights == 'ema' else 'model',
                  'best_val_mAP': ckpt.get('best_metric'), 'strategy': (config.get('model') or {}).get('strategy'),
                  'tool': 'aiat-train export', 'trained_resize': trained.resize}

    def export(flex: bool) -> Tuple[Path, list]:
        mode = resize
        if mode == 'keep_aspect' and not flex:
            mode = 'letterbox'
            notes.append('resize keep_aspect needs a flexible bundle; the fixed bundle letterboxes '
                         '(keeps the aspect ratio inside the trained size)')
        spec = dataclasses.replace(trained, resize=mode, flexible=flex, size_multiple=stride if flex else 1)
        bundle_dir = export_bundle(model, out_dir, meta['class_names'], input_spec=spec,
                                   score_threshold=score_threshold, nms_iou_threshold=nms_iou_threshold,
                                   provenance=dict(provenance, notes=list(notes)) if notes else provenance,
                                   opset=opset, name=name, simplify=simplify)
        sizes = [(trained.height, trained.width)]
        if flex:
            sizes.append(other_size(trained.height, trained.width, stride))
        return bundle_dir, [compare_onnx_to_torch(model, bundle_dir, size=size) for size in sizes]

    bundle_dir, checks = export(can_flex)
    worst = max(max(c['scores_max_abs_diff'], c['box_dist_max_abs_diff']) for c in checks)
    if can_flex and worst > tolerance and want_flexible == 'auto':
        notes.append(f'exported fixed: the flexible ONNX graph differed from PyTorch by {worst:.3g} at '
                     f'{checks[-1]["size"][0]}x{checks[-1]["size"][1]}')
        can_flex = False
        bundle_dir, checks = export(False)
        worst = max(max(c['scores_max_abs_diff'], c['box_dist_max_abs_diff']) for c in checks)
    from aiat_perception.inference.bundle import load_bundle
    spec = load_bundle(bundle_dir).input
    report = {'bundle': str(bundle_dir), 'opset': opset, 'tolerance': tolerance,
              'input': {'height': spec.height, 'width': spec.width, 'flexible': spec.flexible,
                        'size_multiple': spec.size_multiple, 'resize': spec.resize},
              'onnxruntime_vs_torch': checks[0], 'onnxruntime_vs_torch_per_size': checks,
              'notes': notes, 'passed': worst <= tolerance}
    (Path(bundle_dir) / 'export_check.json').write_text(json.dumps(report, indent=2))
    if not report['passed']:
        raise RuntimeError(f'{bundle_dir}: ONNX Runtime differs from PyTorch by {worst:.3g} > {tolerance}')
    return report
