"""Cityscapes ``gtFine``: instance polygons (``*_gtFine_polygons.json``) turned into boxes.

Layout: ``gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_polygons.json`` with images at
``leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png``. Only the instance classes
become boxes; ``<class>group`` polygons (a crowd that could not be split into instances) become
ignore regions; stuff classes (road, building, sky ...) are not objects and are skipped. The
sequence is ``<city>_<seq>``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from aiat_training.data import issues as K
from aiat_training.data.classmap import ClassMapping
from aiat_training.data.dataset import DetectionDataset
from aiat_training.data.readers.common import ReadContext, image_side

CITYSCAPES_CLASSES = ['person', 'rider', 'car', 'truck', 'bus', 'caravan', 'trailer', 'train',
                      'motorcycle', 'bicycle']
STUFF = {'unlabeled', 'ego vehicle', 'rectification border', 'out of roi', 'static', 'dynamic',
         'ground', 'road', 'sidewalk', 'parking', 'rail track', 'building', 'wall', 'fence',
         'guard rail', 'bridge', 'tunnel', 'pole', 'polegroup', 'traffic light', 'traffic sign',
         'vegetation', 'terrain', 'sky', 'license plate'}
SUFFIX = '_gtFine_polygons.json'


def read_cityscapes(root: str | Path, split: str = 'train', mapping: ClassMapping | None = None,
                    on_error: str = 'raise', classes: list[str] | None = None) -> DetectionDataset:
    """``root`` holds ``gtFine/`` and ``leftImg8bit/``."""
    root = Path(root)
    gt = root / 'gtFine' / split
    if not gt.is_dir():
        raise FileNotFoundError(f'Cityscapes: no directory {gt}')
    known = classes or CITYSCAPES_CLASSES
    ctx = ReadContext(on_error, mapping, known_classes=known)
    for path in sorted(gt.glob(f'*/*{SUFFIX}')):
        stem = path.name[:-len(SUFFIX)]
        city = path.parent.name
        image = root / 'leftImg8bit' / split / city / f'{stem}_leftImg8bit.png'
        if not image.is_file():
            ctx.issue(K.MISSING_IMAGE, path, f'no image {image}')
            continue
        try:
            data = json.loads(path.read_bytes().decode('utf-8-sig'))
            if not isinstance(data, dict):
                raise TypeError('the top level is not an object')
            width, height = image_side(data['imgWidth']), image_side(data['imgHeight'])
            objects = data['objects']
            if not isinstance(objects, list):
                raise TypeError('objects is not a list')
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, RecursionError) as exc:
            ctx.issue(K.MALFORMED_FILE, path, f'not a Cityscapes polygon file: {exc!r}',
                      getattr(exc, 'lineno', None))
            continue
        builder = ctx.new_sample(image, width, height, path, '_'.join(stem.split('_')[:2]))
        for i, obj in enumerate(objects):
            where = f'objects[{i}]'
            if not isinstance(obj, dict) or 'label' not in obj:
                ctx.issue(K.MALFORMED, path, 'object without a label', where=where)
                continue
            if obj.get('deleted'):
                continue
            label = str(obj['label'])
            crowd = label.endswith('group') and label[:-len('group')] in known
            if label in STUFF:
                continue
            try:
                polygon = np.asarray(obj['polygon'], np.float64).reshape(-1, 2)
                if len(polygon) < 3:
                    raise ValueError('fewer than 3 points')
            except (KeyError, TypeError, ValueError, OverflowError) as exc:
                ctx.issue(K.MALFORMED, path, f'bad polygon for {label!r}: {exc}', where=where)
                continue
            # Polygon vertices are pixel corners; the box spans them (+1 covers the last pixel).
            x1, y1 = polygon.min(axis=0)
            x2, y2 = polygon.max(axis=0) + 1
            builder.add(label[:-len('group')] if crowd else label, [x1, y1, x2, y2], where=where,
                        ignore_region=crowd)
        builder.done()
    return ctx.finish(f'cityscapes:{root}:{split}')
