"""Images -> the network's NCHW float32 input, as the bundle's input spec says.

Resize (stretch or letterbox) on uint8 first, then channel reordering and normalisation are written
straight into a reused NCHW buffer, so a frame costs one resize plus one pass per channel.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from .bundle import InputSpec
from .input_size import aspect_input_size, check_pixel_budget, default_pixel_budget

# the normalisation NanoDet's COCO weights were trained with (BGR order); the default training input
NANODET_BGR_MEAN = (103.53, 116.28, 123.675)
NANODET_BGR_STD = (57.375, 57.12, 58.395)

# channels of each supported encoding, in memory order
ENCODING_CHANNELS = {
    'bgr8': 'BGR', 'rgb8': 'RGB', 'bgra8': 'BGRA', 'rgba8': 'RGBA', 'mono8': 'L',
}
INTERPOLATIONS = {'nearest': cv2.INTER_NEAREST, 'linear': cv2.INTER_LINEAR,
                  'area': cv2.INTER_AREA, 'cubic': cv2.INTER_CUBIC}


@dataclass(frozen=True)
class Transform:
    """Original image -> network input: ``net = orig * scale + pad``."""
    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float
    width: int       # original image size
    height: int

    def to_original(self, boxes: np.ndarray) -> np.ndarray:
        """xyxy boxes in network pixels -> original pixels, clipped to the original image."""
        out = np.empty_like(boxes, dtype=np.float32)
        out[:, 0::2] = (boxes[:, 0::2] - self.pad_x) / self.scale_x
        out[:, 1::2] = (boxes[:, 1::2] - self.pad_y) / self.scale_y
        np.clip(out[:, 0::2], 0, self.width, out=out[:, 0::2])
        np.clip(out[:, 1::2], 0, self.height, out=out[:, 1::2])
        return out

    def to_network(self, boxes: np.ndarray) -> np.ndarray:
        out = np.empty_like(boxes, dtype=np.float32)
        out[:, 0::2] = boxes[:, 0::2] * self.scale_x + self.pad_x
        out[:, 1::2] = boxes[:, 1::2] * self.scale_y + self.pad_y
        return out


def infer_encoding(image: np.ndarray) -> str:
    """OpenCV convention when no encoding is given: 2-D = mono8, 3 channels = bgr8, 4 = bgra8."""
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return 'mono8'
    if image.ndim == 3 and image.shape[2] == 3:
        return 'bgr8'
    if image.ndim == 3 and image.shape[2] == 4:
        return 'bgra8'
    raise ValueError(f'cannot tell the encoding of an image of shape {image.shape}')


class Preprocessor:
    """Callable: ``(images, encodings) -> (tensor [B,C,H,W] float32, [Transform])``.

    The returned tensor is a buffer owned by the preprocessor and reused by the next call with the
    same batch size: consume (run the network on) it before preprocessing the next batch.
    """

    def __init__(self, spec: InputSpec, interpolation: str = 'linear',
                 pixel_budget: Optional[int] = None,
                 size_limits: Optional[Tuple[Tuple[int, int], Tuple[int, int]]] = None):
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f'interpolation {interpolation!r} is not one of {sorted(INTERPOLATIONS)}')
        if spec.resize == 'keep_aspect' and not spec.flexible:
            raise ValueError('resize keep_aspect needs a flexible input (input.flexible: true)')
        self.spec = spec
        # keep_aspect: network input size per image size, within this many pixels
        self.pixel_budget = (default_pixel_budget(spec) if pixel_budget is None
                             else check_pixel_budget(pixel_budget, max(1, spec.size_multiple)))
        # keep_aspect: ((min h, min w), (max h, max w)) the backend accepts (a TensorRT profile)
        self.size_limits = size_limits
        self._sizes: Dict[Tuple[int, int], Tuple[int, int]] = {}
        self.interpolation = INTERPOLATIONS[interpolation]
        self.channels = spec.channels
        self.mean = np.asarray(spec.mean, np.float32)
        self.inv_std = (1.0 / np.asarray(spec.std, np.float64)).astype(np.float32)
        self.pad_values = ((spec.pad_value - self.mean) * self.inv_std).astype(np.float32)
        self._buffers: Dict[Tuple[int, int, int], np.ndarray] = {}

    def input_size(self, width: int, height: int) -> Tuple[int, int]:
        """(height, width) of the network input for an image of this size: the bundle's size, or
        with keep_aspect the aspect-keeping size within the pixel budget."""
        if self.spec.resize != 'keep_aspect':
            return self.spec.height, self.spec.width
        size = self._sizes.get((width, height))
        if size is None:
            stretch, reaches_trained = self._squeeze(width, height)
            trained = (self.spec.height, self.spec.width)
            if reaches_trained and trained[0] * trained[1] <= self.pixel_budget:
                size = trained   # within max_stretch of the trained aspect: the trained input
            else:
                low, high = self.size_limits or (None, None)
                size = aspect_input_size(width / stretch, height, self.pixel_budget,
                                         self.spec.size_multiple, low, high)
            if len(self._sizes) >= 64:      # camera resolutions are few; a stream of odd sizes is not
                self._sizes.clear()
            self._sizes[(width, height)] = size
        return size

    def stretch(self, width: int, height: int) -> float:
        """keep_aspect's horizontal squeeze of a ``width`` x ``height`` image (< 1: vertical): the
        factor, within the bundle's ``max_stretch``, that brings its aspect ratio closest to the
        trained input's (1.0 for letterbox and stretch, and for bundles without ``max_stretch``)."""
        return self._squeeze(width, height)[0]

    def _squeeze(self, width: int, height: int) -> Tuple[float, bool]:
        """(:meth:`stretch`, whether it brings the image exactly to the trained aspect ratio)."""
        toward_trained = (width / height) / (self.spec.width / self.spec.height)
        limit = self.spec.max_stretch if self.spec.resize == 'keep_aspect' else 1.0
        for edge in (limit, 1.0 / limit):      # 4:3 onto a square with limit 4/3: a float's width away
            if abs(toward_trained - edge) < 1e-9 * edge:
                toward_trained = edge
        stretch = min(limit, max(1.0 / limit, toward_trained))
        return stretch, stretch == toward_trained

    def buffer(self, batch: int, size: Optional[Tuple[int, int]] = None) -> np.ndarray:
        net_h, net_w = size or (self.spec.height, self.spec.width)
        buf = self._buffers.get((batch, net_h, net_w))
        if buf is None:
            if len(self._buffers) >= 8:
                self._buffers.clear()
            buf = np.empty((batch, self.channels, net_h, net_w), np.float32)
            self._buffers[(batch, net_h, net_w)] = buf
        return buf

    def __call__(self, images: Union[np.ndarray, Sequence[np.ndarray]],
                 encodings: Union[None, str, Sequence[Optional[str]]] = None
                 ) -> Tuple[np.ndarray, List[Transform]]:
        if isinstance(images, np.ndarray) and images.ndim in (2, 3):
            images = [images]
        if encodings is None or isinstance(encodings, str):
            encodings = [encodings] * len(images)
        if len(encodings) != len(images):
            raise ValueError(f'{len(images)} images but {len(encodings)} encodings')
        if len(images) == 0:
            raise ValueError('no images to preprocess')
        sizes = {self.input_size(img.shape[1], img.shape[0]) for img in images
                 if isinstance(img, np.ndarray) and img.ndim >= 2}
        if len(sizes) > 1:
            raise ValueError(f'images of one batch need one network input size, these give '
                             f'{sorted(sizes)}: preprocess them in separate batches')
        out = self.buffer(len(images), sizes.pop() if sizes else None)
        transforms = [self.fill(out[i], img, enc) for i, (img, enc) in enumerate(zip(images, encodings))]
        return out, transforms

    def fill(self, out: np.ndarray, image: np.ndarray, encoding: Optional[str] = None) -> Transform:
        """Write one image into ``out`` [C, H, W]; return its transform."""
        image = np.asarray(image)
        encoding = (encoding or infer_encoding(image)).lower()
        layout = ENCODING_CHANNELS.get(encoding)
        if layout is None:
            raise ValueError(f'unsupported image encoding {encoding!r}; supported: '
                             f'{sorted(ENCODING_CHANNELS)}')
        if image.dtype != np.uint8:
            raise ValueError(f'image dtype {image.dtype} for encoding {encoding}: expected uint8')
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[:, :, 0]
        want_ch = len(layout)
        got_ch = 1 if image.ndim == 2 else image.shape[2]
        if image.ndim not in (2, 3) or got_ch != want_ch or image.shape[0] == 0 or image.shape[1] == 0:
            raise ValueError(f'image of shape {image.shape} does not fit encoding {encoding!r} '
                             f'({want_ch} channel(s))')
        h, w = image.shape[:2]
        net_h, net_w = out.shape[1:]
        transform, region_w, region_h = self.geometry(w, h, (net_h, net_w))
        if (w, h) != (region_w, region_h):
            image = cv2.resize(image, (region_w, region_h), interpolation=self.interpolation)

        if self.channels == 1:
            if image.ndim == 3:
                code = {'BGR': cv2.COLOR_BGR2GRAY, 'RGB': cv2.COLOR_RGB2GRAY,
                        'BGRA': cv2.COLOR_BGRA2GRAY, 'RGBA': cv2.COLOR_RGBA2GRAY}[layout]
                image = cv2.cvtColor(image, code)
            planes = [image]
        elif image.ndim == 2:
            planes = [image] * 3
        else:
            # Channel swap folded into the HWC -> CHW copy: pick the source plane per target channel.
            order = self.spec.color_order  # 'BGR' or 'RGB'
            planes = [image[:, :, layout.index(ch)] for ch in order]

        if region_w != net_w or region_h != net_h:
            px, py = int(transform.pad_x), int(transform.pad_y)
            out[:] = self.pad_values[:, None, None]
            target = out[:, py:py + region_h, px:px + region_w]
        else:
            target = out
        for c, plane in enumerate(planes):
            np.subtract(plane, self.mean[c], out=target[c], dtype=np.float32)
            np.multiply(target[c], self.inv_std[c], out=target[c])
        return transform

    def geometry(self, width: int, height: int, size: Optional[Tuple[int, int]] = None
                 ) -> Tuple[Transform, int, int]:
        """How an image of this size reaches the network input of ``size`` (height, width; default
        :meth:`input_size`): its transform and the size of the resized region (the whole input for
        stretch; the centred, aspect-keeping part for letterbox and keep_aspect)."""
        net_h, net_w = size or self.input_size(width, height)
        if self.spec.resize == 'stretch' or (width, height) == (net_w, net_h):
            # (an image already at the input size: the training loader's, resized by resize())
            return Transform(net_w / width, net_h / height, 0.0, 0.0, int(width), int(height)), net_w, net_h
        squeezed_w = width / self.stretch(width, height)
        s = min(net_w / squeezed_w, net_h / height)
        region_w, region_h = max(1, int(round(squeezed_w * s))), max(1, int(round(height * s)))
        return (Transform(region_w / width, region_h / height, float((net_w - region_w) // 2),
                          float((net_h - region_h) // 2), int(width), int(height)), region_w, region_h)

    def resize(self, image: np.ndarray) -> Tuple[np.ndarray, Transform]:
        """The geometric half of :meth:`fill`: ``image`` (uint8, channels untouched) at the network
        input size, resized as :meth:`fill` resizes (letterbox border = ``pad_value``), and its
        transform. Training augments between the two halves; :meth:`fill` on the result then only
        orders channels and normalises."""
        h, w = image.shape[:2]
        net_h, net_w = self.input_size(w, h)
        transform, region_w, region_h = self.geometry(w, h, (net_h, net_w))
        if (w, h) != (region_w, region_h):
            image = cv2.resize(image, (region_w, region_h), interpolation=self.interpolation)
        if (region_w, region_h) != (net_w, net_h):
            canvas = np.full((net_h, net_w) + image.shape[2:], int(round(self.spec.pad_value)), np.uint8)
            px, py = int(transform.pad_x), int(transform.pad_y)
            canvas[py:py + region_h, px:px + region_w] = image
            image = canvas
        return image, transform
