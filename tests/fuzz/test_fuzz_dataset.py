"""Fuzz the dataset label readers with mutated, garbage and non-UTF-8 files (issue 10).

Invariant for every file: the reader returns a dataset, or raises :class:`DatasetError` whose message
names the file (``FileNotFoundError`` naming the path for a data YAML pointing at a directory that is
not there). With ``on_error='skip'`` it never raises for a label file, and every box it keeps is
finite, inside its image and has an area. The line-based formats (KITTI label_2 and calib, YOLO
txt) are also compared with a short independent parse written from the format descriptions.

Default run: seeded and small (a share of the profile's examples per target, ``budget()``; about
10 s for the file on a loaded 2-core machine). ``--long`` (tests/conftest.py): at least 10,000 cases
per target; set AIAT_FUZZ_REPORT=file.json to write the cases and outcome counts per target.

The strategies draw from fixed pools of hostile values rather than recursive JSON: a draw costs
hypothesis time, and the pools hold what the readers must survive (NaN, inf, huge, wrong types,
nesting) at a fraction of the cost.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import pytest
import yaml
from hypothesis import given, settings, strategies as st
from PIL import Image

from aiat_training.data.issues import DatasetError
from aiat_training.data.readers import read_dataset
from aiat_training.data.readers.common import ReadContext
from aiat_training.data.readers.kitti import KITTI_CLASSES, read_calib

W, H = 100, 80
TOL = 1.0
OUTCOMES: dict[str, Counter] = defaultdict(Counter)
DISTINCT: dict[str, set] = defaultdict(set)        # digests of the files each target was given
LONG = settings.default.max_examples >= 10_000     # the aiat-long profile is loaded (--long)
if LONG:
    # pytest.ini's 900 s per test is for the default suite: one long target on a loaded 2-core
    # machine takes 15-30 min, and the timeout ended it as a failure (no other detail left)
    pytestmark = pytest.mark.timeout(0)


def budget(share: float):
    """Settings for a target: the long profile's count as is; by default ``share`` of the profile's
    examples (the slow, structured targets get fewer), so the file's default run stays ~10 s."""
    if LONG:
        return settings()
    return settings(max_examples=max(5, round(settings.default.max_examples * share)))


def _summary() -> dict:
    return {target: {'cases': sum(c.values()), 'distinct files': len(DISTINCT[target]),
                     'outcomes': dict(sorted(c.items()))}
            for target, c in sorted(OUTCOMES.items())}


def _seen(target: str, raw: bytes) -> None:
    DISTINCT[target].add(hashlib.blake2b(raw, digest_size=12).digest())
    if os.environ.get('AIAT_FUZZ_REPORT') and sum(OUTCOMES[target].values()) % 500 == 499:
        _write_report()                          # a long run cut short still leaves its counts


def _write_report() -> None:
    Path(os.environ['AIAT_FUZZ_REPORT']).write_text(json.dumps(_summary(), indent=2))


@pytest.fixture(autouse=True)
def _record_outcomes():
    yield
    if os.environ.get('AIAT_FUZZ_REPORT'):         # after every target, so a cut-short run keeps its counts
        _write_report()


@pytest.fixture(scope='module', autouse=True)
def _print_outcomes():
    yield
    print('\nfuzz outcomes per target:', json.dumps(_summary(), indent=1))


@pytest.fixture(scope='module')
def root():
    with tempfile.TemporaryDirectory(prefix='aiat-fuzz-dataset-') as tmp:
        root = Path(tmp)
        image = Image.fromarray(np.full((H, W, 3), 90, np.uint8))
        for path in ('kitti/image_2/000000.png', 'yolo/images/train/a.png', 'img/a.png',
                     'cs/leftImg8bit/train/c/c_000000_000001_leftImg8bit.png', 'voc/JPEGImages/a.jpg'):
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            image.save(root / path)
        for d in ('kitti/label_2', 'kitti/calib', 'yolo/labels/train', 'cs/gtFine/train/c', 'voc/Annotations'):
            (root / d).mkdir(parents=True, exist_ok=True)
        yield root


# -- strategies ---------------------------------------------------------------------------------

number_text = st.one_of(
    st.integers(-500, (W + 5) * 100).map(lambda v: f'{v / 100:.2f}'),
    st.integers(-3, W + 3).map(str),
    st.sampled_from(['nan', '-inf', 'inf', 'NaN', '1e309', '-1e309', '0x10', '1_0', '1e-320', '5e-324', '1e-45',
                     '+0', '-0.0', '٣', '１２', 'abc', '--1', '', '1.7976931348623157e+308', '50.0000001',
                     '2.2250738585072014e-308', '1e5', '-1e5', '99.99999999', '.5', '5.', 'infinity']),
)
junk_text = st.text(st.characters(codec='utf-8', exclude_categories=('Cs',)), max_size=40)
LINE_OPS = (0, 1, 2, 3, 4)              # byte-damage operations per file: line formats survive damage
STRUCTURED_OPS = (0, 0, 0, 0, 0, 0, 1, 2, 4)  # JSON/XML/YAML: mostly intact, so entry-level code is reached


@st.composite
def mutated(draw, text: str, ops=LINE_OPS) -> bytes:
    """``text`` as UTF-8, then (often) byte-level damage: inserted/replaced bytes (incl. invalid UTF-8),
    cut ranges, truncation."""
    data = bytearray(text.encode('utf-8'))
    for _ in range(draw(st.sampled_from(ops))):
        op = draw(st.sampled_from(['insert', 'replace', 'delete', 'truncate', 'bom']))
        pos = draw(st.integers(0, len(data)))
        if op == 'insert':
            data[pos:pos] = draw(st.binary(min_size=1, max_size=4))
        elif op == 'replace' and pos < len(data):
            data[pos] = draw(st.integers(0, 255))
        elif op == 'delete':
            del data[pos:pos + draw(st.integers(1, 8))]
        elif op == 'truncate':
            del data[pos:]
        elif op == 'bom':
            data[0:0] = b'\xef\xbb\xbf'
    return bytes(data)


KITTI_HEADS = ['0.00 0 -1.57', '0.50 2 0.20', '-1 -1 -10', '1.00 3 3.14', '0 0 0']
KITTI_TAILS = ['1.50 1.60 3.90 1.00 1.50 20.00 0.10', '-1 -1 -1 -1000 -1000 -1000 -10',
               '1.50 1.60 3.90 1.00 1.50 20.00 0.10 0.95', '0 0 0 0 0 0 0']


@st.composite
def kitti_label_text(draw) -> str:
    lines = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(['object', 'object', 'object', 'fields', 'junk', 'blank']))
        if kind == 'junk':
            lines.append(draw(junk_text))
            continue
        if kind == 'blank':
            lines.append(draw(st.sampled_from(['', '   ', '\t'])))
            continue
        name = draw(st.sampled_from(KITTI_CLASSES + ['DontCare', 'Bus', 'car', '']))
        if draw(st.booleans()):                                 # a box that mostly makes sense
            x1, y1 = draw(st.integers(-300, W * 100)) / 100, draw(st.integers(-300, H * 100)) / 100
            box = [f'{x1:.2f}', f'{y1:.2f}', f'{x1 + draw(st.integers(-200, 6000)) / 100:.2f}',
                   f'{y1 + draw(st.integers(-200, 6000)) / 100:.2f}']
        else:
            box = [draw(number_text) for _ in range(4)]
        fields = [name, *draw(st.sampled_from(KITTI_HEADS)).split(), *box,
                  *draw(st.sampled_from(KITTI_TAILS)).split()]
        if kind == 'fields':                                    # too few or too many fields
            fields = (fields * 2)[:draw(st.integers(0, 20))]
        for _ in range(draw(st.sampled_from([0, 0, 1, 2])) if fields else 0):   # an odd number anywhere
            fields[draw(st.integers(0, len(fields) - 1))] = draw(number_text)
        lines.append(draw(st.sampled_from([' ', '  ', '\t'])).join(fields))
    return draw(st.sampled_from(['\n', '\r\n'])).join(lines) + draw(st.sampled_from(['', '\n']))


def _decode(raw: bytes):
    try:
        return raw.decode('utf-8-sig')
    except UnicodeDecodeError:
        return None


def _check_box(x1, y1, x2, y2, width=W, height=H):
    """Independent reading of the box rules: finite, positive area, within the tolerance, clipped;
    samples hold float32, so the area must be positive in float32 too (0 .. 1e-320 is no box)."""
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)) or x2 <= x1 or y2 <= y1:
        return None
    if x1 < -TOL or y1 < -TOL or x2 > width + TOL or y2 > height + TOL:
        return None
    box = np.float32([max(0.0, x1), max(0.0, y1), min(float(width), x2), min(float(height), y2)])
    return box.tolist() if box[2] > box[0] and box[3] > box[1] else None


def _expect_kitti(raw: bytes):
    """(boxes, labels, ignore, issues) or None for a file that is not text."""
    text = _decode(raw)
    if text is None:
        return None
    boxes, labels, ignore, issues = [], [], [], 0
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        if len(fields) not in (15, 16):
            issues += 1
            continue
        try:
            values = [float(v) for v in fields[1:]]
        except ValueError:
            issues += 1
            continue
        box = _check_box(*values[3:7])
        if box is None:
            issues += 1
        elif fields[0] == 'DontCare':
            ignore.append(box)
        elif fields[0] not in KITTI_CLASSES:
            issues += 1
        else:
            boxes.append(box)
            labels.append(KITTI_CLASSES.index(fields[0]))
    return boxes, labels, ignore, issues


def _assert_sane(dataset):
    for s in dataset.samples:
        assert s.width > 0 and s.height > 0
        for boxes in (s.boxes, s.ignore):
            assert np.isfinite(boxes).all()
            assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
            assert (boxes[:, 2] <= s.width).all() and (boxes[:, 3] <= s.height).all()
            assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
        assert ((s.labels >= 0) & (s.labels < len(dataset.class_names))).all()


def _read_both(target: str, read, path: Path, skippable: bool = True):
    """Reader with raise and with skip: checks the invariant; returns (raised, skip dataset or None)."""
    try:
        strict = read('raise')
        raised = None
    except DatasetError as exc:
        assert str(path) in str(exc), exc
        assert str(exc).isprintable(), exc          # one line, even for a name with '\n' from the file
        raised = exc
    try:
        lenient = read('skip')
    except DatasetError as exc:
        assert not skippable or exc.issue.kind == 'malformed_file', exc
        assert str(path) in str(exc) and raised is not None
        OUTCOMES[target]['rejected (file-level error)'] += 1
        return raised, None
    _assert_sane(lenient)
    if raised is None:
        assert not lenient.issues
        assert [s.boxes.tolist() for s in strict.samples] == [s.boxes.tolist() for s in lenient.samples]
        OUTCOMES[target]['parsed clean'] += 1
    else:
        assert lenient.issues and lenient.issues[0].kind == raised.issue.kind
        OUTCOMES[target][f'raised {raised.issue.kind}; skip mode kept {len(lenient)} image(s)'] += 1
    return raised, lenient


# -- line-based formats, compared with the independent parse --------------------------------------

@budget(0.25)
@given(raw=kitti_label_text().flatmap(mutated))
def test_kitti_label(root, raw):
    _seen('kitti label_2', raw)
    label = root / 'kitti/label_2/000000.txt'
    label.write_bytes(raw)
    raised, data = _read_both('kitti label_2', lambda mode: read_dataset('kitti', root / 'kitti', on_error=mode),
                              label)
    expected = _expect_kitti(raw)
    if expected is None:
        assert raised is not None and raised.issue.kind == 'malformed_file' and len(data) == 0
        return
    boxes, labels, ignore, issues = expected
    assert (raised is not None) == (issues > 0)
    assert len(data.issues) == issues and len(data) == 1
    sample = data.samples[0]
    np.testing.assert_array_equal(sample.boxes, np.asarray(boxes, np.float32).reshape(-1, 4))
    np.testing.assert_array_equal(sample.labels, labels)
    np.testing.assert_array_equal(sample.ignore, np.asarray(ignore, np.float32).reshape(-1, 4))


CALIB_ROWS = ['7.215377e+02 0.000000e+00 6.095593e+02 4.485728e+01 0.000000e+00 7.215377e+02 1.728540e+02 '
              '2.163791e-01 0.000000e+00 0.000000e+00 1.000000e+00 2.745884e-03',
              '9.999239e-01 9.837760e-03 -7.445048e-03 -9.869795e-03 9.999421e-01 -4.278459e-03 '
              '7.402527e-03 4.351614e-03 9.999631e-01 -2.6e+01 1e-320 -1.5',
              '1 0 0 0 1 0 0 0 1 0 0 0 0 0']


@st.composite
def calib_text(draw) -> str:
    lines = []
    for _ in range(draw(st.integers(0, 8))):
        key = draw(st.sampled_from(['P0', 'P2', 'R0_rect', 'R_rect', 'Tr_velo_to_cam', '', 'P2 ', 'x:y']))
        count = draw(st.sampled_from([9, 12, 12, 12, 0, 1, 8, 10, 11, 13, 14]))
        values = draw(st.sampled_from(CALIB_ROWS)).split()[:count]
        values += ['0'] * (count - len(values))
        for _ in range(draw(st.sampled_from([0, 0, 1, 2]))):    # an odd number in any place
            if values:
                values[draw(st.integers(0, len(values) - 1))] = draw(number_text)
        values = ' '.join(values)
        lines.append(draw(st.sampled_from([f'{key}: {values}', f'{key}: {values}', f'{key} {values}',
                                           f'{key}:{values}', None, ''])) or draw(junk_text))
    return '\n'.join(lines)


def _expect_calib(raw: bytes):
    text = _decode(raw)
    if text is None:
        return None
    out, issues = {}, 0
    for line in text.splitlines():
        if not line.strip():
            continue
        key, _, rest = line.partition(':')
        size = 9 if key.strip() in ('R0_rect', 'R_rect') else 12
        try:
            values = [float(v) for v in rest.split()]
        except ValueError:
            issues += 1
            continue
        if len(values) != size or not all(math.isfinite(v) for v in values):
            issues += 1
            continue
        out[key.strip()] = values
    return out, issues


@budget(0.25)
@given(raw=calib_text().flatmap(mutated))
def test_kitti_calib(root, raw):
    _seen('kitti calib', raw)
    path = root / 'kitti/calib/x.txt'
    path.write_bytes(raw)
    expected = _expect_calib(raw)
    strict = ReadContext('raise')
    try:
        matrices = read_calib(path, strict)
        raised = False
    except DatasetError as exc:
        assert str(path) in str(exc)
        raised = True
    lenient = ReadContext('skip')
    matrices = read_calib(path, lenient)
    if expected is None:
        assert raised and [i.kind for i in lenient.log.issues] == ['malformed_file'] and matrices == {}
        OUTCOMES['kitti calib']['rejected (not UTF-8)'] += 1
        return
    values, issues = expected
    assert raised == (issues > 0) and len(lenient.log.issues) == issues
    assert {k: v.reshape(-1).tolist() for k, v in matrices.items()} == values
    OUTCOMES['kitti calib']['parsed clean' if not issues else 'bad lines reported'] += 1


@st.composite
def yolo_label_text(draw) -> str:
    lines = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(['box', 'box', 'numbers', 'junk']))
        if kind == 'junk':
            lines.append(draw(junk_text))
        elif kind == 'box':
            cls = draw(st.sampled_from(['0', '1', '2', '3', '-1', '1.0', 'car']))
            vals = [f'{draw(st.integers(-1000, 11000)) / 10000:.4f}' for _ in range(4)]
            lines.append(' '.join([cls] + vals))
        else:
            lines.append(' '.join(draw(number_text) for _ in range(draw(st.integers(0, 7)))))
    return '\n'.join(lines)


YOLO_NAMES = ['car', 'person', 'bike']


def _expect_yolo(raw: bytes):
    text = _decode(raw)
    if text is None:
        return None
    boxes, labels, issues = [], [], 0
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 5:
            issues += 1
            continue
        try:
            cls = int(fields[0])
            cx, cy, w, h = (float(v) for v in fields[1:])
        except ValueError:
            issues += 1
            continue
        if not 0 <= cls < len(YOLO_NAMES):
            issues += 1
            continue
        box = _check_box((cx - w / 2) * W, (cy - h / 2) * H, (cx + w / 2) * W, (cy + h / 2) * H)
        if box is None:
            issues += 1
            continue
        boxes.append(box)
        labels.append(cls)
    return boxes, labels, issues


@budget(0.25)
@given(raw=yolo_label_text().flatmap(mutated))
def test_yolo_label(root, raw):
    _seen('yolo txt', raw)
    data_yaml = root / 'yolo/data.yaml'
    if not data_yaml.is_file():
        data_yaml.write_text(yaml.safe_dump({'path': '.', 'train': 'images/train', 'names': YOLO_NAMES}))
    label = root / 'yolo/labels/train/a.txt'
    label.write_bytes(raw)
    raised, data = _read_both('yolo txt', lambda mode: read_dataset('yolo', data_yaml, on_error=mode), label)
    expected = _expect_yolo(raw)
    if expected is None:
        assert raised is not None and raised.issue.kind == 'malformed_file' and len(data) == 0
        return
    boxes, labels, issues = expected
    assert (raised is not None) == (issues > 0) and len(data.issues) == issues
    np.testing.assert_array_equal(data.samples[0].boxes, np.asarray(boxes, np.float32).reshape(-1, 4))
    np.testing.assert_array_equal(data.samples[0].labels, labels)


# -- structured formats: documented error or a sane dataset ----------------------------------------

def _nested(depth: int):
    value = []
    for _ in range(depth):
        value = [value]
    return value


HOSTILE = [None, True, False, 0, 1, 2, 3, -1, 0.5, -0.0, 1e-320, 1e308, -1e308, 10 ** 20, -10 ** 20, 2 ** 63,
           2 ** 64, 10 ** 400, math.nan, math.inf, -math.inf, '', '0', '1.5', 'nan', 'inf', 'a.png', 'car',
           'person', '\x00', 'a\nb.png', 'a.png\r\n', '\u2028\x1c\t', '../a.png', 'img/a.png',
           '\u202e\U0001F697', 'x' * 300, [], [1], [None], [1, 2, 3, 4], ['1', '2', '3', '4'], [[1, 2], [3, 4]],
           [1, 2, 3, 4, 5], {}, {'a': 1}, {'x1': 1, 'y1': 2}, {'': None}, _nested(3), _nested(60)]
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-10 ** 20, 10 ** 20),
                        st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8))
# Mostly the fixed pool (cheap, and every kind of wrong value), some freshly drawn scalars.
hostile = st.one_of(st.sampled_from(HOSTILE), st.sampled_from(HOSTILE), st.sampled_from(HOSTILE), json_scalar)


def coordinate():
    return st.one_of(st.integers(-500, (W + 5) * 100).map(lambda v: v / 100), st.integers(-5, W + 5), hostile)


def _rarely(draw, odds: int) -> bool:
    """True one time in ``odds``; the simplest draw (where hypothesis starts and shrinks to) is False."""
    return draw(st.integers(1, odds)) == odds


def _maybe(draw, value, odds: int = 6):
    """Usually the well-formed value, one time in ``odds`` a hostile JSON value instead."""
    return draw(hostile) if _rarely(draw, odds) else value


YAML_NAMES = [YOLO_NAMES, ['car'], [], ['car', 'car'], [1, 2.5, True], ['1', 1], [None], [['a']], ['', ' '],
              {0: 'car', 1: 'person'}, {1: 'car', 0: 'bike'}, {1: 'car'}, {'0': 'a', '1': 'b'}, {0: 'a', '0': 'b'},
              {0.0: 'a'}, {True: 'a', 0: 'b'}, {math.nan: 'a'}, {math.inf: 'a'}, {-1: 'a'}, {0: None},
              {0: ['x']}, {'a': 'b'}, {10 ** 30: 'a'}, {0: 'a', 1: 'a'}, 'car', 5, None]


@st.composite
def yolo_yaml_text(draw) -> str:
    names = draw(st.one_of(st.sampled_from(YAML_NAMES), st.lists(st.text(max_size=5), max_size=4), hostile))
    if not _rarely(draw, 3):
        names = YOLO_NAMES
    doc = {'path': _maybe(draw, '.'), 'train': _maybe(draw, 'images/train'), 'names': names}
    for key in list(doc):
        if _rarely(draw, 7):
            del doc[key]
    text = yaml.safe_dump(doc, allow_unicode=True)
    extra = '' if not _rarely(draw, 3) else draw(st.sampled_from(
        ['x: [[[[[[[[[[[[[[[[[[[[\n', ': bad\n', '\t', 'x: ' + '[' * 200 + ']' * 200 + '\n', 'x: *a\n', '%YAML 9\n']))
    return text + extra


def _leaves_root(raw: bytes, data_yaml: Path, root: Path) -> bool:
    """Whether the data YAML sends the reader to an image directory outside the fuzz directory
    (``train: /`` or ``path: ..``): reading there means scanning the disk, which is correct
    behaviour for such a file but no test of the reader."""
    try:
        doc = yaml.safe_load(raw.decode('utf-8-sig'))
    except (ValueError, yaml.YAMLError, RecursionError):
        return False
    if not isinstance(doc, dict) or not isinstance(doc.get('path') or '.', str):
        return False
    base = data_yaml.parent / (doc.get('path') or '.')
    entries = doc.get('train') if isinstance(doc.get('train'), list) else [doc.get('train')]
    return any(isinstance(e, str) and e and '\0' not in e and '\0' not in str(base)
               and not os.path.normpath(base / e).startswith(str(root) + os.sep) for e in entries)


@budget(0.2)
@given(raw=yolo_yaml_text().flatmap(lambda text: mutated(text, STRUCTURED_OPS)))
def test_yolo_data_yaml(root, raw):
    _seen('yolo data yaml', raw)
    data_yaml = root / 'yolo/fuzz.yaml'
    data_yaml.write_bytes(raw)
    (root / 'yolo/labels/train/a.txt').write_text('0 0.5 0.5 0.2 0.2\n')
    if _leaves_root(raw, data_yaml, root):
        OUTCOMES['yolo data yaml']['not read: image directory outside the fuzz directory'] += 1
        return
    try:
        data = read_dataset('yolo', data_yaml, on_error='skip')
    except DatasetError as exc:
        assert str(data_yaml) in str(exc) and str(exc).isprintable(), exc
        OUTCOMES['yolo data yaml'][f'DatasetError {exc.issue.kind}'] += 1
        return
    except FileNotFoundError as exc:
        assert 'image source' in str(exc)
        OUTCOMES['yolo data yaml']['FileNotFoundError (image source missing)'] += 1
        return
    _assert_sane(data)
    doc = yaml.safe_load(raw.decode('utf-8-sig'))
    names = doc['names']
    expected = [str(names[k]) for k in sorted(names, key=int)] if isinstance(names, dict) else [str(n) for n in names]
    assert data.class_names == expected
    OUTCOMES['yolo data yaml']['parsed'] += 1


@st.composite
def coco_text(draw) -> str:
    images = [{'id': _maybe(draw, i), 'file_name': _maybe(draw, 'a.png'), 'width': _maybe(draw, W),
               'height': _maybe(draw, H)} for i in range(draw(st.integers(0, 3)))]
    anns = [{'id': j, 'image_id': _maybe(draw, draw(st.integers(0, 3))),
             'bbox': _maybe(draw, [draw(coordinate()) for _ in range(4)]),
             'category_id': _maybe(draw, draw(st.integers(0, 3))), 'iscrowd': _maybe(draw, 0)}
            for j in range(draw(st.integers(0, 5)))]
    # the file-level parts (categories, the three lists, the top level) are broken more rarely, so
    # most files reach the per-image and per-annotation checks
    cats = [{'id': _maybe(draw, i, 30), 'name': _maybe(draw, n, 30)} for i, n in enumerate(['car', 'person'])]
    doc = {'images': _maybe(draw, images, 30), 'annotations': _maybe(draw, anns, 30),
           'categories': _maybe(draw, cats, 30)}
    return json.dumps(_maybe(draw, doc, 30))


@budget(0.2)
@given(raw=coco_text().flatmap(lambda text: mutated(text, STRUCTURED_OPS)))
def test_coco_json(root, raw):
    _seen('coco json', raw)
    path = root / 'coco.json'
    path.write_bytes(raw)
    _read_both('coco json', lambda mode: read_dataset('coco', path, images=root / 'img', on_error=mode), path)


@st.composite
def bdd_text(draw) -> str:
    frames = []
    for _ in range(draw(st.integers(0, 3))):
        labels = [{'category': _maybe(draw, draw(st.sampled_from(['car', 'person', 'lane', 'boat']))),
                   'box2d': _maybe(draw, {k: draw(coordinate()) for k in ('x1', 'y1', 'x2', 'y2')}),
                   'attributes': _maybe(draw, {'occluded': draw(st.booleans()), 'crowd': draw(st.booleans())})}
                  for _ in range(draw(st.integers(0, 4)))]
        frames.append(_maybe(draw, {'name': _maybe(draw, 'a.png'), 'labels': _maybe(draw, labels),
                                    'videoName': _maybe(draw, 'seq1')}))
    return json.dumps(_maybe(draw, frames))


@budget(0.15)
@given(raw=bdd_text().flatmap(lambda text: mutated(text, STRUCTURED_OPS)))
def test_bdd100k_json(root, raw):
    _seen('bdd100k json', raw)
    path = root / 'bdd.json'
    path.write_bytes(raw)
    _read_both('bdd100k json', lambda mode: read_dataset('bdd100k', path, images=root / 'img', on_error=mode), path)


@st.composite
def cityscapes_text(draw) -> str:
    objects = [{'label': _maybe(draw, draw(st.sampled_from(['car', 'persongroup', 'road', 'person', 'ufo']))),
                'polygon': _maybe(draw, [[draw(coordinate()), draw(coordinate())]
                                         for _ in range(draw(st.integers(0, 5)))])}
               for _ in range(draw(st.integers(0, 4)))]
    doc = {'imgWidth': _maybe(draw, W), 'imgHeight': _maybe(draw, H), 'objects': _maybe(draw, objects)}
    return json.dumps(_maybe(draw, doc))


@budget(0.2)
@given(raw=cityscapes_text().flatmap(lambda text: mutated(text, STRUCTURED_OPS)))
def test_cityscapes_polygons(root, raw):
    _seen('cityscapes json', raw)
    path = root / 'cs/gtFine/train/c/c_000000_000001_gtFine_polygons.json'
    path.write_bytes(raw)
    _read_both('cityscapes json', lambda mode: read_dataset('cityscapes', root / 'cs', on_error=mode), path)


@st.composite
def voc_text(draw) -> str:
    def field(value):
        return escape(str(_maybe(draw, value)))
    objects = ''.join(
        f'<object><name>{field(draw(st.sampled_from(["car", "person", "", " dog "])))}</name>'
        f'<difficult>{field(0)}</difficult><truncated>{field(draw(number_text))}</truncated>'
        f'<bndbox>' + ''.join(f'<{k}>{field(draw(coordinate()))}</{k}>' for k in ('xmin', 'ymin', 'xmax', 'ymax'))
        + '</bndbox></object>' for _ in range(draw(st.integers(0, 4))))
    return (f'<annotation><filename>{field("a.jpg")}</filename><size><width>{field(W)}</width>'
            f'<height>{field(H)}</height></size>{objects}</annotation>')


@budget(0.2)
@given(raw=voc_text().flatmap(lambda text: mutated(text, STRUCTURED_OPS)))
def test_voc_xml(root, raw):
    _seen('voc xml', raw)
    path = root / 'voc/Annotations/a.xml'
    path.write_bytes(raw)
    _read_both('voc xml', lambda mode: read_dataset('voc', root / 'voc', on_error=mode), path)
