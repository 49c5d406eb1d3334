"""YOLO folders: ``images/.../x.jpg`` with ``labels/.../x.txt`` (``class cx cy w h``, normalised 0..1).

The data YAML (Ultralytics style) gives ``path`` (root), ``train``/``val``/``test`` (a directory, a
list of directories, or a .txt list of image paths, relative to ``path``) and ``names`` (a list,
or a dict id -> name). An image without a label file is a background image; a label file whose
image is missing is reported.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from aiat_training.data import issues as K
from aiat_training.data.classmap import ClassMapping
from aiat_training.data.dataset import DetectionDataset
from aiat_training.data.readers.common import IMAGE_SUFFIXES, ReadContext, image_size


def read_yolo_yaml(data_yaml: str | Path) -> tuple[Path, dict, list[str]]:
    path = Path(data_yaml)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f'{path}: not valid YAML: {exc}') from None
    if not isinstance(data, dict) or 'names' not in data:
        raise ValueError(f'{path}: names: missing (list of class names or dict id -> name)')
    names = data['names']
    if isinstance(names, dict):
        try:
            ids = sorted(int(k) for k in names)
        except ValueError:
            raise ValueError(f'{path}: names: dict keys must be class ids') from None
        if ids != list(range(len(ids))):
            raise ValueError(f'{path}: names: ids must be 0..{len(ids) - 1}, got {ids}')
        names = [str(names[k] if k in names else names[str(k)]) for k in ids]
    elif not isinstance(names, list):
        raise ValueError(f'{path}: names: must be a list or a dict')
    root = Path(data.get('path') or '.')
    if not root.is_absolute():
        root = path.parent / root
    return root, data, [str(n) for n in names]


def _label_path(image: Path) -> Path:
    """images/a/b.jpg -> labels/a/b.txt (the last 'images' component is swapped)."""
    parts = list(image.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == 'images':
            parts[i] = 'labels'
            return Path(*parts).with_suffix('.txt')
    return image.with_suffix('.txt')


def _list_images(root: Path, entry) -> tuple[list[Path], list[Path]]:
    """(images found, directories searched)."""
    entries = entry if isinstance(entry, list) else [entry]
    images, dirs = [], []
    for item in entries:
        p = Path(item)
        p = p if p.is_absolute() else root / p
        if p.suffix == '.txt' and p.is_file():
            for line in p.read_text().splitlines():
                if line.strip():
                    q = Path(line.strip())
                    images.append(q if q.is_absolute() else root / q)
        elif p.is_dir():
            dirs.append(p)
            images += sorted(q for q in p.rglob('*') if q.suffix.lower() in IMAGE_SUFFIXES)
        else:
            raise FileNotFoundError(f'YOLO: image source {p} is neither a directory nor a .txt list')
    return images, dirs


def read_yolo(data_yaml: str | Path, split: str = 'train', mapping: ClassMapping | None = None,
              on_error: str = 'raise') -> DetectionDataset:
    root, data, names = read_yolo_yaml(data_yaml)
    if split not in data or data[split] is None:
        raise ValueError(f'{data_yaml}: {split}: no such split in the data YAML')
    images, dirs = _list_images(root, data[split])
    ctx = ReadContext(on_error, mapping, known_classes=names)
    seen_labels = set()
    for image in images:
        label_file = _label_path(image)
        seen_labels.add(label_file.resolve())
        size = image_size(image)
        if size is None:
            ctx.issue(K.MISSING_IMAGE, label_file if label_file.is_file() else image,
                      f'no readable image {image}')
            continue
        width, height = size
        builder = ctx.new_sample(image, width, height, label_file if label_file.is_file() else None)
        if label_file.is_file():
            for number, text in enumerate(label_file.read_text().splitlines(), start=1):
                fields = text.split()
                if not fields:
                    continue
                if len(fields) != 5:
                    ctx.issue(K.MALFORMED, label_file, f'expected "class cx cy w h", got {len(fields)} '
                              'fields (polygon/segment labels are not boxes)', number)
                    continue
                try:
                    class_id = int(fields[0])
                    cx, cy, w, h = (float(v) for v in fields[1:])
                except ValueError:
                    ctx.issue(K.MALFORMED, label_file, f'non-numeric field in {text.strip()!r}', number)
                    continue
                if not 0 <= class_id < len(names):
                    ctx.issue(K.UNKNOWN_CLASS, label_file,
                              f'class id {class_id} not in names (0..{len(names) - 1})', number)
                    continue
                box = [(cx - w / 2) * width, (cy - h / 2) * height,
                       (cx + w / 2) * width, (cy + h / 2) * height]
                builder.add(names[class_id], box, line=number)
        builder.done()
    for directory in dirs:
        for label_file in sorted(_label_path(directory / 'x.jpg').parent.rglob('*.txt')):
            if label_file.resolve() not in seen_labels:
                ctx.issue(K.MISSING_IMAGE, label_file, 'label file has no image next to it')
    return ctx.finish(f'yolo:{data_yaml}:{split}')
