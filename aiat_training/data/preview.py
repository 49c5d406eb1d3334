"""Contact sheet of augmented training samples with their boxes drawn (``aiat-data augment-preview``)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from aiat_perception.draw import draw_boxes
from aiat_training.data.loader import TrainingDataset


def draw_sample(image: np.ndarray, boxes, labels, names, ignore=()) -> np.ndarray:
    """Boxes in class colours with their names; ignore regions as grey boxes."""
    ignore = np.asarray(ignore).reshape(-1, 4)
    out = draw_boxes(image, ignore, ['ignore'] * len(ignore), color=(160, 160, 160), thickness=1)
    labels = np.asarray(labels, np.int64).reshape(-1)
    text = [names[k] if 0 <= k < len(names) else str(k) for k in labels.tolist()]
    return draw_boxes(out, boxes, text, labels, copy=False)


def contact_sheet(train_set: TrainingDataset, samples: int = 4, variants: int = 4, seed: int = 0,
                  tile: int = 256) -> np.ndarray:
    """Rows = dataset samples (first column: without augmentation), columns = augmented variants."""
    rng = np.random.default_rng(seed)
    n = len(train_set)
    if n == 0:
        raise ValueError('the dataset is empty: nothing to preview')
    indices = rng.choice(n, size=min(samples, n), replace=False)
    names = train_set.dataset.class_names
    transform = train_set.transform
    rows = []
    for row, index in enumerate(indices):
        tiles = []
        for v in range(variants + 1):
            train_set.transform = None if v == 0 else transform
            if transform is not None and v:
                transform.set_random_seed(seed * 100003 + row * 1009 + v)
            image, boxes, labels, ignore, _, _ = train_set.load(int(index))
            drawn = draw_sample(image, boxes, labels, names, ignore)
            drawn = cv2.resize(drawn, (tile, tile * drawn.shape[0] // drawn.shape[1]))
            cv2.putText(drawn, 'original' if v == 0 else f'aug {v}', (4, drawn.shape[0] - 6),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
            tiles.append(cv2.copyMakeBorder(drawn, 2, 2, 2, 2, cv2.BORDER_CONSTANT, value=(40, 40, 40)))
        rows.append(np.hstack(tiles))
    train_set.transform = transform
    return np.vstack(rows)


def write_contact_sheet(train_set: TrainingDataset, out_path: str | Path, **kwargs) -> Path:
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    sheet = contact_sheet(train_set, **kwargs)
    if not cv2.imwrite(str(out_path), sheet):
        raise OSError(f'cannot write {out_path}')
    return out_path
