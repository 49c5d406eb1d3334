"""The in-memory detection dataset every reader produces.

A :class:`Sample` is one image: its path (pixels are loaded only when asked), its size, the object
boxes (``xyxy`` in image pixels, float32) with class ids into :attr:`DetectionDataset.class_names`,
ignore regions (``DontCare``, crowd, difficult: neither positives nor negatives in training), per-box
attributes where the format has them (``occlusion``, ``truncation``) and an optional sequence id
(frames of one drive share it, so a split can keep them together).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from aiat_training.data.issues import CORRUPT_IMAGE, DatasetError, ReadIssue, read_text_file


def _boxes(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float32).reshape(-1, 4)


@dataclass
class Sample:
    image_path: Path
    width: int
    height: int
    boxes: np.ndarray = field(default_factory=lambda: _boxes([]))           # [N, 4] xyxy, float32
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # [N] class ids
    ignore: np.ndarray = field(default_factory=lambda: _boxes([]))          # [M, 4] xyxy
    # Per-box attributes, each an array of length N: 'occlusion' (KITTI 0..3 = fully visible ..
    # unknown; VOC/BDD 0/1), 'truncation' (KITTI 0..1; VOC/BDD 0/1). NaN where a box has no value.
    attributes: dict[str, np.ndarray] = field(default_factory=dict)
    sequence: str | None = None
    label_file: Path | None = None
    meta: dict = field(default_factory=dict)  # format extras, e.g. KITTI calibration matrices

    def __post_init__(self):
        self.image_path = Path(self.image_path)
        self.boxes = _boxes(self.boxes)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        self.ignore = _boxes(self.ignore)
        if len(self.labels) != len(self.boxes):
            raise ValueError(f'{self.image_path}: {len(self.boxes)} boxes but {len(self.labels)} labels')

    def load_image(self) -> np.ndarray:
        """The image as a BGR uint8 array [H, W, 3] (read from disk on each call); an image that
        cannot be decoded (missing, truncated PNG, not an image) raises :class:`DatasetError`."""
        import cv2
        image = cv2.imread(str(self.image_path), cv2.IMREAD_COLOR)
        if image is None:
            raise DatasetError(ReadIssue(CORRUPT_IMAGE, str(self.image_path), None, None,
                                         'cannot decode the image (missing, truncated or corrupt)'))
        return image

    @property
    def group(self) -> str:
        """The unit a split keeps together: the sequence, or the image itself."""
        return self.sequence if self.sequence is not None else str(self.image_path)


@dataclass
class DetectionDataset:
    samples: list[Sample]
    class_names: list[str]
    source: str = ''                      # e.g. 'kitti:/data/kitti/training'
    issues: list[ReadIssue] = field(default_factory=list)
    dropped_boxes: dict[str, int] = field(default_factory=dict)   # class -> boxes dropped by mapping
    mapped: bool = False     # class_names are a model's classes (from a class mapping)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Sample:
        return self.samples[index]

    def __iter__(self):
        return iter(self.samples)

    def subset(self, indices: Iterable[int]) -> 'DetectionDataset':
        return dataclasses.replace(self, samples=[self.samples[i] for i in indices])

    def select_files(self, image_paths: Sequence[str | Path]) -> 'DetectionDataset':
        """The samples whose image paths are listed (e.g. a split file list), in list order."""
        by_path = {str(s.image_path.resolve()): i for i, s in enumerate(self.samples)}
        indices, missing = [], []
        for p in image_paths:
            key = str(Path(p).resolve())
            if key in by_path:
                indices.append(by_path[key])
            else:
                missing.append(str(p))
        if missing:
            raise KeyError(f'{len(missing)} listed images are not in the dataset, e.g. {missing[:3]}')
        return self.subset(indices)

    def box_count(self) -> int:
        return int(sum(len(s.boxes) for s in self.samples))

    def class_counts(self) -> dict[str, int]:
        counts = np.zeros(len(self.class_names), np.int64)
        for s in self.samples:
            np.add.at(counts, s.labels, 1)
        return {name: int(c) for name, c in zip(self.class_names, counts)}


def read_file_list(path: str | Path) -> list[Path]:
    """Image paths from a split file list (one per line; relative paths are relative to the list)."""
    path = Path(path)
    out = []
    for line in read_text_file(path, 'split file list').splitlines():
        line = line.strip()
        if line and not line.startswith('#'):
            p = Path(line)
            out.append(p if p.is_absolute() else path.parent / p)
    return out
