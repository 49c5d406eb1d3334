"""Pascal VOC XML: ``Annotations/<id>.xml`` + ``JPEGImages/<id>.jpg`` (+ ``ImageSets/Main/<split>.txt``).

Coordinates are 1-based inclusive pixels; they are converted to 0-based continuous ``xyxy``
(``xmin - 1, ymin - 1, xmax, ymax``). ``difficult`` objects become ignore regions (as VOC evaluation
treats them). ``truncated``/``occluded`` (0/1) are kept as attributes. ElementTree gives no line
numbers, so issues name the object (``object[i] name=...``).
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from aiat_training.data import issues as K
from aiat_training.data.classmap import ClassMapping
from aiat_training.data.issues import read_text_file
from aiat_training.data.dataset import DetectionDataset
from aiat_training.data.readers.common import MAX_IMAGE_SIDE, ReadContext, image_size, is_file

VOC_CLASSES = ['aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair', 'cow',
               'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant', 'sheep', 'sofa',
               'train', 'tvmonitor']


def read_voc(root: str | Path, split: str | None = None, mapping: ClassMapping | None = None,
             on_error: str = 'raise', classes: list[str] | None = None,
             difficult_as_ignore: bool = True) -> DetectionDataset:
    """``classes=None``: every name found is a class (labelling-tool exports); pass ``VOC_CLASSES``
    to check names against the Pascal VOC list."""
    root = Path(root)
    annotations = root / 'Annotations'
    if not annotations.is_dir():
        raise FileNotFoundError(f'VOC: no directory {annotations}')
    if split is not None:
        ids_file = root / 'ImageSets' / 'Main' / f'{split}.txt'
        ids = [line.split()[0] for line in read_text_file(ids_file, 'image set list').splitlines() if line.strip()]
        files = [annotations / f'{i}.xml' for i in ids]
    else:
        files = sorted(annotations.glob('*.xml'))
    ctx = ReadContext(on_error, mapping, known_classes=classes)
    for path in files:
        try:
            tree = ET.parse(path).getroot()
        except (ET.ParseError, OSError) as exc:     # OSError: missing, a directory, a refused name
            ctx.issue(K.MALFORMED_FILE, path, f'cannot parse XML: {exc}',
                      getattr(exc, 'position', (None,))[0])
            continue
        filename = tree.findtext('filename') or f'{path.stem}.jpg'
        image = root / 'JPEGImages' / filename
        try:
            width = int(float(tree.findtext('size/width')))
            height = int(float(tree.findtext('size/height')))
            if not 0 < width <= MAX_IMAGE_SIDE or not 0 < height <= MAX_IMAGE_SIDE:
                raise ValueError
        except (TypeError, ValueError, OverflowError):
            size = image_size(image)    # some tools write 0 or leave size out
            if size is None:
                ctx.issue(K.MISSING_IMAGE, path, f'no size in the XML and no readable image {image}')
                continue
            width, height = size
        if not is_file(image):
            ctx.issue(K.MISSING_IMAGE, path, f'no image {image}')
            continue
        builder = ctx.new_sample(image, width, height, path)
        for i, obj in enumerate(tree.findall('object')):
            name = (obj.findtext('name') or '').strip()
            where = f'object[{i}] name={name!r}'
            try:
                box = [float(obj.findtext(f'bndbox/{k}')) for k in ('xmin', 'ymin', 'xmax', 'ymax')]
            except (TypeError, ValueError):
                ctx.issue(K.MALFORMED, path, 'bndbox needs numeric xmin, ymin, xmax, ymax', where=where)
                continue
            if not name:
                ctx.issue(K.MALFORMED, path, 'object without a name', where=where)
                continue
            box[0] -= 1
            box[1] -= 1
            difficult = _int(obj.findtext('difficult'))
            builder.add(name, box, where=where,
                        ignore_region=bool(difficult) and difficult_as_ignore,
                        truncation=_int(obj.findtext('truncated')),
                        occlusion=_int(obj.findtext('occluded')))
        builder.done()
    return ctx.finish(f'voc:{root}:{split or "all"}')


def _int(text):
    try:
        return int(float(text))
    except (TypeError, ValueError, OverflowError):
        return None
