"""Contact sheet of augmented training samples with their boxes drawn (``aiat-data augment-preview``)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from aiat_training.data.loader import TrainingDataset


def class_color(class_id: int) -> tuple[int, int, int]:
    hue = (class_id * 47) % 180
    bgr = cv2.cvtColor(np.uint8([[[hue, 220, 255]]]), cv2.COLOR_HSV2BGR)[0, 0]
    return tuple(int(v) for v in bgr)


def draw_boxes(image: np.ndarray, boxes, labels, names, ignore=()) -> np.ndarray:
    """Boxes in class colours with their names; ignore regions as grey dashed-looking boxes."""
    out = image.copy()
    for box in np.asarray(ignore).reshape(-1, 4):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        cv2.rectangle(out, (x1, y1), (x2, y2), (160, 160, 160), 1, cv2.LINE_4)
        cv2.line(out, (x1, y1), (x2, y2), (160, 160, 160), 1)
    for box, label in zip(np.asarray(boxes).reshape(-1, 4), labels):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        color = class_color(int(label))
        cv2.rectangle(out, (x1, y1), (x2, y2), color, 2)
        text = names[int(label)] if 0 <= int(label) < len(names) else str(int(label))
        cv2.putText(out, text, (x1 + 2, max(y1 - 3, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, color, 1,
                    cv2.LINE_AA)
    return out


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
            drawn = draw_boxes(image, boxes, labels, names, ignore)
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
