"""Checkpoint -> model bundle, and the numerical check of ONNX Runtime against PyTorch."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from .checkpoint import load_checkpoint
from .trainer import model_from_checkpoint


def compare_onnx_to_torch(model, bundle_dir, images: Optional[np.ndarray] = None, seed: int = 0) -> dict:
    """Max/mean abs differences of ONNX Runtime vs PyTorch outputs on the same input batch
    (random normal input of batch 2 unless ``images`` [B,3,H,W] float32 is given)."""
    import onnxruntime as ort

    from aiat_perception.inference.bundle import load_bundle

    bundle = load_bundle(bundle_dir)
    if images is None:
        rng = np.random.default_rng(seed)
        images = rng.normal(0, 1, (2, 3, bundle.input.height, bundle.input.width)).astype(np.float32)
    session = ort.InferenceSession(str(bundle.onnx_path), providers=['CPUExecutionProvider'])
    names = [bundle.outputs['scores'].name, bundle.outputs['boxes'].name]
    onnx_scores, onnx_boxes = session.run(names, {bundle.input.name: images})
    model = model.float().cpu().eval()
    with torch.no_grad():
        cls_logits, box_logits = model(torch.from_numpy(images))
    torch_scores, torch_boxes = cls_logits.sigmoid().numpy(), box_logits.numpy()
    return {'batch': int(images.shape[0]),
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


def export_checkpoint(checkpoint: str | Path, out_dir: str | Path, weights: str = 'ema',
                      score_threshold: float = 0.35, nms_iou_threshold: float = 0.6, opset: int = 17,
                      simplify: bool = True, tolerance: float = 1e-3, name: Optional[str] = None) -> dict:
    """Export the checkpoint's EMA (or raw) weights as a bundle; check ONNX Runtime against PyTorch.

    Raises if the largest difference exceeds ``tolerance``. Returns a report (also written as
    ``export_check.json`` next to ``bundle.yaml``).
    """
    from aiat_training.nanodet.export import export_bundle

    checkpoint = Path(checkpoint)
    ckpt = load_checkpoint(checkpoint)
    model = model_from_checkpoint(ckpt, prefer_ema=(weights == 'ema'), source=checkpoint)
    meta = ckpt['model_meta']
    spec = checkpoint_input(meta, checkpoint)
    config = ckpt.get('config') if isinstance(ckpt.get('config'), dict) else {}
    provenance = {'source': f'aiat-train checkpoint {checkpoint.name}', 'epoch': ckpt.get('epoch'),
                  'iteration': ckpt.get('iteration'), 'weights': 'ema' if ckpt.get('ema') and weights == 'ema' else 'model',
                  'best_val_mAP': ckpt.get('best_metric'), 'strategy': (config.get('model') or {}).get('strategy'),
                  'tool': 'aiat-train export'}
    bundle_dir = export_bundle(model, out_dir, meta['class_names'], input_spec=spec,
                               score_threshold=score_threshold, nms_iou_threshold=nms_iou_threshold,
                               provenance=provenance, opset=opset, name=name, simplify=simplify)
    check = compare_onnx_to_torch(model, bundle_dir)
    worst = max(check['scores_max_abs_diff'], check['box_dist_max_abs_diff'])
    report = {'bundle': str(bundle_dir), 'opset': opset, 'tolerance': tolerance,
              'onnxruntime_vs_torch': check, 'passed': worst <= tolerance}
    (Path(bundle_dir) / 'export_check.json').write_text(json.dumps(report, indent=2))
    if not report['passed']:
        raise RuntimeError(f'{bundle_dir}: ONNX Runtime differs from PyTorch by {worst:.3g} > {tolerance}')
    return report
