"""Full decode of every image, so truncated or corrupt files are found before training.

The readers only read image headers (fast, and enough for sizes); a PNG or JPEG cut short passes
that check and would fail (PNG) or silently train on grey pixels (JPEG: OpenCV fills the rest) in
the first epoch. Pillow's full decode refuses both.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from aiat_training.data.dataset import DetectionDataset
from aiat_training.data.issues import CORRUPT_IMAGE, IssueLog


def image_problem(path: Path) -> str | None:
    """None if the whole image decodes, else what is wrong (one line)."""
    from PIL import Image
    try:
        with Image.open(path) as image:
            image.load()
    except FileNotFoundError:
        return 'image file not found'
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, MemoryError) as exc:
        text = ' '.join(str(exc).split()) or type(exc).__name__
        return f'cannot decode the whole image: {text}'
    return None


def verify_images(dataset: DetectionDataset, on_error: str = 'raise', progress: bool = True) -> DetectionDataset:
    """``dataset`` without the samples whose image does not decode completely; each such image is a
    ``corrupt_image`` issue (``on_error='raise'``: :class:`DatasetError` at the first one).
    ``progress``: a tqdm bar on stderr (shown only on a terminal)."""
    from tqdm import tqdm
    log = IssueLog(on_error)
    keep, verdicts = [], {}
    for sample in tqdm(dataset.samples, desc='verifying images', unit='img', disable=None if progress else True):
        key = str(sample.image_path)
        if key not in verdicts:
            verdicts[key] = image_problem(sample.image_path)
            if verdicts[key] is not None:
                log.report(CORRUPT_IMAGE, key, verdicts[key])
        if verdicts[key] is None:
            keep.append(sample)
    return dataclasses.replace(dataset, samples=keep, issues=list(dataset.issues) + log.issues)
