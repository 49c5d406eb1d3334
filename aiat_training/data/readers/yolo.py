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
from aiat_training.data.issues import DatasetError, ReadIssue, read_text_file
from aiat_training.data.readers.common import IMAGE_SUFFIXES, ReadContext, image_size, is_dir, is_file, read_text


def _yaml_error(path: Path, message: str) -> DatasetError:
    return DatasetError(ReadIssue(K.MALFORMED_FILE, str(path), None, None, message), f'{path}: {message}')


def read_yolo_yaml(data_yaml: str | Path) -> tuple[Path, dict, list[str]]:
    """(root, data, class names); a broken data YAML raises :class:`DatasetError` naming it (also with
    ``on_error='skip'``: without its data YAML there is no dataset to skip items of)."""
    path = Path(data_yaml)
    try:
        data = yaml.safe_load(read_text_file(path, 'data YAML'))
    except yaml.YAMLError as exc:
        raise _yaml_error(path, f'not valid YAML: {" ".join(str(exc).split())}') from None
    except RecursionError:
        raise _yaml_error(path, 'not valid YAML: nested too deeply') from None
    if not isinstance(data, dict) or 'names' not in data:
        raise _yaml_error(path, 'names: missing (list of class names or dict id -> name)')
    names = data['names']
    if isinstance(names, dict):
        try:
            ids = sorted(int(k) for k in names)
        except (TypeError, ValueError, OverflowError):
            raise _yaml_error(path, 'names: dict keys must be class ids') from None
        if ids != list(range(len(ids))):
            raise _yaml_error(path, f'names: ids must be 0..{len(ids) - 1}, got {ids[:20]}')
        by_id = {int(k): v for k, v in names.items()}
        if len(by_id) != len(names):
            raise _yaml_error(path, 'names: a class id is given twice')
        names = [by_id[k] for k in ids]
    elif not isinstance(names, list):
        raise _yaml_error(path, 'names: must be a list or a dict')
    if not all(isinstance(n, (str, int, float, bool)) for n in names):
        raise _yaml_error(path, 'names: class names must be strings')
    names = [str(n) for n in names]
    if len(set(names)) != len(names):
        raise _yaml_error(path, 'names: a class name is given twice')
    root_entry = data.get('path') or '.'
    if not isinstance(root_entry, str):
        raise _yaml_error(path, f'path: must be a directory path, got {type(root_entry).__name__}')
    root = Path(root_entry)
    if not root.is_absolute():
        root = path.parent / root
    return root, data, names


def _label_path(image: Path) -> Path:
    """images/a/b.jpg -> labels/a/b.txt (the last 'images' component is swapped)."""
    parts = list(image.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == 'images':
            parts[i] = 'labels'
            return Path(*parts).with_suffix('.txt')
    return image.with_suffix('.txt')


def _list_images(root: Path, entry, data_yaml: Path, split: str) -> tuple[list[Path], list[Path]]:
    """(images found, directories searched)."""
    entries = entry if isinstance(entry, list) else [entry]
    images, dirs = [], []
    for item in entries:
        if not isinstance(item, str) or not item or '\0' in item:
            raise _yaml_error(data_yaml, f'{split}: must be a directory, a .txt list or a list of them, '
                              f'got {item!r:.60}')
        p = Path(item)
        p = p if p.is_absolute() else root / p
        if p.suffix == '.txt' and is_file(p):
            for line in read_text_file(p, 'image list').splitlines():
                if line.strip():
                    q = Path(line.strip())
                    images.append(q if q.is_absolute() else root / q)
        elif is_dir(p):
            dirs.append(p)
            images += sorted(q for q in p.rglob('*') if q.suffix.lower() in IMAGE_SUFFIXES)
        else:
            raise FileNotFoundError(f'YOLO: image source {p} is neither a directory nor a .txt list')
    return images, dirs


def read_yolo(data_yaml: str | Path, split: str = 'train', mapping: ClassMapping | None = None,
              on_error: str = 'raise') -> DetectionDataset:
    root, data, names = read_yolo_yaml(data_yaml)
    if split not in data or data[split] is None:
        raise _yaml_error(Path(data_yaml), f'{split}: no such split in the data YAML')
    images, dirs = _list_images(root, data[split], Path(data_yaml), split)
    ctx = ReadContext(on_error, mapping, known_classes=names)
    seen_labels = set()
    for image in images:
        label_file = _label_path(image)
        seen_labels.add(label_file.resolve())
        size = image_size(image)
        if size is None:
            ctx.issue(K.MISSING_IMAGE, label_file if is_file(label_file) else image,
                      f'no readable image {image}')
            continue
        width, height = size
        builder = ctx.new_sample(image, width, height, label_file if is_file(label_file) else None)
        content = read_text(ctx, label_file, 'label file') if is_file(label_file) else ''
        if content is None:
            continue
        if content:
            for number, text in enumerate(content.splitlines(), start=1):
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
