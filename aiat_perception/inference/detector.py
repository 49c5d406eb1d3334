"""``Detector``: bundle + backend + preprocessing + decoding, with per-stage timing."""
from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .backends import Backend, create_backend
from .bundle import RESIZE_MODES, Bundle, load_bundle
from .decode import Detections, GflDecoder, batched_nms, nms
from .tiling import auto_grid, cut_by_tile_edge, parse_grid, tile_windows
from .preprocess import Preprocessor


@dataclass
class StageTimes:
    """Seconds spent in each stage by the last ``detect`` call."""
    preprocess: float = 0.0
    inference: float = 0.0
    decode: float = 0.0
    batch: int = 0

    @property
    def total(self) -> float:
        return self.preprocess + self.inference + self.decode

    def as_ms(self) -> dict:
        return {'preprocess_ms': self.preprocess * 1e3, 'inference_ms': self.inference * 1e3,
                'decode_ms': self.decode * 1e3, 'total_ms': self.total * 1e3, 'batch': self.batch}


class Detector:
    """Detect objects in uint8 images with a model bundle.

    ``Detector('path/to/bundle')`` or ``Detector(bundle, backend='torch', module=model)``. Keyword
    options that are not post-processing settings go to the backend (see ``backends.py``).

    ``resize`` overrides the bundle's resize mode (stretch, letterbox, keep_aspect); keep_aspect
    (flexible bundles only) picks per image size a network input that keeps the aspect ratio
    within ``pixel_budget`` pixels (default: the bundle's trained input's pixel count) and inside the
    backend's ``input_sizes`` box (a TensorRT engine's optimization profile; None = any size).
    ``tiling``: also run overlapping tiles of each image (``tile_grid`` rows x cols, (0, 0) =
    about square tiles; neighbours overlap by ``tile_overlap``) and merge them with the full frame
    by NMS: finds smaller, farther objects at several times the cost (see tiling.py).
    """

    def __init__(self, bundle: Union[Bundle, str, os.PathLike], backend: Union[str, Backend] = 'onnxruntime',
                 score_threshold: Optional[float] = None, nms_iou_threshold: Optional[float] = None,
                 max_detections: Optional[int] = None, pre_nms_top_k: Optional[int] = None,
                 class_agnostic_nms: Optional[bool] = None, interpolation: str = 'linear',
                 resize: Optional[str] = None, pixel_budget: Optional[int] = None,
                 tiling: bool = False, tile_grid: Sequence[int] = (0, 0), tile_overlap: float = 0.2,
                 **backend_options: Any):
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        if resize is not None and resize != self.bundle.input.resize:
            if resize not in RESIZE_MODES:
                raise ValueError(f'resize {resize!r} is not one of {list(RESIZE_MODES)}')
            if resize == 'keep_aspect' and not self.bundle.input.flexible:
                raise ValueError(f'{self.bundle.path}: resize keep_aspect needs a flexible bundle '
                                 f'(input.flexible: true); this one takes only '
                                 f'{self.bundle.input.height}x{self.bundle.input.width}')
            self.bundle = dataclasses.replace(
                self.bundle, input=dataclasses.replace(self.bundle.input, resize=resize))
        if self.bundle.decoder.type != 'nanodet_gfl':
            raise ValueError(f'{self.bundle.path}: decoder {self.bundle.decoder.type!r} not supported')
        self.backend = backend if isinstance(backend, Backend) else create_backend(
            backend, self.bundle, **backend_options)
        # keep_aspect sizes stay inside what the backend takes (a TensorRT engine's profile box)
        sizes = getattr(self.backend, 'input_sizes', None)
        self.preprocessor = Preprocessor(self.bundle.input, interpolation, pixel_budget,
                                         None if sizes is None else (tuple(sizes.min), tuple(sizes.max)))
        self.decoder = GflDecoder.from_bundle(self.bundle)
        self._decoders: Dict[Tuple[int, int], GflDecoder] = {
            (self.decoder.height, self.decoder.width): self.decoder}
        post = self.bundle.postprocess
        self.score_threshold = post.score_threshold if score_threshold is None else float(score_threshold)
        self.nms_iou_threshold = post.nms_iou_threshold if nms_iou_threshold is None else float(nms_iou_threshold)
        self.max_detections = post.max_detections if max_detections is None else int(max_detections)
        self.pre_nms_top_k = post.pre_nms_top_k if pre_nms_top_k is None else int(pre_nms_top_k)
        self.class_agnostic_nms = (post.class_agnostic_nms if class_agnostic_nms is None
                                   else bool(class_agnostic_nms))
        self.tiling = bool(tiling)
        self.tile_grid = parse_grid(tuple(tile_grid))
        if not 0.0 <= float(tile_overlap) < 1.0:
            raise ValueError(f'tile_overlap must be in [0, 1), got {tile_overlap}')
        self.tile_overlap = float(tile_overlap)
        self.last_times = StageTimes()
        self.last_input_size = (self.bundle.input.height, self.bundle.input.width)
        self._scores_name = self.bundle.outputs['scores'].name
        self._boxes_name = self.bundle.outputs['boxes'].name

    @property
    def classes(self) -> Sequence[str]:
        return self.bundle.classes

    def detect(self, images: Union[np.ndarray, Sequence[np.ndarray]],
               encodings: Union[None, str, Sequence[Optional[str]]] = None) -> List[Detections]:
        """One :class:`Detections` per image. ``images``: an HxW(xC) uint8 array or a sequence of them
        (an [B,H,W,C] array counts as B images); ``encodings``: 'bgr8', 'rgb8', 'mono8', ... per
        image or one for all (default: bgr8 for 3 channels, mono8 for 2-D).
        """
        if isinstance(images, np.ndarray) and images.ndim in (2, 3):
            images = [images]
        images = list(images)
        if encodings is None or isinstance(encodings, str):
            encodings = [encodings] * len(images)
        if len(encodings) != len(images):
            raise ValueError(f'{len(images)} images but {len(encodings)} encodings')
        if not images:
            raise ValueError('no images to detect in')
        if self.tiling:
            return self._detect_tiled(images, encodings)
        return self._detect(images, encodings)

    def _detect(self, images: List[np.ndarray], encodings: Sequence[Optional[str]]) -> List[Detections]:
        # one network run per input size (keep_aspect: images of other sizes get other inputs)
        groups: Dict[Tuple[int, int], List[int]] = {}
        for i, img in enumerate(images):
            shape = np.shape(img)
            size = self.preprocessor.input_size(shape[1], shape[0]) if len(shape) >= 2 else None
            groups.setdefault(size, []).append(i)
        results: List[Optional[Detections]] = [None] * len(images)
        times = StageTimes(batch=len(images))
        for size, idx in groups.items():
            t0 = time.perf_counter()
            batch, transforms = self.preprocessor([images[i] for i in idx], [encodings[i] for i in idx])
            t1 = time.perf_counter()
            outputs = self.backend.run(batch)
            t2 = time.perf_counter()
            found = self.decoder_for(batch.shape[2], batch.shape[3]).decode(
                outputs[self._scores_name], outputs[self._boxes_name], transforms,
                score_threshold=self.score_threshold, nms_iou_threshold=self.nms_iou_threshold,
                max_detections=self.max_detections, pre_nms_top_k=self.pre_nms_top_k,
                class_agnostic=self.class_agnostic_nms)
            t3 = time.perf_counter()
            for i, det in zip(idx, found):
                results[i] = det
            times.preprocess += t1 - t0
            times.inference += t2 - t1
            times.decode += t3 - t2
            self.last_input_size = (int(batch.shape[2]), int(batch.shape[3]))
        self.last_times = times
        return results  # type: ignore[return-value]

    def _detect_tiled(self, images: List[np.ndarray], encodings: Sequence[Optional[str]]
                      ) -> List[Detections]:
        crops, encs, owners, windows = [], [], [], []
        for i, (image, enc) in enumerate(zip(images, encodings)):
            h, w = np.shape(image)[:2]
            rows, cols = self.tile_grid if self.tile_grid != (0, 0) else auto_grid(w, h)
            for window in [(0, 0, w, h)] + tile_windows(w, h, rows, cols, self.tile_overlap):
                x0, y0, x1, y1 = window
                crops.append(image if window == (0, 0, w, h)
                             else np.ascontiguousarray(image[y0:y1, x0:x1]))
                encs.append(enc)
                owners.append(i)
                windows.append(window)
        found = self._detect(crops, encs)
        first = np.shape(images[0])
        full_size = self.preprocessor.input_size(first[1], first[0])
        merged = []
        for i, image in enumerate(images):
            h, w = np.shape(image)[:2]
            boxes, scores, classes = [], [], []
            for det, owner, window in zip(found, owners, windows):
                if owner != i:
                    continue
                b = det.boxes + np.array(window[:2] * 2, np.float32)
                keep = ~cut_by_tile_edge(b, window, w, h) if window != (0, 0, w, h) else slice(None)
                boxes.append(b[keep]), scores.append(det.scores[keep]), classes.append(det.class_ids[keep])
            boxes, scores, classes = np.concatenate(boxes), np.concatenate(scores), np.concatenate(classes)
            if self.class_agnostic_nms:
                keep = nms(boxes, scores, self.nms_iou_threshold, self.max_detections)
            else:
                keep = batched_nms(boxes, scores, classes, self.nms_iou_threshold, self.max_detections)
            merged.append(Detections(boxes[keep].astype(np.float32), scores[keep],
                                     classes[keep].astype(np.int64), self.bundle.classes))
        self.last_input_size = full_size
        return merged

    def decoder_for(self, height: int, width: int) -> GflDecoder:
        """The decoder (cell layout) of one network input size."""
        decoder = self._decoders.get((height, width))
        if decoder is None:
            d = self.bundle.decoder
            decoder = GflDecoder(d.strides, d.reg_max, height, width, self.bundle.classes, d.cell_offset)
            if len(self._decoders) >= 16:
                self._decoders.clear()
            self._decoders[(height, width)] = decoder
        return decoder

    def detect_one(self, image: np.ndarray, encoding: Optional[str] = None) -> Detections:
        return self.detect([image], [encoding])[0]

    def close(self) -> None:
        self.backend.close()

    def __repr__(self) -> str:
        return (f'Detector(bundle={self.bundle.name!r}, backend={self.backend.name!r}, '
                f'device={self.backend.device!r}, classes={len(self.classes)})')
