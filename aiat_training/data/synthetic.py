"""Small rendered KITTI-format datasets (``image_2/*.png`` + ``label_2/*.txt``, read by the real
KITTI reader) for tests, benchmarks, smoke runs and demos where no real driving data is offline:

- :func:`render_kitti_dataset`: a textured road scene with box-shaped objects of five classes, each a
  filled shape with a per-class colour and a marked outline, so a box can be checked against the
  pixels it encloses; frame ids name drives (``SSFFFF``).
- :func:`write_synthetic_kitti`: drawn shapes for training runs: 'Car' = a wide filled rectangle
  with 'wheels', 'Pedestrian' = a tall ellipse with a 'head', on a noisy background; boxes exact.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from aiat_perception.sim.kitti import KittiObject

SHAPE_CLASSES = ('Car', 'Pedestrian')

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
    out = _kitti_dirs(out_dir)
    rng = np.random.default_rng(seed)
    width, height = size
    names = list(CLASS_STYLE)
    weights = np.array([(class_weights or {}).get(n, 1.0) for n in names], np.float64)
    weights = weights / weights.sum()
    for f in range(frames):
        seq = f * sequences // max(frames, 1)
        frame_id = f'{seq:02d}{f:04d}'
        image = _background(rng, width, height)
        objects = []
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
            objects.append(KittiObject(name, 0.0, occluded, 0.0, (x1i, y1i, x2i, y2i), (1.5, 1.6, 3.9),
                                       (0.0, 1.5, 20.0), 0.0))
        if dontcare and rng.random() < 0.5:
            x1, y1 = float(rng.uniform(0, width * 0.9)), height * 0.4
            objects.append(KittiObject('DontCare', -1.0, -1, -10.0,
                                       (x1, y1, x1 + width * 0.05, y1 + height * 0.08), (-1.0, -1.0, -1.0),
                                       (-1000.0, -1000.0, -1000.0), -10.0))
        _write_frame(out, frame_id, image, objects)
    return out


def write_synthetic_kitti(root: str | Path, num_images: int = 24, width: int = 128, height: int = 96,
                          max_objects: int = 3, seed: int = 0) -> Path:
    """Drawn cars and pedestrians (:data:`SHAPE_CLASSES`) under ``root``; returns ``root``."""
    root = _kitti_dirs(root)
    rng = np.random.default_rng(seed)
    for i in range(num_images):
        base = rng.integers(60, 200, 3)
        image = np.clip(rng.normal(0, 18, (height, width, 3)) + base, 0, 255).astype(np.uint8)
        objects = []
        for _ in range(int(rng.integers(1, max_objects + 1))):
            cls = SHAPE_CLASSES[int(rng.integers(0, len(SHAPE_CLASSES)))]
            box = _draw_shape(rng, image, cls)
            objects.append(KittiObject(cls, 0.0, 0, 0.0, tuple(box), (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), 0.0))
        _write_frame(root, f'{i:06d}', image, objects)
    return root


def _kitti_dirs(root: str | Path) -> Path:
    root = Path(root)
    for name in ('image_2', 'label_2'):
        (root / name).mkdir(parents=True, exist_ok=True)
    return root


def _write_frame(root: Path, frame_id: str, image: np.ndarray, objects) -> None:
    if not cv2.imwrite(str(root / 'image_2' / f'{frame_id}.png'), image):
        raise OSError(f'cannot write {root / "image_2" / f"{frame_id}.png"}')
    (root / 'label_2' / f'{frame_id}.txt').write_text(''.join(o.line() + '\n' for o in objects))


def _background(rng, width, height) -> np.ndarray:
    sky = np.linspace(200, 150, height // 3, dtype=np.float32)[:, None, None] * np.ones((1, width, 3), np.float32)
    road = np.full((height - height // 3, width, 3), 90, np.float32)
    image = np.concatenate([sky, road]) + rng.normal(0, 8, (height, width, 3)).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def _draw_shape(rng, image, cls: str):
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
