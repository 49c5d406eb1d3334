"""Dataset readers: each returns a :class:`~aiat_training.data.dataset.DetectionDataset`."""
from __future__ import annotations

import re
from pathlib import Path

from aiat_training.data.classmap import ClassMapping
from aiat_training.data.dataset import DetectionDataset
from aiat_training.data.readers.bdd100k import read_bdd100k
from aiat_training.data.readers.cityscapes import read_cityscapes
from aiat_training.data.readers.coco import read_coco
from aiat_training.data.readers.kitti import read_kitti
from aiat_training.data.readers.voc import read_voc
from aiat_training.data.readers.yolo import read_yolo

FORMATS = ('kitti', 'bdd100k', 'cityscapes', 'coco', 'yolo', 'voc')


def read_dataset(format: str, path: str | Path, images: str | Path | None = None,
                 subset: str | None = None, mapping: ClassMapping | None = None,
                 on_error: str = 'raise', sequence_regex: str | None = None) -> DetectionDataset:
    """One entry point for every format (what the ``data`` config section and ``aiat-data`` use).

    ``path``: KITTI split dir (with image_2/, label_2/), BDD100K label JSON, Cityscapes root, COCO
    annotation JSON, YOLO data YAML, or VOC root. ``images``: image directory (BDD100K, COCO).
    ``subset``: Cityscapes split, YOLO split key, or VOC ImageSets/Main list name.
    ``sequence_regex``: first group applied to the image file stem gives the sequence id of samples
    that have none from the format.
    """
    path = Path(path)
    if format == 'kitti':
        dataset = read_kitti(path, mapping, on_error)
    elif format == 'bdd100k':
        dataset = read_bdd100k(path, _need(images, format), mapping, on_error)
    elif format == 'cityscapes':
        dataset = read_cityscapes(path, subset or 'train', mapping, on_error)
    elif format == 'coco':
        dataset = read_coco(path, _need(images, format), mapping, on_error)
    elif format == 'yolo':
        dataset = read_yolo(path, subset or 'train', mapping, on_error)
    elif format == 'voc':
        dataset = read_voc(path, subset, mapping, on_error)
    else:
        raise ValueError(f'unknown dataset format {format!r}; one of {FORMATS}')
    if sequence_regex:
        pattern = re.compile(sequence_regex)
        for sample in dataset.samples:
            if sample.sequence is None:
                match = pattern.search(sample.image_path.stem)
                if match:
                    sample.sequence = match.group(1) if pattern.groups else match.group(0)
    return dataset


def _need(images, format):
    if images is None:
        raise ValueError(f'{format}: the image directory (images) is required')
    return images


__all__ = ['FORMATS', 'read_dataset', 'read_kitti', 'read_bdd100k', 'read_cityscapes', 'read_coco',
           'read_yolo', 'read_voc']
