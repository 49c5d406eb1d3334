"""COCO detection JSON (``images``, ``annotations``, ``categories``), as labelling tools export it.

``bbox`` is ``[x, y, width, height]`` in pixels; ``iscrowd: 1`` annotations become ignore regions.
JSON has no useful line numbers, so issues name the entry (``annotations[i] (id ...)``).
A ``video_id`` / ``sequence`` field on an image (video-COCO exports) becomes its sequence.
"""
from __future__ import annotations

import json
from pathlib import Path

from aiat_training.data import issues as K
from aiat_training.data.classmap import ClassMapping
from aiat_training.data.dataset import DetectionDataset
from aiat_training.data.readers.common import ReadContext, image_side, is_file


def read_coco(annotation_json: str | Path, image_dir: str | Path, mapping: ClassMapping | None = None,
              on_error: str = 'raise') -> DetectionDataset:
    path, image_dir = Path(annotation_json), Path(image_dir)
    try:
        data = json.loads(path.read_bytes().decode('utf-8-sig'))
        if not isinstance(data, dict):
            raise TypeError('the top level is not an object')
        images, annotations = data['images'], data.get('annotations', [])
        if not all(isinstance(v, list) for v in (images, annotations, data['categories'])):
            raise TypeError('images, annotations and categories must be lists')
        categories = {}
        for c in data['categories']:
            if not isinstance(c['name'], str):
                raise TypeError(f'category name {c["name"]!r:.40} is not a string')
            categories[int(c['id'])] = c['name']
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError, OverflowError,
            RecursionError) as exc:
        ctx = ReadContext(on_error, mapping, known_classes=[])
        ctx.issue(K.MALFORMED_FILE, path, f'not a COCO detection file: {exc!r}',
                  getattr(exc, 'lineno', None))
        return ctx.finish(f'coco:{path}')
    names = [categories[k] for k in sorted(categories)]
    ctx = ReadContext(on_error, mapping, known_classes=names)

    by_image: dict[int, list[tuple[int, dict]]] = {}
    for i, ann in enumerate(annotations):
        image_id = ann.get('image_id') if isinstance(ann, dict) else None
        if not isinstance(image_id, (int, str)):
            ctx.issue(K.MALFORMED, path, f'annotation needs an image_id (number or string), got {image_id!r:.40}',
                      where=f'annotations[{i}]')
            continue
        by_image.setdefault(image_id, []).append((i, ann))
    image_ids = set()
    for i, info in enumerate(images):
        where = f'images[{i}]'
        try:
            image_id, file_name = info['id'], info['file_name']
            if not isinstance(image_id, (int, str)) or not isinstance(file_name, str) or not file_name:
                raise TypeError('id must be a number or string, file_name a non-empty string')
            width, height = image_side(info['width']), image_side(info['height'])
        except (KeyError, TypeError, ValueError) as exc:
            ctx.issue(K.MALFORMED, path, f'image entry needs id, file_name, width, height: {exc!r}',
                      where=where)
            continue
        image_ids.add(image_id)
        image = image_dir / file_name
        if not is_file(image):
            ctx.issue(K.MISSING_IMAGE, path, f'no image {image}', where=where)
            continue
        sequence = info.get('video_id', info.get('sequence'))
        builder = ctx.new_sample(image, width, height, path,
                                 None if sequence is None else str(sequence))
        for j, ann in by_image.get(image_id, []):
            awhere = f'annotations[{j}] (id {ann.get("id")})'
            try:
                if not isinstance(ann['bbox'], list):
                    raise TypeError('bbox is not a list')
                x, y, w, h = (float(v) for v in ann['bbox'])
                category = int(ann['category_id'])
            except (KeyError, TypeError, ValueError, OverflowError) as exc:
                ctx.issue(K.MALFORMED, path, f'annotation needs bbox [x,y,w,h] and category_id: {exc!r}',
                          where=awhere)
                continue
            if category not in categories:
                ctx.issue(K.UNKNOWN_CLASS, path, f'category_id {category} not in categories '
                          f'{sorted(categories)}', where=awhere)
                continue
            builder.add(categories[category], [x, y, x + w, y + h], where=awhere,
                        ignore_region=bool(ann.get('iscrowd', 0)))
        builder.done()
    for image_id, anns in by_image.items():
        if image_id not in image_ids:
            for j, ann in anns:
                ctx.issue(K.MALFORMED, path, f'annotation refers to unknown image_id {image_id!r}',
                          where=f'annotations[{j}]')
    return ctx.finish(f'coco:{path}')
