"""Samples -> network batches, with the vehicle's own preprocessing, and a resumable epoch sampler.

Images go through :class:`aiat_perception.inference.preprocess.Preprocessor` (the code the
vehicle runs), so training sees exactly the resize, channel order and normalisation of the bundle;
boxes follow through the same :class:`Transform`.
"""
from __future__ import annotations

from typing import Callable, Iterator, Optional

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from aiat_perception.inference.bundle import InputSpec
from aiat_perception.inference.preprocess import Preprocessor

NANODET_MEAN = (103.53, 116.28, 123.675)
NANODET_STD = (57.375, 57.12, 58.395)

# (image BGR uint8, boxes [M,4] xyxy float32, labels [M]) -> the same, augmented
Augment = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple]


def input_spec(height: int, width: int, resize: str = 'stretch') -> InputSpec:
    return InputSpec(name='images', height=height, width=width, color_order='BGR', resize=resize,
                     mean=NANODET_MEAN, std=NANODET_STD)


class DetectionBatches(Dataset):
    """Item i: (image tensor [3, H, W] float32, {'boxes': [M, 4] network pixels, 'labels': [M],
    'image_id': i, 'orig_size': (h, w)})."""

    def __init__(self, dataset, spec: InputSpec, augment: Optional[Augment] = None):
        self.dataset = dataset
        self.spec = spec
        self.augment = augment
        self._pre = Preprocessor(spec)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        sample = self.dataset[index]
        image = sample.load_image()
        boxes = np.asarray(sample.boxes, np.float32).reshape(-1, 4)
        labels = np.asarray(sample.labels, np.int64).reshape(-1)
        if self.augment is not None:
            image, boxes, labels = self.augment(image, boxes, labels)
            boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
            labels = np.asarray(labels, np.int64).reshape(-1)
        out = np.empty((self.spec.channels, self.spec.height, self.spec.width), np.float32)
        transform = self._pre.fill(out, image, 'bgr8')
        boxes = transform.to_network(boxes) if len(boxes) else boxes
        return torch.from_numpy(out), {'boxes': torch.from_numpy(np.ascontiguousarray(boxes)),
                                       'labels': torch.from_numpy(labels), 'image_id': index,
                                       'orig_size': image.shape[:2]}


def collate(items):
    images, targets = zip(*items)
    return torch.stack(images), list(targets)


class EpochSampler(Sampler):
    """Shuffled indices fixed by (seed, epoch), split across DDP ranks; ``start`` skips the first
    batches of the epoch (resume in the middle of an epoch)."""

    def __init__(self, size: int, seed: int, shuffle: bool = True, rank: int = 0, world_size: int = 1):
        self.size, self.seed, self.shuffle = size, seed, shuffle
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def indices(self) -> list:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
            order = torch.randperm(self.size, generator=g).tolist()
        else:
            order = list(range(self.size))
        per_rank = -(-self.size // self.world_size)
        order += order[:per_rank * self.world_size - len(order)]      # pad so every rank has as many
        return order[self.rank::self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices()[self.start:])

    def __len__(self) -> int:
        return max(len(self.indices()) - self.start, 0)
