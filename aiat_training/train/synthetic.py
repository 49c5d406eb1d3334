"""A tiny synthetic KITTI-format dataset (drawn shapes) for tests, benchmarks and smoke runs.

'Car' = a wide filled rectangle with 'wheels', 'Pedestrian' = a tall ellipse with a 'head', on a
noisy textured background; boxes are exact. Written as ``image_2/*.png`` + ``label_2/*.txt`` so
the real KITTI reader and the whole ``aiat-train`` path are exercised.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

CLASSES = ('Car', 'Pedestrian')


def _draw(rng, image, cls: str):
    import cv2
    h, w = image.shape[:2]
    if cls == 'Car':
        bw = int(rng.uniform(0.18, 0.45) * w)
        bh = int(bw * rng.uniform(0.45, 0.65))
    else:
        bh = int(rng.uniform(0.25, 0.6) * h)
        bw = int(bh * rng.uniform(0.3, 0.45))
    bw, bh = max(bw, 8), max(bh, 8)
    x1 = int(rng.integers(0, max(w - bw, 1)))
    y1 = int(rng.integers(0, max(h - bh, 1)))
    x2, y2 = x1 + bw, y1 + bh
    colour = tuple(int(c) for c in rng.integers(40, 255, 3))
    if cls == 'Car':
        cv2.rectangle(image, (x1, y1 + bh // 4), (x2 - 1, y2 - bh // 5), colour, -1)
        cv2.rectangle(image, (x1 + bw // 5, y1), (x2 - 1 - bw // 5, y1 + bh // 4), colour, -1)
        r = max(bh // 5, 2)
        for cx in (x1 + bw // 4, x2 - bw // 4):
            cv2.circle(image, (cx, y2 - r - 1), r, (20, 20, 20), -1)
    else:
        head = max(bw // 2, 3)
        cv2.circle(image, ((x1 + x2) // 2, y1 + head // 2 + 1), head // 2 + 1, colour, -1)
        cv2.ellipse(image, ((x1 + x2) // 2, (y1 + head + y2) // 2), (bw // 2, (y2 - y1 - head) // 2),
                    0, 0, 360, colour, -1)
    return [x1, y1, x2, y2]


def write_synthetic_kitti(root: str | Path, num_images: int = 24, width: int = 128, height: int = 96,
                          max_objects: int = 3, seed: int = 0) -> Path:
    """Write the dataset under ``root`` (``image_2/``, ``label_2/``); returns ``root``."""
    import cv2
    root = Path(root)
    (root / 'image_2').mkdir(parents=True, exist_ok=True)
    (root / 'label_2').mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(num_images):
        base = rng.integers(60, 200, 3)
        image = np.clip(rng.normal(0, 18, (height, width, 3)) + base, 0, 255).astype(np.uint8)
        lines = []
        for _ in range(int(rng.integers(1, max_objects + 1))):
            cls = CLASSES[int(rng.integers(0, len(CLASSES)))]
            x1, y1, x2, y2 = _draw(rng, image, cls)
            lines.append(f'{cls} 0.00 0 0.00 {x1:.2f} {y1:.2f} {x2:.2f} {y2:.2f} 0 0 0 0 0 0 0')
        cv2.imwrite(str(root / 'image_2' / f'{i:06d}.png'), image)
        (root / 'label_2' / f'{i:06d}.txt').write_text('\n'.join(lines) + '\n')
    return root
