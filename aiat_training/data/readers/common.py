"""What every reader shares: box checks, class resolution, issue reporting, sample assembly."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from aiat_training.data import issues as K
from aiat_training.data.classmap import DROP, IGNORE, ClassMapping
from aiat_training.data.dataset import DetectionDataset, Sample
from aiat_training.data.issues import IssueLog, decode_error_message

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.webp', '.tif', '.tiff')


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the file header only, or None if the file is missing/unreadable."""
    from PIL import Image, UnidentifiedImageError  # reads the header without decoding the pixels
    try:
        with Image.open(path) as im:
            return im.size
    except (UnidentifiedImageError, OSError, ValueError):     # ValueError: a NUL in the name
        return None


def is_file(path) -> bool:
    """``Path.is_file()``, but False for a name the system refuses (longer than NAME_MAX, ...): a
    label file can name any image, and pathlib only hides 'not found'-like errors."""
    try:
        return Path(path).is_file()
    except (OSError, ValueError):
        return False


def is_dir(path) -> bool:
    """``Path.is_dir()`` with the same answer for a refused name as :func:`is_file`."""
    try:
        return Path(path).is_dir()
    except (OSError, ValueError):
        return False


MAX_IMAGE_SIDE = 100_000     # a size a label file claims beyond this is malformed, not an image


def image_side(value) -> int:
    """A width/height from a label file: a positive whole number up to :data:`MAX_IMAGE_SIDE`
    (ValueError otherwise, also for NaN/inf/bool/strings)."""
    # the range is checked first: math.isfinite() of an int beyond float range raises OverflowError
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_IMAGE_SIDE \
            or value != int(value):
        raise ValueError(f'image size must be a whole number 1..{MAX_IMAGE_SIDE}, got {value!r:.40}')
    return int(value)


def read_text(ctx: 'ReadContext', path: Path, kind: str = 'label file') -> str | None:
    """The file's text (UTF-8, a BOM allowed), or None after reporting a non-UTF-8/unreadable file
    (``on_error='skip'`` then leaves the file out and counts it)."""
    try:
        # decoded whole: the incremental decoder behind read_text() silently drops a cut-off BOM
        return Path(path).read_bytes().decode('utf-8-sig')
    except UnicodeDecodeError as exc:
        ctx.issue(K.MALFORMED_FILE, path, f'{kind}: {decode_error_message(exc)}')
    except OSError as exc:
        ctx.issue(K.MALFORMED_FILE, path, f'{kind}: cannot read it: {exc.strerror or exc}')
    return None


def find_image(directory: Path, stem: str) -> Path | None:
    for suffix in IMAGE_SUFFIXES:
        for candidate in (directory / (stem + suffix), directory / (stem + suffix.upper())):
            if is_file(candidate):
                return candidate
    return None


class ReadContext:
    """Builds samples for one reader call.

    ``known_classes``: the format's class list (YOLO names, COCO categories, KITTI types); a name
    outside it is an ``unknown_class`` issue. ``None`` = open set (e.g. VOC from a labelling tool):
    every name found becomes a class. ``mapping`` (optional) then maps dataset classes onto the
    model's classes; without it the dataset's own classes are kept.
    """

    def __init__(self, on_error: str = 'raise', mapping: ClassMapping | None = None,
                 known_classes: list[str] | None = None, box_tolerance: float = 1.0):
        self.log = IssueLog(on_error)
        self.mapping = mapping
        self.known = list(known_classes) if known_classes is not None else None
        self.found: list[str] = []                 # open-set names in order of appearance
        self.tolerance = box_tolerance
        self.dropped: dict[str, int] = {}
        self.samples: list[Sample] = []

    # -- issues -------------------------------------------------------------------------------
    def issue(self, kind: str, file, message: str, line: int | None = None, where: str | None = None):
        self.log.report(kind, file, message, line=line, where=where)

    # -- boxes --------------------------------------------------------------------------------
    def check_box(self, box, width: int, height: int, file, line=None, where=None):
        """The box clipped to the image, or None (issue reported) if it is invalid or outside."""
        x1, y1, x2, y2 = (float(v) for v in box)
        if not all(math.isfinite(v) for v in (x1, y1, x2, y2)) or x2 <= x1 or y2 <= y1:
            self.issue(K.INVALID_BOX, file, f'box {[x1, y1, x2, y2]} has no area', line, where)
            return None
        t = self.tolerance
        if x1 < -t or y1 < -t or x2 > width + t or y2 > height + t:
            self.issue(K.BOX_OUTSIDE_IMAGE, file,
                       f'box {[round(v, 2) for v in (x1, y1, x2, y2)]} outside the {width}x{height} image',
                       line, where)
            return None
        box = [max(0.0, x1), max(0.0, y1), min(float(width), x2), min(float(height), y2)]
        if box[2] <= box[0] or box[3] <= box[1]:     # within the tolerance band but wholly outside
            self.issue(K.BOX_OUTSIDE_IMAGE, file, f'box {[round(v, 2) for v in (x1, y1, x2, y2)]} has no '
                       f'area inside the {width}x{height} image', line, where)
            return None
        # Samples store float32: a box thinner than float32 resolves (0 .. 1e-320, 50 .. 50+1e-9)
        # would be kept with zero width, so the area is checked on the values as stored.
        x1, y1, x2, y2 = np.asarray(box, np.float32).tolist()
        if x2 <= x1 or y2 <= y1:
            self.issue(K.INVALID_BOX, file, f'box {box} has no area at float32 precision', line, where)
            return None
        return [x1, y1, x2, y2]

    def resolve(self, name: str, file, line=None, where=None):
        """Dataset class name -> model class id (int), 'ignore', 'drop', or None (issue reported)."""
        if self.known is not None and name not in self.known:
            self.issue(K.UNKNOWN_CLASS, file, f'class {name!r} is not one of {self.known}', line, where)
            return None
        if self.mapping is None:
            if self.known is not None:
                return self.known.index(name)
            if name not in self.found:
                self.found.append(name)
            return name   # open set: replaced by an index in finish()
        target = self.mapping.resolve(name)
        if target is None:
            self.issue(K.UNKNOWN_CLASS, file,
                       f'class {name!r} is not in the class mapping (classes {self.mapping.classes}, '
                       f'mapped {sorted(self.mapping.map)}); add it or set unmapped: drop/ignore',
                       line, where)
        return target

    def new_sample(self, image_path: Path, width: int, height: int, label_file=None,
                   sequence=None) -> 'SampleBuilder':
        return SampleBuilder(self, image_path, width, height, label_file, sequence)

    # -- result -------------------------------------------------------------------------------
    def finish(self, source: str) -> DetectionDataset:
        if self.mapping is not None:
            names = list(self.mapping.classes)
        elif self.known is not None:
            names = list(self.known)
        else:
            names = sorted(self.found)
            index = {n: i for i, n in enumerate(names)}
            for s in self.samples:
                s.labels = np.asarray([index[n] for n in s.labels], np.int64)
        return DetectionDataset(samples=self.samples, class_names=names, source=source,
                                issues=list(self.log.issues), dropped_boxes=dict(self.dropped),
                                mapped=self.mapping is not None)


class SampleBuilder:
    def __init__(self, ctx: ReadContext, image_path, width, height, label_file, sequence):
        self.ctx = ctx
        self.image_path = Path(image_path)
        self.width, self.height = int(width), int(height)
        self.label_file = Path(label_file) if label_file is not None else None
        self.sequence = sequence
        self.boxes, self.labels, self.ignore = [], [], []
        self.attributes: dict[str, list] = {}
        self.meta: dict = {}

    def add(self, name: str, box, line=None, where=None, ignore_region: bool = False,
            **attributes) -> None:
        """One labelled box. ``ignore_region`` (DontCare, crowd) bypasses the class mapping."""
        file = self.label_file or self.image_path
        box = self.ctx.check_box(box, self.width, self.height, file, line, where)
        if box is None:
            return
        if ignore_region:
            self.ignore.append(box)
            return
        target = self.ctx.resolve(name, file, line, where)
        if target is None:
            return
        if target == DROP:
            self.ctx.dropped[name] = self.ctx.dropped.get(name, 0) + 1
            return
        if target == IGNORE:
            self.ignore.append(box)
            return
        n = len(self.boxes)
        for key in set(self.attributes) | set(attributes):
            column = self.attributes.setdefault(key, [math.nan] * n)
            value = float(attributes[key]) if attributes.get(key) is not None else math.nan
            column.append(value if abs(value) < 1e30 else math.nan)   # NaN, inf, absurd: unknown
        self.boxes.append(box)
        self.labels.append(target)

    def done(self) -> Sample:
        sample = Sample(image_path=self.image_path, width=self.width, height=self.height,
                        boxes=self.boxes, labels=np.zeros(len(self.labels), np.int64),
                        ignore=self.ignore,
                        attributes={k: np.asarray(v, np.float32) for k, v in self.attributes.items()},
                        sequence=self.sequence, label_file=self.label_file, meta=self.meta)
        if self.ctx.mapping is None and self.ctx.known is None:
            sample.labels = list(self.labels)  # names for now; ReadContext.finish() indexes them
        else:
            sample.labels = np.asarray(self.labels, np.int64)
        self.ctx.samples.append(sample)
        return sample
