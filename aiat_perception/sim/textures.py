"""Texture images for the simulator: real photo crops and procedural ground/road surfaces.

PyBullet loads textures from files, so every texture is written once as a PNG into the asset cache
(``cache_dir('sim', 'textures')``) under a name that encodes its parameters, then re-used.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from aiat_perception.assets import cache_dir, darknet_image, vtest_video
from aiat_perception.sim.catalog import PHOTO_CROPS

PHOTO_TEXTURE_HEIGHT = 256


def _write_png(path: Path, image: np.ndarray) -> Path:
    if path.exists():
        return path
    fd, tmp = tempfile.mkstemp(suffix='.png', dir=str(path.parent))
    os.close(fd)
    if not cv2.imwrite(tmp, image):
        os.unlink(tmp)
        raise RuntimeError(f'cannot write texture {path}')
    os.replace(tmp, path)  # atomic: concurrent simulators may write the same texture
    return path


def _source_image(source: str) -> np.ndarray:
    if source.startswith('vtest:'):
        index = int(source.split(':', 1)[1])
        capture = cv2.VideoCapture(str(vtest_video()))
        try:
            capture.set(cv2.CAP_PROP_POS_FRAMES, index)
            ok, frame = capture.read()
        finally:
            capture.release()
        if not ok:
            raise RuntimeError(f'cannot read frame {index} of {vtest_video()}')
        return frame
    image = cv2.imread(str(darknet_image(source)))
    if image is None:
        raise RuntimeError(f'cannot read {darknet_image(source)}')
    return image


def photo_crop(crop_id: str) -> np.ndarray:
    """The BGR crop of a real photo (unscaled)."""
    crop = PHOTO_CROPS[crop_id]
    image = _source_image(crop.source)
    x0, y0, x1, y1 = crop.box
    return image[y0:y1, x0:x1].copy()


def photo_texture(crop_id: str, gain: float = 1.0, bias: float = 0.0) -> Path:
    """PNG of a photo crop, resized to a fixed height, with brightness ``gain * pixel + bias``."""
    name = f'photo_{crop_id}_g{gain:.3f}_b{bias:+.1f}.png'
    path = cache_dir('sim', 'textures') / name
    if path.exists():
        return path
    crop = photo_crop(crop_id)
    h, w = crop.shape[:2]
    width = max(8, int(round(w * PHOTO_TEXTURE_HEIGHT / h)))
    crop = cv2.resize(crop, (width, PHOTO_TEXTURE_HEIGHT), interpolation=cv2.INTER_AREA)
    crop = np.clip(crop.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)
    return _write_png(path, crop)


def photo_aspect(crop_id: str) -> float:
    """Width / height of a crop rectangle."""
    x0, y0, x1, y1 = PHOTO_CROPS[crop_id].box
    return (x1 - x0) / float(y1 - y0)


def surface_texture(kind: str, seed: int, base_bgr=None, size: int = 256) -> Path:
    """Procedural noise texture: 'grass', 'asphalt' or 'sidewalk'; same seed -> same file."""
    defaults = {'grass': (60, 120, 70), 'asphalt': (70, 70, 72), 'sidewalk': (150, 150, 145)}
    base = np.array(base_bgr if base_bgr is not None else defaults[kind], dtype=np.float32)
    key = '_'.join(str(int(v)) for v in base)
    path = cache_dir('sim', 'textures') / f'{kind}_{seed}_{key}_{size}.png'
    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    fine = rng.normal(0.0, 1.0, (size, size, 1)).astype(np.float32)
    coarse = cv2.resize(rng.normal(0.0, 1.0, (size // 16, size // 16)).astype(np.float32), (size, size),
                        interpolation=cv2.INTER_CUBIC)[:, :, None]
    amplitude = {'grass': (18.0, 20.0), 'asphalt': (10.0, 8.0), 'sidewalk': (6.0, 10.0)}[kind]
    image = base[None, None, :] + amplitude[0] * fine + amplitude[1] * coarse
    return _write_png(path, np.clip(image, 0, 255).astype(np.uint8))
