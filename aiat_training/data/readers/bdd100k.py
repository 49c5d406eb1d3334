"""BDD100K detection labels (Scalabel JSON): a list of frames, each with ``name`` and ``labels``.

Each label has ``category``, ``box2d: {x1, y1, x2, y2}`` and ``attributes`` (``occluded``,
``truncated``, ``crowd``). Labels with ``poly2d`` instead of ``box2d`` (lanes, drivable area in
the 2018 file) are not detections and are skipped; a label with neither is malformed. Crowd boxes become ignore regions. ``videoName`` (when present) is the sequence.
"""
from __future__ import annotations

import json
from pathlib import Path

from aiat_training.data import issues as K
from aiat_training.data.classmap import ClassMapping
from aiat_training.data.dataset import DetectionDataset
from aiat_training.data.readers.common import ReadContext, image_size

# det_20 categories plus the names used by the 2018 release.
BDD100K_CLASSES = ['pedestrian', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle',
                   'traffic light', 'traffic sign', 'other vehicle', 'other person', 'trailer',
                   'person', 'bike', 'motor']


def read_bdd100k(label_json: str | Path, image_dir: str | Path, mapping: ClassMapping | None = None,
                 on_error: str = 'raise', classes: list[str] | None = None) -> DetectionDataset:
    label_json, image_dir = Path(label_json), Path(image_dir)
    ctx = ReadContext(on_error, mapping, known_classes=classes or BDD100K_CLASSES)
    try:
        frames = json.loads(label_json.read_bytes().decode('utf-8-sig'))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        ctx.issue(K.MALFORMED_FILE, label_json, f'not valid JSON: {exc}',
                  getattr(exc, 'lineno', None))
        return ctx.finish(f'bdd100k:{label_json}')
    if isinstance(frames, dict) and 'frames' in frames:   # Scalabel dataset wrapper
        frames = frames['frames']
    if not isinstance(frames, list):
        ctx.issue(K.MALFORMED_FILE, label_json, 'expected a JSON list of frames')
        return ctx.finish(f'bdd100k:{label_json}')
    for i, frame in enumerate(frames):
        where = f'[{i}]'
        if not isinstance(frame, dict) or not isinstance(frame.get('name'), str):
            ctx.issue(K.MALFORMED, label_json, 'frame without a "name"', where=where)
            continue
        image = image_dir / frame['name']
        size = image_size(image)
        if size is None:
            ctx.issue(K.MISSING_IMAGE, label_json, f'no readable image {image}', where=where)
            continue
        labels = frame.get('labels') or []
        if not isinstance(labels, list):
            ctx.issue(K.MALFORMED, label_json, 'labels is not a list', where=where)
            continue
        video = frame.get('videoName')
        builder = ctx.new_sample(image, size[0], size[1], label_json,
                                 video if isinstance(video, str) else None)
        for j, label in enumerate(labels):
            lwhere = f'{where}.labels[{j}] ({frame["name"]})'
            if not isinstance(label, dict):
                ctx.issue(K.MALFORMED, label_json, 'label is not an object', where=lwhere)
                continue
            box = label.get('box2d')
            if box is None:
                if 'poly2d' in label or 'box3d' in label:
                    continue  # lane / drivable-area polygons: not detection labels
                ctx.issue(K.MALFORMED, label_json, 'label has no box2d', where=lwhere)
                continue
            try:
                xyxy = [float(box[k]) for k in ('x1', 'y1', 'x2', 'y2')]
            except (KeyError, TypeError, ValueError, OverflowError):
                ctx.issue(K.MALFORMED, label_json, f'box2d needs numeric x1,y1,x2,y2, got {box!r}',
                          where=lwhere)
                continue
            attrs = label.get('attributes')
            attrs = attrs if isinstance(attrs, dict) else {}
            builder.add(str(label.get('category')), xyxy, where=lwhere,
                        ignore_region=bool(attrs.get('crowd', False)),
                        occlusion=_flag(attrs.get('occluded')), truncation=_flag(attrs.get('truncated')))
        builder.done()
    return ctx.finish(f'bdd100k:{label_json}')


def _flag(value):
    return None if value is None else float(bool(value))
