"""Splits: reproducible with a seed, stratified by class presence, sequences never straddle splits."""
from __future__ import annotations

import numpy as np
import pytest

from aiat_training.data import DetectionDataset, Sample, read_file_list
from aiat_training.data.split import split_dataset, write_split


def make_dataset(n=200, rare_every=20, sequence_len=None, seed=0):
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(n):
        labels = [0] * int(rng.integers(1, 4))
        if i % rare_every == 0:
            labels.append(2)          # rare class: 5% of images
        if rng.random() < 0.3:
            labels.append(1)
        samples.append(Sample(f'/data/img{i:04d}.png', 100, 100, boxes=[[0, 0, 10, 10]] * len(labels),
                              labels=labels,
                              sequence=None if sequence_len is None else f'seq{i // sequence_len}'))
    return DetectionDataset(samples, ['common', 'medium', 'rare'])


def test_same_seed_same_split_and_other_seed_differs():
    ds = make_dataset()
    a = split_dataset(ds, seed=3)
    assert a == split_dataset(ds, seed=3)
    assert a != split_dataset(ds, seed=4)
    assert sorted(a['train'] + a['val'] + a['test']) == list(range(len(ds)))
    assert [len(a[k]) for k in ('train', 'val', 'test')] == [120, 40, 40]


def test_rare_class_reaches_every_split_in_proportion():
    ds = make_dataset()            # 10 images with the rare class
    for seed in range(5):
        split = split_dataset(ds, seed=seed)
        rare = {k: sum(2 in ds[i].labels for i in v) for k, v in split.items()}
        assert rare == {'train': 6, 'val': 2, 'test': 2}, (seed, rare)


def test_without_stratification_rare_class_can_miss_a_split():
    ds = make_dataset(n=200, rare_every=50)   # 4 rare images
    misses = 0
    for seed in range(20):
        split = split_dataset(ds, seed=seed, stratify=False)
        rare = [sum(2 in ds[i].labels for i in v) for v in split.values()]
        misses += min(rare) == 0
        strat = split_dataset(ds, seed=seed)
        assert min(sum(2 in ds[i].labels for i in v) for v in strat.values()) >= 1
    assert misses > 0


def test_grouping_keeps_sequences_together():
    ds = make_dataset(n=200, sequence_len=10)     # 20 sequences
    split = split_dataset(ds, seed=1, group_by_sequence=True)
    owner = {}
    for name, indices in split.items():
        for i in indices:
            assert owner.setdefault(ds[i].sequence, name) == name
    sequences = [len(split[k]) // 10 for k in ('train', 'val', 'test')]
    assert sum(sequences) == 20 and all(abs(a - b) <= 1 for a, b in zip(sequences, (12, 4, 4))), sequences
    assert split == split_dataset(ds, seed=1, group_by_sequence=True)


def test_configurable_fractions_and_validation():
    ds = make_dataset()
    split = split_dataset(ds, (0.8, 0.2, 0.0), seed=0)
    assert (len(split['train']), len(split['val']), len(split['test'])) == (160, 40, 0)
    with pytest.raises(ValueError, match='summing to 1'):
        split_dataset(ds, (0.5, 0.2, 0.2))


def test_written_lists_read_back(tmp_path):
    ds = make_dataset(n=30)
    split = split_dataset(ds, seed=0)
    files = write_split(ds, split, tmp_path, {'seed': 0})
    assert (tmp_path / 'split.json').is_file()
    listed = read_file_list(files['val'])
    assert [str(p) for p in listed] == [str(ds[i].image_path) for i in split['val']]
    assert ds.select_files(listed).samples == [ds[i] for i in split['val']]
