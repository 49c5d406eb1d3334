"""INT8 calibration data: images fed through the bundle's own preprocessing.

The source is a directory of images or a dataset split file (``aiat-data split`` writes one image
path a line; relative paths are taken from the file's directory). The batches are exactly what the
bundle's :class:`~aiat_perception.inference.preprocess.Preprocessor` makes of those images, so the
activation ranges TensorRT measures are the ones the vehicle will see.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Iterator, List, Optional, Union

import numpy as np

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff', '.ppm', '.pgm')
MAX_IMAGES = 10_000
MAX_IMAGE_PIXELS = 64_000_000


class CalibrationError(ValueError):
    pass


def calibration_image_paths(source: Union[str, Path], limit: Optional[int] = None) -> List[Path]:
    """Image files of a directory (sorted, not recursive) or of a split file, at most ``limit``."""
    source = Path(source)
    if source.is_dir():
        paths = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not paths:
            raise CalibrationError(f'{source}: no images ({", ".join(IMAGE_SUFFIXES)}) in this directory')
    elif source.is_file():
        try:
            lines = source.read_text(encoding='utf-8').splitlines()
        except UnicodeDecodeError:
            raise CalibrationError(f'{source}: not a text split file (one image path a line)') from None
        paths = []
        for number, line in enumerate(lines, 1):
            line = line.strip()
            if not line or line.startswith('#'):
                continue
            path = Path(line)
            if not path.is_absolute():
                path = source.parent / path
            if not path.is_file():
                raise CalibrationError(f'{source}:{number}: image {line!r} does not exist')
            paths.append(path)
        if not paths:
            raise CalibrationError(f'{source}: the split file lists no images')
    else:
        raise CalibrationError(f'{source}: calibration data not found (a directory of images or a '
                               f'split file from `aiat-data split`)')
    limit = MAX_IMAGES if limit is None else int(limit)
    if limit < 1:
        raise CalibrationError(f'calibration image limit {limit}: must be at least 1')
    return paths[:min(limit, MAX_IMAGES)]


def read_image(path: Path) -> np.ndarray:
    """BGR uint8 image; a clear error for unreadable or absurdly large files."""
    import cv2
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise CalibrationError(f'{path}: not an image OpenCV can read')
    if image.shape[0] * image.shape[1] > MAX_IMAGE_PIXELS:
        raise CalibrationError(f'{path}: {image.shape[1]}x{image.shape[0]} is above the '
                               f'{MAX_IMAGE_PIXELS} pixel limit for calibration images')
    return image


class CalibrationBatches:
    """Batches of ``batch_size`` preprocessed images (NCHW float32, the bundle's normalisation).

    A last partial batch is dropped (TensorRT calibrates on fixed-size batches); with fewer images
    than ``batch_size`` the batch size shrinks to the number of images.
    """

    def __init__(self, bundle: Any, source: Union[str, Path], batch_size: int = 8,
                 limit: Optional[int] = None, interpolation: str = 'linear'):
        from ..inference.preprocess import Preprocessor
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise CalibrationError(f'calibration batch size {batch_size!r}: expected a whole number >= 1')
        self.bundle = bundle
        self.source = str(source)
        self.paths = calibration_image_paths(source, limit)
        self.batch_size = min(batch_size, len(self.paths))
        spec = bundle.input
        if spec.resize == 'keep_aspect':
            # keep_aspect picks a size per image; calibration runs at one shape (the trained size,
            # the profile's opt), so the aspect is kept by letterboxing into it instead
            import dataclasses
            spec = dataclasses.replace(spec, resize='letterbox')
        self.preprocessor = Preprocessor(spec, interpolation)

    @property
    def num_batches(self) -> int:
        return len(self.paths) // self.batch_size

    @property
    def images_used(self) -> int:
        return self.num_batches * self.batch_size

    @property
    def shape(self):
        spec = self.bundle.input
        return (self.batch_size, spec.channels, spec.height, spec.width)

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[np.ndarray]:
        for start in range(0, self.images_used, self.batch_size):
            images = [read_image(p) for p in self.paths[start:start + self.batch_size]]
            tensor, _ = self.preprocessor(images, 'bgr8')
            yield np.ascontiguousarray(tensor, dtype=np.float32).copy()

    def fingerprint(self) -> str:
        """sha256 over the used file names and sizes (cheap; identifies the calibration set)."""
        digest = hashlib.sha256()
        for path in self.paths[:self.images_used]:
            digest.update(f'{path.name}:{path.stat().st_size}\n'.encode())
        return digest.hexdigest()


def make_entropy_calibrator(trt: Any, batches: CalibrationBatches, cache_file: Union[str, Path],
                            cuda: Any) -> Any:
    """A ``trt.IInt8EntropyCalibrator2`` over ``batches``; reads and writes ``cache_file`` so a
    rebuild with the same data skips calibration. ``cuda`` is a :class:`cuda_api.CudaRuntime`.

    Never run on hardware here.
    """
    cache_file = Path(cache_file)

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._iterator = iter(batches)
            self._host = cuda.pinned_empty(batches.shape, np.float32)
            self._device = cuda.malloc(self._host.nbytes)
            self._stream = cuda.stream()
            self.batches_fed = 0

        def get_batch_size(self) -> int:
            return batches.batch_size

        def get_batch(self, names: List[str]) -> Optional[List[int]]:
            try:
                batch = next(self._iterator)
            except StopIteration:
                return None
            np.copyto(self._host, batch)
            cuda.htod_async(self._device, self._host, self._stream)
            cuda.synchronize(self._stream)
            self.batches_fed += 1
            return [int(self._device)] * len(names)

        def read_calibration_cache(self) -> Optional[bytes]:
            return cache_file.read_bytes() if cache_file.is_file() else None

        def write_calibration_cache(self, cache: Any) -> None:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            cache_file.write_bytes(bytes(cache))

        def release(self) -> None:
            cuda.free(self._device)
            cuda.free_pinned(self._host)
            cuda.destroy_stream(self._stream)

    return EntropyCalibrator()
