"""KITTI object detection: ``image_2/<id>.png`` + ``label_2/<id>.txt`` (+ optional ``calib/<id>.txt``).

Label line (15 fields, a 16th score field is allowed)::

    type truncated occluded alpha x1 y1 x2 y2 h w l x y z rotation_y [score]

``DontCare`` boxes become ignore regions. ``truncated`` (0..1) and ``occluded`` (0 fully visible,
1 partly, 2 largely occluded, 3 unknown) are kept as the ``truncation``/``occlusion`` attributes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from aiat_training.data import issues as K
from aiat_training.data.classmap import ClassMapping
from aiat_training.data.dataset import DetectionDataset
from aiat_training.data.issues import read_text_file
from aiat_training.data.readers.common import ReadContext, find_image, image_size, is_file, read_text

KITTI_CLASSES = ['Car', 'Van', 'Truck', 'Pedestrian', 'Person_sitting', 'Cyclist', 'Tram', 'Misc']
DONT_CARE = 'DontCare'


def read_kitti(root: str | Path, mapping: ClassMapping | None = None, on_error: str = 'raise',
               image_dir: str = 'image_2', label_dir: str = 'label_2', calib_dir: str = 'calib',
               ids: list[str] | None = None, classes: list[str] | None = None) -> DetectionDataset:
    """Read a KITTI object split (e.g. ``.../training``).

    ``ids``: frame ids to read (default: every label file). ``classes``: the allowed type names
    (default: the KITTI types). KITTI object has no sequence ids; ``read_dataset(...,
    sequence_regex=...)`` derives them from file names.
    """
    root = Path(root)
    labels = root / label_dir
    if not labels.is_dir():
        raise FileNotFoundError(f'KITTI: no label directory {labels}')
    ctx = ReadContext(on_error, mapping, known_classes=classes or KITTI_CLASSES)
    stems = ids if ids is not None else sorted(p.stem for p in labels.glob('*.txt'))
    for stem in stems:
        label_file = labels / f'{stem}.txt'
        image = find_image(root / image_dir, stem)
        size = image_size(image) if image is not None else None
        if size is None:
            ctx.issue(K.MISSING_IMAGE, label_file,
                      f'no readable image {root / image_dir / stem}.png (or .jpg)')
            continue
        builder = ctx.new_sample(image, size[0], size[1], label_file)
        if not is_file(label_file):
            ctx.issue(K.MALFORMED_FILE, label_file, 'label file missing')
            continue
        content = read_text(ctx, label_file, 'label file')
        if content is None:
            continue
        for number, text in enumerate(content.splitlines(), start=1):
            if not text.strip():
                continue
            fields = text.split()
            if len(fields) not in (15, 16):
                ctx.issue(K.MALFORMED, label_file, f'expected 15 or 16 fields, got {len(fields)}',
                          number)
                continue
            try:
                values = [float(v) for v in fields[1:]]
            except ValueError:
                ctx.issue(K.MALFORMED, label_file, f'non-numeric field in {text.strip()!r}', number)
                continue
            name = fields[0]
            box = values[3:7]
            if name == DONT_CARE:
                builder.add(name, box, line=number, ignore_region=True)
            else:
                builder.add(name, box, line=number, truncation=values[0], occlusion=values[1])
        calib = root / calib_dir / f'{stem}.txt'
        if calib.is_file():
            matrices = read_calib(calib, ctx)
            if matrices:            # left out when the whole file is unreadable (reported)
                builder.meta['calib'] = matrices
        builder.done()
    return ctx.finish(f'kitti:{root}')


def read_calib(path: Path, ctx: ReadContext | None = None) -> dict[str, np.ndarray]:
    """KITTI calibration file: ``P0..P3`` (3x4), ``R0_rect`` (3x3), ``Tr_velo_to_cam``/``Tr_imu_to_velo`` (3x4).

    With ``ctx`` a broken line (or a non-UTF-8 file) is reported and left out; without, it raises
    ValueError (:class:`DatasetError` for a non-UTF-8 file) naming the file."""
    shapes = {'R0_rect': (3, 3), 'R_rect': (3, 3)}
    out = {}
    content = read_text(ctx, path, 'calibration file') if ctx is not None else \
        read_text_file(path, 'calibration file')
    if content is None:
        return out
    for number, text in enumerate(content.splitlines(), start=1):
        if not text.strip():
            continue
        key, _, rest = text.partition(':')
        try:
            values = np.array([float(v) for v in rest.split()], np.float64)
            if not np.isfinite(values).all():
                raise ValueError('non-finite value')
            shape = shapes.get(key.strip(), (3, 4))
            out[key.strip()] = values.reshape(shape)
        except ValueError as exc:
            if ctx is None:
                raise ValueError(f'{path}:{number}: malformed calibration line: {exc}') from None
            ctx.issue(K.MALFORMED, path, f'malformed calibration line {key.strip()!r}: {exc}', number)
    return out
