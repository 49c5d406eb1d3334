"""Reproducible train/val/test splits, stratified by class presence, optionally grouped by sequence.

Hand-written because no library here does both: scikit-learn's ``StratifiedGroupKFold`` takes one
label per sample, ``iterative-stratification`` has no groups. The method is iterative stratification
(Sechidis et al., 2011) over groups: groups holding the rarest classes are placed first, each into
the split that most lacks that class, so rare classes reach every split.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from aiat_training.data.dataset import DetectionDataset

SPLIT_NAMES = ('train', 'val', 'test')


def split_dataset(dataset: DetectionDataset, fractions=(0.6, 0.2, 0.2), seed: int = 0,
                  stratify: bool = True, group_by_sequence: bool = False,
                  names=SPLIT_NAMES) -> dict[str, list[int]]:
    """Sample indices per split. Same dataset (same order), fractions and seed -> same split."""
    fractions = np.asarray(fractions, np.float64)
    if len(fractions) != len(names) or (fractions < 0).any() or abs(fractions.sum() - 1) > 1e-6:
        raise ValueError(f'fractions must be {len(names)} non-negative numbers summing to 1, got {fractions}')
    rng = np.random.default_rng(seed)
    n_classes = len(dataset.class_names)

    keys = [s.group if group_by_sequence else str(i) for i, s in enumerate(dataset.samples)]
    group_index: dict[str, int] = {}
    members: list[list[int]] = []
    for i, key in enumerate(keys):
        if key not in group_index:
            group_index[key] = len(members)
            members.append([])
        members[group_index[key]].append(i)
    n_groups = len(members)
    # presence[g, c] = images of group g that contain class c
    presence = np.zeros((n_groups, n_classes), np.int64)
    sizes = np.array([len(m) for m in members], np.int64)
    for g, idx in enumerate(members):
        for i in idx:
            presence[g, np.unique(dataset.samples[i].labels)] += 1

    order = rng.permutation(n_groups)
    want_images = fractions * len(dataset)
    have_images = np.zeros(len(names))
    assignment = np.full(n_groups, -1)
    if stratify and n_classes:
        totals = presence.sum(axis=0)
        want_class = fractions[:, None] * totals[None, :]
        have_class = np.zeros((len(names), n_classes))
        # rarest class of each group (groups without labels last), ties in the random order
        rarity = np.where(presence > 0, totals[None, :], np.iinfo(np.int64).max)
        rarest = rarity.argmin(axis=1)
        rarest_count = rarity.min(axis=1)
        order = order[np.argsort(rarest_count[order], kind='stable')]
        for g in order:
            # Deficits are relative (share still missing), so a split that has none of a class yet
            # comes first: rare classes reach every split and no split is left empty.
            if presence[g].any():
                c = rarest[g]
                deficit = (want_class[:, c] - have_class[:, c]) / np.maximum(want_class[:, c], 1e-9)
            else:
                deficit = (want_images - have_images) / np.maximum(want_images, 1e-9)
            image_deficit = (want_images - have_images) / np.maximum(want_images, 1e-9)
            # most-lacking split for the group's rarest class and in images (so group sizes do not
            # skew the split sizes); a split with fraction 0 never gets anything
            score = np.where(fractions > 0, deficit + image_deficit, -np.inf)
            candidates = np.flatnonzero(score >= score.max() - 1e-9)
            s = candidates[np.argmax(image_deficit[candidates])]
            assignment[g] = s
            have_class[s] += presence[g]
            have_images[s] += sizes[g]
    else:
        for g in order:
            deficit = np.where(fractions > 0, (want_images - have_images) / np.maximum(want_images, 1e-9),
                               -np.inf)
            s = int(np.argmax(deficit))
            assignment[g] = s
            have_images[s] += sizes[g]
    out = {name: [] for name in names}
    for g, s in enumerate(assignment):
        out[names[s]].extend(members[g])
    return {name: sorted(idx) for name, idx in out.items()}


def split_summary(dataset: DetectionDataset, split: dict[str, list[int]]) -> dict:
    summary = {}
    for name, indices in split.items():
        counts = np.zeros(len(dataset.class_names), np.int64)
        images_with = np.zeros(len(dataset.class_names), np.int64)
        for i in indices:
            labels = dataset.samples[i].labels
            np.add.at(counts, labels, 1)
            images_with[np.unique(labels)] += 1
        summary[name] = {
            'images': len(indices),
            'sequences': len({dataset.samples[i].group for i in indices}),
            'boxes_per_class': dict(zip(dataset.class_names, counts.tolist())),
            'images_with_class': dict(zip(dataset.class_names, images_with.tolist())),
        }
    return summary


def write_split(dataset: DetectionDataset, split: dict[str, list[int]], out_dir: str | Path,
                settings: dict | None = None) -> dict[str, Path]:
    """``<name>.txt`` per split (absolute image paths, one a line) and ``split.json`` (settings, counts)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, indices in split.items():
        path = out_dir / f'{name}.txt'
        path.write_text(''.join(f'{dataset.samples[i].image_path.resolve()}\n' for i in indices))
        files[name] = path
    (out_dir / 'split.json').write_text(json.dumps(
        {'source': dataset.source, 'settings': settings or {}, 'splits': split_summary(dataset, split)},
        indent=2))
    return files
