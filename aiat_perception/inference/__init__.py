"""ROS-free inference core: model bundles, preprocessing, backends, decoding, ``Detector``.

Names are imported on first use so that ``from aiat_perception.inference.bundle import ...`` stays
light (no OpenCV, no ONNX Runtime).
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    'Bundle': 'bundle', 'BundleError': 'bundle', 'load_bundle': 'bundle', 'write_bundle': 'bundle',
    'Preprocessor': 'preprocess', 'Transform': 'preprocess',
    'Backend': 'backends', 'create_backend': 'backends', 'register_backend': 'backends',
    'Detections': 'decode', 'GflDecoder': 'decode', 'batched_nms': 'decode', 'nms': 'decode',
    'Detector': 'detector', 'StageTimes': 'detector',
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f'{__name__}.{_EXPORTS[name]}'), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
