"""A small rendered KITTI-format dataset (textured road scene with box-shaped objects).

For tests, the data-loader benchmark and demos where no real driving data is available offline.
Objects are filled shapes with a per-class colour and a marked outline, so a box can be checked
against the pixels it encloses.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

# class -> (BGR colour, typical width/height range in px at 1242x375, aspect w/h)
CLASS_STYLE = {
    'Car': ((40, 40, 200), (40, 220), 1.8),
    'Van': ((40, 160, 200), (50, 200), 1.3),
    'Truck': ((160, 60, 60), (60, 260), 1.5),
    'Pedestrian': ((60, 200, 60), (12, 60), 0.4),
    'Cyclist': ((200, 60, 200), (15, 70), 0.7),
}


def render_kitti_dataset(out_dir: str | Path, frames: int = 20, size=(1242, 375), seed: int = 0,
                         class_weights: dict[str, float] | None = None, sequences: int = 4,
                         max_objects: int = 6, dontcare: bool = True) -> Path:
    """Write ``image_2/<id>.png`` and ``label_2/<id>.txt``. Frames are split evenly into
    ``sequences`` drives; the id is ``SSFFFF`` (drive, frame), so ``sequence_regex: '^(\\d{2})'``
    recovers the drive."""
    out = Path(out_dir)
    (out / 'image_2').mkdir(parents=True, exist_ok=True)
    (out / 'label_2').mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    width, height = size
    names = list(CLASS_STYLE)
    weights = np.array([(class_weights or {}).get(n, 1.0) for n in names], np.float64)
    weights = weights / weights.sum()
    for f in range(frames):
        seq = f * sequences // max(frames, 1)
        frame_id = f'{seq:02d}{f:04d}'
        image = _background(rng, width, height)
        lines = []
        for _ in range(int(rng.integers(1, max_objects + 1))):
            name = names[int(rng.choice(len(names), p=weights))]
            color, (lo, hi), aspect = CLASS_STYLE[name]
            k = height / 375.0
            h = float(rng.uniform(lo, hi)) * k / max(aspect, 1.0) if aspect > 1 else float(rng.uniform(lo, hi)) * k
            h = max(h, 4.0)
            w = h * aspect * float(rng.uniform(0.85, 1.15))
            h, w = min(h, height * 0.9), min(w, width * 0.5)
            x1 = float(rng.uniform(0, width - w))
            y1 = float(rng.uniform(height * 0.35, height - h)) if h < height * 0.6 else 0.0
            x1i, y1i, x2i, y2i = int(x1), int(y1), int(np.ceil(x1 + w)), int(np.ceil(y1 + h))
            cv2.rectangle(image, (x1i, y1i), (x2i - 1, y2i - 1), color, -1)
            cv2.rectangle(image, (x1i, y1i), (x2i - 1, y2i - 1), (255, 255, 255), 1)
            occluded = int(rng.integers(0, 3))
            lines.append(f'{name} 0.00 {occluded} 0.00 {x1i:.2f} {y1i:.2f} {x2i:.2f} {y2i:.2f} '
                         '1.50 1.60 3.90 0.00 1.50 20.00 0.00')
        if dontcare and rng.random() < 0.5:
            x1, y1 = float(rng.uniform(0, width * 0.9)), height * 0.4
            lines.append(f'DontCare -1 -1 -10 {x1:.2f} {y1:.2f} {x1 + width * 0.05:.2f} {y1 + height * 0.08:.2f} '
                         '-1 -1 -1 -1000 -1000 -1000 -10')
        cv2.imwrite(str(out / 'image_2' / f'{frame_id}.png'), image)
        (out / 'label_2' / f'{frame_id}.txt').write_text('\n'.join(lines) + '\n')
    return out


def _background(rng, width, height) -> np.ndarray:
    sky = np.linspace(200, 150, height // 3, dtype=np.float32)[:, None, None] * np.ones((1, width, 3), np.float32)
    road = np.full((height - height // 3, width, 3), 90, np.float32)
    image = np.concatenate([sky, road]) + rng.normal(0, 8, (height, width, 3)).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)
