"""Datasets for a fit config: read (with class mapping), split (or read split lists), wrap for torch."""
from __future__ import annotations

from pathlib import Path

from aiat_training.config import ConfigError
from aiat_training.data.dataset import DetectionDataset, read_file_list
from aiat_training.data.readers import read_dataset
from aiat_training.data.split import split_dataset


def read_splits(cfg) -> dict:
    """{'train': DetectionDataset, 'val': ..., 'test': ...} for the config's data and split sections."""
    if cfg.data.path is None:
        raise ConfigError('data.path: required for training (where the dataset is)')
    if not Path(cfg.data.path).exists():
        raise ConfigError(f'data.path: {cfg.data.path} does not exist')
    if cfg.data.images is not None and not Path(cfg.data.images).is_dir():
        raise ConfigError(f'data.images: {cfg.data.images} is not a directory')
    dataset = read_dataset(cfg.data.format, cfg.data.path, cfg.data.images, cfg.data.subset,
                           cfg.class_mapping.to_mapping(), cfg.data.on_error, cfg.data.sequence_regex)
    return split_splits(dataset, cfg)


def split_splits(dataset: DetectionDataset, cfg) -> dict:
    s = cfg.split
    if s.lists_dir is not None:
        out = {}
        for name in ('train', 'val', 'test'):
            path = Path(s.lists_dir) / f'{name}.txt'
            if path.is_file():
                out[name] = dataset.select_files(read_file_list(path))
        if 'train' not in out:
            raise ConfigError(f'split.lists_dir: {Path(s.lists_dir) / "train.txt"} not found')
        return out
    indices = split_dataset(dataset, (s.train, s.val, s.test), s.seed, s.stratify, s.group_by_sequence)
    return {name: dataset.subset(idx) for name, idx in indices.items() if idx}
