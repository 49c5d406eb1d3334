"""PyTorch backend (training-time evaluation, GPU checks). torch is imported only when it is built.

The network comes from, in order: ``module=`` (an ``nn.Module`` equivalent to the bundle's ONNX
graph, e.g. the training model), ``model_file=``, or a file next to ``bundle.yaml``:
``model.pt2`` (``torch.export.save``) or ``model.torchscript.pt`` (``torch.jit.save``). The module
maps an NCHW float32 tensor to ``(scores, box_dist)`` or to a dict keyed by the output names.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Union

import numpy as np

from .backends import Backend, TensorInfo
from .bundle import Bundle, BundleError

BUNDLE_TORCH_FILES = ('model.pt2', 'model.torchscript.pt')


class TorchBackend(Backend):
    name = 'torch'

    def __init__(self, bundle: Bundle, module: Any = None,
                 model_file: Optional[Union[str, Path]] = None, device: str = 'auto',
                 max_batch: Optional[int] = None):
        super().__init__(bundle)
        try:
            import torch
        except ImportError as exc:
            raise RuntimeError('torch backend: PyTorch is not installed (pip install torch); '
                               'the onnxruntime backend needs no torch') from exc
        self._torch = torch
        if device == 'auto':
            device = 'cuda' if torch.cuda.is_available() else 'cpu'
        self._device = torch.device(device)
        if self._device.type == 'cuda' and self._device.index is None:
            self._device = torch.device('cuda', torch.cuda.current_device())
        self.device = str(self._device)
        self.max_batch = max_batch
        self.source = 'module'
        if module is None:
            module = self._load(model_file)
        else:
            module = module.to(self._device).eval()
        self.module = module
        b = bundle
        size = ('height', 'width') if b.input.flexible else (b.input.height, b.input.width)
        self._input = TensorInfo(b.input.name, ('batch', b.input.channels) + size)
        self._outputs = {out.name: TensorInfo(out.name, tuple(out.shape)) for out in b.outputs.values()}
        self._order = [b.outputs['scores'].name, b.outputs['boxes'].name]

    def _load(self, model_file: Optional[Union[str, Path]]) -> Any:
        torch = self._torch
        if model_file is None:
            found = [self.bundle.path / f for f in BUNDLE_TORCH_FILES if (self.bundle.path / f).is_file()]
            if not found:
                raise BundleError(f'{self.bundle.path}: torch backend needs module=..., model_file=... '
                                  f'or one of {list(BUNDLE_TORCH_FILES)} in the bundle')
            model_file = found[0]
        path = Path(model_file)
        if not path.is_file():
            raise BundleError(f'{path}: torch model file does not exist')
        self.source = str(path)
        try:
            if path.suffix == '.pt2':
                program = torch.export.load(str(path))
                if self._device.type != 'cpu':
                    from torch.export.passes import move_to_device_pass
                    program = move_to_device_pass(program, self._device)
                return program.module()   # already inference-only; eval() is not supported on it
            return torch.jit.load(str(path), map_location=self._device).eval()
        except Exception as exc:
            raise BundleError(f'{path}: cannot load torch model ({type(exc).__name__}: {exc})')

    @property
    def inputs(self) -> Dict[str, TensorInfo]:
        return {self._input.name: self._input}

    def _run(self, batch: np.ndarray) -> Dict[str, np.ndarray]:
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch)).to(self._device, non_blocking=True)
            result = self.module(x)
            if isinstance(result, dict):
                tensors = [result[name] for name in self._order]
            else:
                tensors = list(result)[:2]
            return {name: t.detach().float().cpu().numpy() for name, t in zip(self._order, tensors)}

    def synchronize(self) -> None:
        if self._device.type == 'cuda':
            self._torch.cuda.synchronize(self._device)
