"""Fuzz the ROS-free message converters: documented error (MessageFormatError) or a correct result.

Messages are plain objects with the messages' fields (the converters take any object), so this
runs without ROS, on numpy 1.21 too. "Correct" is checked against slow, independent reference
decoders written here: pure-Python struct unpacking, row by row and point by point. Seeded and
bounded by the profile in tests/conftest.py; ``--long`` runs 10,000 cases per target.
"""
from __future__ import annotations

import array
import math
import struct
import types

import numpy as np
import pytest

from hypothesis import given, strategies as st  # noqa: E402

from aiat_perception.msg_conversions import (DEFAULT_MAX_PIXELS, IMAGE_ENCODINGS,  # noqa: E402
                                             MessageFormatError, cloud_xyz,
                                             compressed_image_to_numpy, image_to_numpy,
                                             laserscan_to_ranges, pointcloud2_to_array)

from .outcomes import Outcomes  # noqa: E402

OUTCOMES = Outcomes(__name__)


@pytest.fixture(scope='module', autouse=True)
def _report_outcomes():
    yield
    OUTCOMES.report()


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _as_bytes(data):
    """The bytes a well-formed uint8[] field holds, or None for anything else."""
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    if isinstance(data, array.array) and data.typecode == 'B':
        return data.tobytes()
    if isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 1:
        return data.tobytes()
    return None


def _wrap(raw: bytes, kind: str):
    if kind == 'bytes':
        return raw
    if kind == 'bytearray':
        return bytearray(raw)
    if kind == 'array':
        return array.array('B', raw)
    return np.frombuffer(raw, np.uint8)


# ---------------------------------------------------------------------------------------------
# sensor_msgs/Image

_UNSIGNED = {1: 'B', 2: 'H', 4: 'I', 8: 'Q'}   # bit patterns, so float NaN payloads compare too


def reference_image(msg):
    """Pure-Python decoder: None if the message is malformed, else (shape, dtype, pixel bits)."""
    encoding = msg.encoding
    if not isinstance(encoding, str) or encoding not in IMAGE_ENCODINGS:
        return None
    if not all(_is_int(getattr(msg, k)) for k in ('height', 'width', 'step')):
        return None
    dtype, channels = IMAGE_ENCODINGS[encoding]
    size = np.dtype(dtype).itemsize
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    data = _as_bytes(msg.data)
    if data is None or height <= 0 or width <= 0 or step < width * channels * size:
        return None
    if len(data) < step * height:
        return None
    order = '>' if msg.is_bigendian else '<'
    code = order + _UNSIGNED[size]
    values = []
    for row in range(height):
        for col in range(width):
            for ch in range(channels):
                values.append(struct.unpack_from(code, data, row * step + (col * channels + ch) * size)[0])
    shape = (height, width) if channels == 1 else (height, width, channels)
    return shape, np.dtype(dtype), values


_ENCODINGS = sorted(IMAGE_ENCODINGS) + ['yuv422', '', 'BGR8', '64FC1']


@st.composite
def image_messages(draw):
    encoding = draw(st.sampled_from(_ENCODINGS))
    dtype, channels = IMAGE_ENCODINGS.get(encoding, (np.uint8, 3))
    size = np.dtype(dtype).itemsize
    height = draw(st.integers(0, 9))
    width = draw(st.integers(0, 9))
    row = width * channels * size
    step = draw(st.one_of(st.integers(row, row + 9), st.integers(0, row + 20)))
    length = max(step * height + draw(st.integers(-6, 6)), 0)
    raw = draw(st.binary(min_size=length, max_size=length))
    fields = dict(height=height, width=width, step=step, encoding=encoding,
                  is_bigendian=draw(st.booleans()),
                  data=_wrap(raw, draw(st.sampled_from(['bytes', 'bytearray', 'array', 'numpy']))))
    # now and then a field of the wrong type or a size no buffer can back
    if draw(st.integers(0, 9)) == 0:
        key = draw(st.sampled_from(['height', 'width', 'step', 'encoding', 'data']))
        fields[key] = draw(st.sampled_from([None, -1, 2 ** 62, 3.0, '4', [1, 2], b'rgb8', True]))
    return types.SimpleNamespace(**fields)


def _convert(target: str, convert, reference, msg, what: str, valid=lambda expected: expected is not None,
             accepted: str = ''):
    """(``convert(msg)``, ``reference(msg)``, None), or (None, ``reference(msg)``, the MessageFormatError)
    when the message was refused (counted for ``target``); ``valid(reference(msg))`` must agree."""
    expected = reference(msg)
    try:
        out = convert(msg)
    except MessageFormatError as exc:
        OUTCOMES.error(target, exc)
        assert not valid(expected), f'valid {what} refused: {exc}'
        return None, expected, exc
    assert valid(expected), accepted.format(expected) or f'malformed {what} accepted'
    return out, expected, None


@given(image_messages())
def test_fuzz_image(msg):
    image, expected, refused = _convert('Image', image_to_numpy, reference_image, msg, 'image')
    if refused:
        return
    shape, dtype, values = expected
    assert image.shape == shape and image.dtype == dtype and image.dtype.isnative
    bits = np.ascontiguousarray(image).view('u%d' % dtype.itemsize).reshape(-1).tolist()
    assert bits == values
    OUTCOMES.record('Image', 'valid')


# ---------------------------------------------------------------------------------------------
# sensor_msgs/PointCloud2

_POINTFIELD = {1: ('b', 1), 2: ('B', 1), 3: ('h', 2), 4: ('H', 2), 5: ('i', 4), 6: ('I', 4),
               7: ('f', 4), 8: ('d', 8)}


def reference_cloud(msg):
    """Pure-Python decoder: None if malformed, else {field: [per point: tuple of bit patterns]}."""
    ints = ('height', 'width', 'point_step', 'row_step')
    if not all(_is_int(getattr(msg, k)) for k in ints) or not isinstance(msg.fields, list):
        return None
    height, width, point_step, row_step = (int(getattr(msg, k)) for k in ints)
    data = _as_bytes(msg.data)
    if data is None or point_step <= 0 or height < 0 or width < 0 or not msg.fields:
        return None
    names = []
    layout = []
    for f in msg.fields:
        name, datatype = getattr(f, 'name', None), getattr(f, 'datatype', None)
        offset, count = getattr(f, 'offset', None), getattr(f, 'count', None)
        if not isinstance(name, str) or not name or name in names:
            return None
        if not _is_int(datatype) or datatype not in _POINTFIELD:
            return None
        if not _is_int(offset) or not _is_int(count) or offset < 0:
            return None
        size = _POINTFIELD[f.datatype][1]
        count = max(int(f.count), 1)
        if f.offset + size * count > point_step:
            return None
        names.append(f.name)
        layout.append((f.name, int(f.offset), size, count))
    if row_step < point_step * width or len(data) < row_step * height:
        return None
    order = '>' if msg.is_bigendian else '<'
    out = {name: [] for name in names}
    for row in range(height):
        for col in range(width):
            base = row * row_step + col * point_step
            for name, offset, size, count in layout:
                out[name].append(struct.unpack_from(f'{order}{count}{_UNSIGNED[size]}', data,
                                                    base + offset))
    return out


def reference_xyz(msg):
    """Points as float32 triples (x, y, z scalar), or a string saying why cloud_xyz must refuse."""
    fields = {f.name: f for f in msg.fields}
    for axis in 'xyz':
        if axis not in fields:
            return 'missing'
        if max(int(fields[axis].count), 1) != 1:
            return 'vector'
    order = '>' if msg.is_bigendian else '<'
    data = _as_bytes(msg.data)
    points = []
    for row in range(int(msg.height)):
        for col in range(int(msg.width)):
            base = row * msg.row_step + col * msg.point_step
            with np.errstate(over='ignore'):   # a float64 beyond float32 becomes inf
                points.append([np.float32(struct.unpack_from(order + _POINTFIELD[fields[a].datatype][0],
                                                             data, base + fields[a].offset)[0])
                               for a in 'xyz'])
    return points


@st.composite
def cloud_messages(draw):
    n_fields = draw(st.integers(0, 5))
    point_step = draw(st.integers(0, 40))
    fields = []
    for _ in range(n_fields):
        fields.append(types.SimpleNamespace(
            name=draw(st.sampled_from(['intensity', 'ring', 't', 'x', 'y', 'z', ''])),
            offset=draw(st.integers(0, max(point_step - 4, 1))),
            datatype=draw(st.sampled_from([7, 7, 7, 8, 1, 2, 3, 4, 5, 6, 0, 9])),
            count=draw(st.sampled_from([1, 1, 1, 0, 2, 3]))))
    if draw(st.booleans()):  # a well-formed x, y, z prefix
        kind, size = draw(st.sampled_from([(7, 4), (8, 8), (3, 2)]))
        fields = [types.SimpleNamespace(name=a, offset=size * i, datatype=kind, count=1)
                  for i, a in enumerate('xyz')] + [f for f in fields if f.name not in 'xyz']
        point_step = max(point_step, 3 * size + 8)
    height = draw(st.integers(0, 3))
    width = draw(st.integers(0, 6))
    row_step = draw(st.one_of(st.integers(point_step * width, point_step * width + 7),
                              st.integers(0, point_step * width + 20)))
    length = max(row_step * height + draw(st.integers(-5, 5)), 0)
    raw = draw(st.binary(min_size=length, max_size=length))
    msg = types.SimpleNamespace(height=height, width=width, fields=fields,
                                is_bigendian=draw(st.booleans()), point_step=point_step,
                                row_step=row_step, is_dense=False,
                                data=_wrap(raw, draw(st.sampled_from(['bytes', 'array', 'numpy']))))
    if draw(st.integers(0, 9)) == 0:
        key = draw(st.sampled_from(['height', 'width', 'point_step', 'row_step', 'fields', 'data']))
        setattr(msg, key, draw(st.sampled_from([None, -3, 2 ** 61, 2.0, 'x', [0.5]])))
    if fields and draw(st.integers(0, 9)) == 0:
        setattr(fields[0], draw(st.sampled_from(['name', 'offset', 'datatype', 'count'])),
                draw(st.sampled_from([None, -4, 2 ** 60, 1.5, 'f4', 7])))
    return msg


@given(cloud_messages())
def test_fuzz_pointcloud2(msg):
    cloud, expected, refused = _convert('PointCloud2', pointcloud2_to_array, reference_cloud, msg, 'cloud')
    if refused:
        return
    assert cloud.shape == (int(msg.height) * int(msg.width),)
    for name, values in expected.items():
        column = cloud[name]
        native = column.astype(column.dtype.newbyteorder('='))
        bits = native.view('u%d' % column.dtype.itemsize).reshape(cloud.shape[0], -1) \
            if cloud.shape[0] else np.zeros((0, 1), np.uint8)
        assert [tuple(v) for v in bits.tolist()] == values, name
    OUTCOMES.record('PointCloud2', 'valid')

    out, xyz_expected, refused = _convert('PointCloud2.xyz', lambda m: cloud_xyz(m, nan='keep'), reference_xyz,
                                          msg, 'xyz', valid=lambda expected: not isinstance(expected, str),
                                          accepted='cloud_xyz accepted a cloud with {} x/y/z')
    if refused:
        return
    xyz, bad = out
    want = np.array(xyz_expected, dtype=np.float32).reshape(-1, 3)
    np.testing.assert_array_equal(xyz, want)
    assert bad == int((~np.isfinite(want).all(axis=1)).sum())
    OUTCOMES.record('PointCloud2.xyz', 'valid')


# ---------------------------------------------------------------------------------------------
# sensor_msgs/CompressedImage


def _encode(image, ext):
    import cv2
    ok, data = cv2.imencode(ext, image)
    assert ok
    return bytearray(data.tobytes())


def _patch_size(data: bytearray, width: int, height: int) -> None:
    if data[:2] == b'\xff\xd8':
        at = data.find(b'\xff\xc0')
        if at < 0:
            at = data.find(b'\xff\xc2')
        data[at + 5:at + 9] = struct.pack('>HH', height & 0xFFFF, width & 0xFFFF)
    else:
        data[16:24] = struct.pack('>II', width & 0xFFFFFFFF, height & 0xFFFFFFFF)


def _claimed_size(data: bytes):
    """Reference header reader (simplest possible): PNG IHDR, or the first SOF0/SOF2 marker."""
    if data[:8] == b'\x89PNG\r\n\x1a\n' and len(data) >= 24:
        return struct.unpack('>II', data[16:24])
    for marker in (b'\xff\xc0', b'\xff\xc2'):
        at = data.find(marker)
        if at >= 0 and len(data) >= at + 9:
            height, width = struct.unpack('>HH', data[at + 5:at + 9])
            return width, height
    return None


@st.composite
def compressed_messages(draw):
    ext = draw(st.sampled_from(['.png', '.jpg']))
    height, width = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    channels = draw(st.sampled_from([1, 3, 4] if ext == '.png' else [1, 3]))
    dtype = draw(st.sampled_from([np.uint8, np.uint16])) if ext == '.png' else np.uint8
    seed = draw(st.integers(0, 2 ** 16))
    shape = (height, width) if channels == 1 else (height, width, channels)
    image = np.random.default_rng(seed).integers(0, np.iinfo(dtype).max, size=shape,
                                                 dtype=dtype, endpoint=True)
    data = _encode(image, ext)
    mutation = draw(st.sampled_from(['none', 'none', 'lie', 'bomb', 'truncate', 'flip', 'append',
                                     'garbage']))
    if mutation == 'lie':
        _patch_size(data, draw(st.integers(0, 5000)), draw(st.integers(0, 5000)))
    elif mutation == 'bomb':
        _patch_size(data, draw(st.integers(8000, 2 ** 32 - 1)), draw(st.integers(8000, 2 ** 32 - 1)))
    elif mutation == 'truncate':
        data = data[:draw(st.integers(0, len(data) - 1))]
    elif mutation == 'flip':
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, len(data) - 1))
            data[at] ^= draw(st.integers(1, 255))
    elif mutation == 'append':
        data += draw(st.binary(min_size=1, max_size=64))
    elif mutation == 'garbage':
        data = bytearray(draw(st.binary(max_size=200)))
    max_pixels = draw(st.sampled_from([None, None, height * width, height * width - 1, 64]))
    msg = types.SimpleNamespace(format='png' if ext == '.png' else 'jpeg', data=bytes(data))
    return msg, image, ext, mutation, max(max_pixels, 1) if max_pixels is not None else None


@given(compressed_messages())
def test_fuzz_compressed_image(case):
    msg, image, ext, mutation, max_pixels = case
    limit = DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
    try:
        decoded, encoding = compressed_image_to_numpy(msg, max_pixels=max_pixels)
    except MessageFormatError as exc:
        OUTCOMES.record('CompressedImage', f'MessageFormatError:{mutation}')
        assert exc.msg_type == 'CompressedImage'
        assert mutation != 'none' or image.shape[0] * image.shape[1] > limit, \
            f'valid {ext} refused: {exc}'
        return
    OUTCOMES.record('CompressedImage', f'valid:{mutation}')
    height, width = decoded.shape[:2]
    assert height * width <= limit
    assert IMAGE_ENCODINGS[encoding] == (decoded.dtype.type, 1 if decoded.ndim == 2 else decoded.shape[2])
    assert (width, height) == _claimed_size(msg.data)
    if mutation in ('none', 'append') and ext == '.png':
        np.testing.assert_array_equal(decoded, image)   # lossless
    if mutation == 'none':
        assert decoded.shape == image.shape
    assert mutation not in ('bomb', 'truncate'), f'{mutation} accepted as {decoded.shape}'


# ---------------------------------------------------------------------------------------------
# sensor_msgs/LaserScan


def reference_scan(msg):
    """None if malformed (the documented rules, restated in plain Python), else (angles, valid)."""
    numbers = {}
    for key in ('angle_min', 'angle_max', 'angle_increment', 'range_min', 'range_max'):
        value = getattr(msg, key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return None
        numbers[key] = float(value)
    if not isinstance(msg.ranges, list) or not all(isinstance(r, float) for r in msg.ranges):
        return None
    n = len(msg.ranges)
    lo, hi, inc = numbers['angle_min'], numbers['angle_max'], numbers['angle_increment']
    if n == 0 or (inc == 0 and n > 1):
        return None
    if n > 1 and hi != lo and (hi - lo) * inc < 0:
        return None
    slack = abs(inc) + 1e-3
    if abs((n - 1) * inc) > 2 * math.pi + slack or abs(lo + (n - 1) * inc - hi) > slack:
        return None
    if numbers['range_min'] < 0 or numbers['range_max'] <= numbers['range_min']:
        return None
    intensities = [] if msg.intensities is None else msg.intensities
    if not isinstance(intensities, list) or len(intensities) not in (0, n):
        return None
    with np.errstate(over='ignore'):
        rmin, rmax = np.float32(numbers['range_min']), np.float32(numbers['range_max'])
    valid = [bool(math.isfinite(r) and rmin <= np.float32(r) <= rmax) for r in msg.ranges]
    angles = [np.float32(lo + i * inc) for i in range(n)]
    return angles, valid


_weird = st.sampled_from([float('nan'), float('inf'), -float('inf'), 0.0, 1e300, None, '1', True])


@st.composite
def scan_messages(draw):
    n = draw(st.integers(0, 24))
    angle_min = draw(st.floats(-4, 4))
    increment = draw(st.sampled_from([1, 1, 1, -1, 0])) * draw(st.floats(1e-4, 0.15))
    angle_max = angle_min + (n - 1) * increment + draw(st.sampled_from([0.0, 0.0, increment,
                                                                        -increment, 0.5]))
    range_min = draw(st.floats(-1, 5))
    range_max = range_min + draw(st.floats(-1, 30))
    ranges = draw(st.lists(st.one_of(st.floats(-1, 40, width=32),
                                     st.sampled_from([float('nan'), float('inf'), -float('inf')])),
                           min_size=n, max_size=n))
    intensities = draw(st.sampled_from([[], [1.0] * n, [1.0] * (n + 1)]))
    fields = dict(angle_min=angle_min, angle_max=angle_max, angle_increment=increment,
                  range_min=range_min, range_max=range_max, ranges=ranges,
                  intensities=intensities, time_increment=0.0, scan_time=0.025)
    if draw(st.integers(0, 7)) == 0:
        fields[draw(st.sampled_from(['angle_min', 'angle_max', 'angle_increment', 'range_min',
                                     'range_max', 'intensities']))] = draw(_weird)
    if draw(st.integers(0, 15)) == 0:
        fields['ranges'] = draw(st.sampled_from([None, 'abc', [[1.0, 2.0]], [None] * 3]))
    return types.SimpleNamespace(**fields)


@given(scan_messages())
def test_fuzz_laserscan(msg):
    out, expected, refused = _convert('LaserScan', laserscan_to_ranges, reference_scan, msg, 'scan')
    if refused:
        assert refused.msg_type == 'LaserScan'
        return
    angles, valid = expected
    assert out.valid.tolist() == valid
    np.testing.assert_allclose(out.angles, np.array(angles, np.float32), rtol=0, atol=1e-5)
    np.testing.assert_array_equal(out.ranges, np.array(msg.ranges, np.float32))
    OUTCOMES.record('LaserScan', 'valid')
