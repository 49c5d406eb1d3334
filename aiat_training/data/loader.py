"""Torch dataset and collate for training: augmented, resized, normalised network inputs.

Output of :class:`TrainingDataset` ``[i]`` (a dict):

- ``image``: float32 tensor ``[3, H, W]`` (H, W = ``input.height``, ``input.width``), channels in
  ``input.color_order`` (BGR for the NanoDet bundle), ``(pixel - mean) / std``.
- ``boxes``: float32 tensor ``[N, 4]``, ``x1, y1, x2, y2`` in network-input pixels (0..W, 0..H),
  after augmentation (clipped; boxes below the visibility/size limits removed).
- ``labels``: int64 tensor ``[N]``, class ids into ``dataset.class_names``.
- ``ignore``: float32 tensor ``[M, 4]``, ignore regions (DontCare, crowd, mapped-to-ignore) in the
  same coordinates: no positive and no negative loss should come from anchors inside them.
- ``index``: int, the sample index; ``image_path``: str; ``orig_size``: (height, width) of the file;
  ``scale``: (sx, sy) = network pixels per original pixel before augmentation.

:func:`collate` stacks ``image`` into ``[B, 3, H, W]`` and keeps the rest as lists (boxes differ in
count). Resizing, channel order and normalisation are the vehicle's: the inference core's
:class:`Preprocessor` built from the input section's bundle InputSpec. Its resize runs first, then
augmentation at network resolution (cheaper, and boxes end up directly in network pixels), then its
channel ordering and normalisation.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from aiat_perception.inference.preprocess import Preprocessor
from aiat_training.config import AugmentationSection, InputSection
from aiat_training.data.augment import apply_augmentation, build_augmentation
from aiat_training.data.dataset import DetectionDataset
from aiat_training.data.issues import DatasetError


class TrainingDataset(Dataset):
    def __init__(self, dataset: DetectionDataset, input_cfg: InputSection | None = None,
                 augmentation: AugmentationSection | None = None, augment: bool = True,
                 seed: int | None = None):
        self.dataset = dataset
        self.input = input_cfg or InputSection()
        self.transform = (build_augmentation(augmentation, seed=seed,
                                             size=(self.input.height, self.input.width))
                          if augment and (augmentation is None or augmentation.enabled) else None)
        self.preprocessor = Preprocessor(self.input.spec())

    def __len__(self) -> int:
        return len(self.dataset)

    def resize(self, image: np.ndarray, boxes: np.ndarray, ignore: np.ndarray):
        image, t = self.preprocessor.resize(image)
        return image, t.to_network(boxes), t.to_network(ignore), (t.scale_x, t.scale_y)

    def load(self, index: int):
        """Augmented uint8 BGR image at the network size and its boxes, before normalisation."""
        sample = self.dataset.samples[index]
        image = sample.load_image()
        orig = image.shape[:2]
        image, boxes, ignore, scale = self.resize(image, sample.boxes, sample.ignore)
        labels = sample.labels
        if self.transform is not None:
            image, boxes, labels, ignore = apply_augmentation(self.transform, image, boxes, labels, ignore)
        return image, boxes, labels, ignore, orig, scale

    def normalize(self, image: np.ndarray) -> torch.Tensor:
        """[C, H, W] float32 in the input's channel order, ``(pixel - mean) / std``."""
        out = np.empty((self.preprocessor.channels, self.input.height, self.input.width), np.float32)
        self.preprocessor.fill(out, image, 'bgr8')
        return torch.from_numpy(out)

    def __getitem__(self, index: int) -> dict:
        """An image that cannot be decoded gives ``{'unreadable': ReadIssue, 'index': i}`` instead
        (raising here would reach the trainer as a worker traceback); :func:`collate` sets it apart
        and the trainer stops or skips per ``data.on_error``."""
        try:
            image, boxes, labels, ignore, orig, scale = self.load(index)
        except DatasetError as exc:
            return {'unreadable': exc.issue, 'index': index}
        return {'image': self.normalize(image),
                'boxes': torch.from_numpy(np.asarray(boxes, np.float32).reshape(-1, 4)),
                'labels': torch.from_numpy(np.asarray(labels, np.int64).reshape(-1)),
                'ignore': torch.from_numpy(np.asarray(ignore, np.float32).reshape(-1, 4)),
                'index': index, 'image_path': str(self.dataset.samples[index].image_path),
                'orig_size': orig, 'scale': scale}


def collate(items: list[dict]) -> dict:
    """``image`` is None when every item was unreadable; ``unreadable`` lists their issues."""
    unreadable = [it['unreadable'] for it in items if 'unreadable' in it]
    items = [it for it in items if 'unreadable' not in it]
    batch = {'image': torch.stack([it['image'] for it in items]) if items else None}
    for key in ('boxes', 'labels', 'ignore', 'index', 'image_path', 'orig_size', 'scale'):
        batch[key] = [it[key] for it in items]
    batch['unreadable'] = unreadable
    return batch


def worker_init_fn(worker_id: int) -> None:
    """Give each worker its own augmentation stream (derived from torch's per-worker seed)."""
    info = torch.utils.data.get_worker_info()
    dataset = info.dataset
    if getattr(dataset, 'transform', None) is not None:
        dataset.transform.set_random_seed(int(info.seed % (2 ** 31)))
    # No cv2.setNumThreads() here: in a forked worker it deadlocks on the thread pool inherited
    # from a parent that already ran OpenCV (seen with OpenCV 5).


def make_loader(dataset: TrainingDataset, batch_size: int = 16, shuffle: bool = True,
                num_workers: int = 2, seed: int | None = None, **kwargs) -> DataLoader:
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers,
                      collate_fn=collate, worker_init_fn=worker_init_fn if num_workers else None,
                      generator=generator, persistent_workers=num_workers > 0, **kwargs)
