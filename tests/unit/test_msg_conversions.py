"""sensor_msgs <-> numpy conversions, including malformed messages.

Uses the real sensor_msgs classes where the ROS wheels are installed; the ROS-free core environment
(numpy 1.21, no ROS wheels) runs the same checks on plain objects with the messages' fields.
"""
from __future__ import annotations

import types

import numpy as np
import pytest

from aiat_perception.msg_conversions import (IMAGE_ENCODINGS, MessageFormatError,
                                             array_to_pointcloud2, cloud_xyz,
                                             compressed_image_to_numpy, image_to_numpy,
                                             numpy_to_image, pointcloud2_to_array)

try:
    from sensor_msgs.msg import CompressedImage, Image, PointCloud2, PointField
    HAVE_ROS = True
except ImportError:  # the numpy-1.21 core environment has no ROS wheels
    HAVE_ROS = False

    def _plain(**defaults):
        def make(**kwargs):
            obj = types.SimpleNamespace(**defaults)
            obj.header = types.SimpleNamespace(frame_id='', stamp=None)
            for key, value in kwargs.items():
                setattr(obj, key, value)
            return obj
        return make

    Image = _plain(height=0, width=0, encoding='', is_bigendian=False, step=0, data=b'')
    CompressedImage = _plain(format='', data=b'')
    PointCloud2 = _plain(height=0, width=0, fields=[], is_bigendian=False, point_step=0,
                         row_step=0, data=b'', is_dense=False)
    PointField = _plain(name='', offset=0, datatype=0, count=1)


def random_image(encoding, height=7, width=5, seed=0):
    dtype, channels = IMAGE_ENCODINGS[encoding]
    rng = np.random.default_rng(seed)
    shape = (height, width) if channels == 1 else (height, width, channels)
    if np.dtype(dtype).kind == 'f':
        return rng.standard_normal(shape).astype(dtype)
    return rng.integers(0, np.iinfo(dtype).max, size=shape, dtype=dtype)


@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8', 'mono16', '16UC1', '32FC1'])
def test_image_round_trip(encoding):
    image = random_image(encoding)
    msg = numpy_to_image(image, encoding, msg=Image())
    assert (msg.height, msg.width, msg.encoding) == (7, 5, encoding)
    assert msg.step == image.shape[1] * image.itemsize * (1 if image.ndim == 2 else image.shape[2])
    back = image_to_numpy(msg)
    assert back.dtype == image.dtype and back.shape == image.shape
    np.testing.assert_array_equal(back, image)


def test_image_view_is_zero_copy():
    image = random_image('rgb8', 720, 1280)
    msg = numpy_to_image(image, 'rgb8', msg=Image())
    view = image_to_numpy(msg)
    assert np.shares_memory(view, np.frombuffer(msg.data, np.uint8))


def test_image_with_row_padding():
    image = random_image('bgr8', 4, 3)
    padded = np.zeros((4, 16), np.uint8)
    padded[:, :9] = image.reshape(4, 9)
    msg = Image(height=4, width=3, encoding='bgr8', step=16, data=padded.tobytes())
    np.testing.assert_array_equal(image_to_numpy(msg), image)


def test_big_endian_16bit_image():
    image = random_image('mono16', 3, 4)
    msg = Image(height=3, width=4, encoding='mono16', step=8, is_bigendian=True,
                data=image.astype('>u2').tobytes())
    np.testing.assert_array_equal(image_to_numpy(msg), image)


@pytest.mark.parametrize('fields, field_name, text', [
    (dict(encoding='yuv422_weird'), 'encoding', 'unsupported encoding'),
    (dict(step=10), 'step', 'step 10 < width'),
    (dict(data=b'\x00' * 20), 'data', 'expected step'),
    (dict(height=0), 'height/width', 'empty image'),
])
def test_malformed_image_names_the_field(fields, field_name, text):
    kwargs = dict(height=4, width=5, encoding='rgb8', step=15, data=b'\x00' * 60)
    kwargs.update(fields)
    with pytest.raises(MessageFormatError) as err:
        image_to_numpy(Image(**kwargs))
    assert err.value.field == field_name
    assert text in str(err.value) and str(err.value).startswith('Image.')


def test_numpy_to_image_rejects_mismatched_array():
    with pytest.raises(ValueError, match='does not fit encoding'):
        numpy_to_image(np.zeros((4, 4), np.uint8), 'rgb8', msg=Image())
    with pytest.raises(ValueError, match='dtype'):
        numpy_to_image(np.zeros((4, 4, 3), np.float32), 'rgb8', msg=Image())


def test_compressed_image_decode():
    import cv2
    image = random_image('bgr8', 32, 48)
    ok, png = cv2.imencode('.png', image)
    assert ok
    decoded, encoding = compressed_image_to_numpy(CompressedImage(format='png', data=png.tobytes()))
    assert encoding == 'bgr8'
    np.testing.assert_array_equal(decoded, image)
    ok, jpg = cv2.imencode('.jpg', image[:, :, 0])
    decoded, encoding = compressed_image_to_numpy(CompressedImage(format='jpeg', data=jpg.tobytes()))
    assert encoding == 'mono8' and decoded.shape == (32, 48)


@pytest.mark.parametrize('data, text', [(b'', 'empty'), (b'not an image at all', 'neither JPEG nor PNG')])
def test_compressed_image_malformed(data, text):
    with pytest.raises(MessageFormatError, match=text) as err:
        compressed_image_to_numpy(CompressedImage(format='jpeg', data=data))
    assert err.value.field == 'data'


def xyzi_cloud(n=50, byteorder='<', padding=True, seed=1):
    rng = np.random.default_rng(seed)
    dtype = np.dtype({'names': ['x', 'y', 'z', 'intensity'],
                      'formats': [byteorder + 'f4'] * 4,
                      'offsets': [0, 4, 8, 16 if padding else 12],
                      'itemsize': 32 if padding else 16})
    cloud = np.zeros(n, dtype=dtype)
    for name in dtype.names:
        cloud[name] = rng.standard_normal(n)
    return cloud


@pytest.mark.parametrize('byteorder', ['<', '>'])
@pytest.mark.parametrize('padding', [True, False])
def test_pointcloud_round_trip(byteorder, padding):
    cloud = xyzi_cloud(byteorder=byteorder, padding=padding)
    msg = array_to_pointcloud2(cloud, msg=PointCloud2() if not HAVE_ROS else None) if HAVE_ROS \
        else _plain_cloud_msg(cloud, byteorder)
    assert msg.is_bigendian == (byteorder == '>')
    assert msg.point_step == cloud.dtype.itemsize
    back = pointcloud2_to_array(msg)
    assert back.dtype.names == ('x', 'y', 'z', 'intensity')
    for name in cloud.dtype.names:
        np.testing.assert_array_equal(back[name], cloud[name])


def _plain_cloud_msg(cloud, byteorder):
    fields = [PointField(name=n, offset=cloud.dtype.fields[n][1], datatype=7, count=1)
              for n in cloud.dtype.names]
    return PointCloud2(height=1, width=cloud.size, fields=fields, is_bigendian=byteorder == '>',
                       point_step=cloud.dtype.itemsize, row_step=cloud.dtype.itemsize * cloud.size,
                       data=cloud.tobytes())


def cloud_msg(cloud):
    return _plain_cloud_msg(cloud, '<') if not HAVE_ROS else array_to_pointcloud2(cloud)


def test_pointcloud_nan_points():
    cloud = xyzi_cloud(10)
    cloud['x'][[2, 7]] = np.nan
    msg = cloud_msg(cloud)
    xyz, bad = cloud_xyz(msg, nan='drop')
    assert bad == 2 and xyz.shape == (8, 3)
    xyz, bad = cloud_xyz(msg, nan='keep')
    assert xyz.shape == (10, 3) and np.isnan(xyz[2, 0])
    with pytest.raises(MessageFormatError, match='2 of 10 points have non-finite'):
        cloud_xyz(msg, nan='raise')


@pytest.mark.parametrize('change, field, text', [
    (dict(row_step=10), 'row_step', 'row_step 10 <'),
    ('truncate', 'data', 'expected row_step'),
    (dict(point_step=0), 'point_step', 'must be > 0'),
    (dict(point_step=8), 'fields[2].offset', 'beyond point_step'),
    ('bad_datatype', 'fields[0].datatype', 'unknown datatype'),
])
def test_malformed_pointcloud_names_the_field(change, field, text):
    msg = cloud_msg(xyzi_cloud(10))
    if change == 'truncate':
        msg.data = bytes(msg.data)[:100]
    elif change == 'bad_datatype':
        msg.fields[0].datatype = 42 if not HAVE_ROS else 9
    else:
        for key, value in change.items():
            setattr(msg, key, value)
    with pytest.raises(MessageFormatError) as err:
        pointcloud2_to_array(msg)
    assert err.value.field == field and text in str(err.value)


def test_cloud_without_xyz_is_reported():
    cloud = np.zeros(3, dtype=[('intensity', '<f4')])
    msg = _plain_cloud_msg(cloud, '<') if not HAVE_ROS else array_to_pointcloud2(cloud)
    with pytest.raises(MessageFormatError, match="no 'x' field"):
        cloud_xyz(msg)


# --- issue 10, defect 2: padded 16/32-bit rows (numpy 1.21), big-endian, malformed clouds -------

@pytest.mark.parametrize('encoding', ['mono16', '16UC1', '32FC1'])
@pytest.mark.parametrize('big_endian', [False, True])
@pytest.mark.parametrize('pad', [2, 3, 4])
def test_padded_wide_pixel_rows(encoding, big_endian, pad):
    image = random_image(encoding, 5, 7)
    order = '>' if big_endian else '<'
    row = image.astype(image.dtype.newbyteorder(order)).reshape(5, -1).view(np.uint8)
    padded = np.zeros((5, row.shape[1] + pad), np.uint8)
    padded[:, :row.shape[1]] = row
    msg = Image(height=5, width=7, encoding=encoding, step=padded.shape[1],
                is_bigendian=big_endian, data=padded.tobytes())
    back = image_to_numpy(msg)
    assert back.shape == image.shape and back.dtype.kind == image.dtype.kind
    np.testing.assert_array_equal(back, image)


@pytest.mark.parametrize('change, field', [
    (dict(height='seven'), 'height'),
    (dict(width=None), 'width'),
    (dict(step=-15), 'step'),
    (dict(encoding=['rgb8']), 'encoding'),
    (dict(data=[1, 2, 3]), 'data'),
    (dict(data=None), 'data'),
])
def test_image_fields_of_the_wrong_type(change, field):
    kwargs = dict(height=4, width=5, encoding='rgb8', step=15, data=b'\x00' * 60)
    kwargs.update(change)
    msg = types.SimpleNamespace(is_bigendian=False, **kwargs)
    with pytest.raises(MessageFormatError) as err:
        image_to_numpy(msg)
    assert err.value.field == field


def _xyz_count_cloud(count):
    fields = [PointField(name='x', offset=0, datatype=7, count=count),
              PointField(name='y', offset=4 * count, datatype=7, count=1),
              PointField(name='z', offset=4 * count + 4, datatype=7, count=1)]
    step = 4 * count + 8
    return PointCloud2(height=1, width=3, fields=fields, is_bigendian=False, point_step=step,
                       row_step=3 * step, data=b'\x00' * (3 * step), is_dense=True)


def test_cloud_xyz_refuses_vector_coordinates():
    # Decision (documented in cloud_xyz): x/y/z must be scalars; a count > 1 is malformed input.
    with pytest.raises(MessageFormatError, match="count 3") as err:
        cloud_xyz(_xyz_count_cloud(3))
    assert err.value.field == 'fields[0].count'
    xyz, bad = cloud_xyz(_xyz_count_cloud(1))
    assert xyz.shape == (3, 3) and bad == 0


@pytest.mark.parametrize('change', [
    dict(fields=None), dict(fields=[object()]), dict(point_step='16'), dict(height=-1),
    dict(width=2 ** 62), dict(row_step=None), dict(data=12), dict(point_step=2 ** 40),
    'negative_offset', 'name_not_str', 'empty_name', 'huge_count', 'datatype_str',
])
def test_malformed_cloud_raises_message_format_error(change):
    msg = cloud_msg(xyzi_cloud(4))
    if change == 'negative_offset':
        msg.fields[1].offset = -4
    elif change == 'name_not_str':
        msg.fields = [types.SimpleNamespace(name=3, offset=0, datatype=7, count=1)]
    elif change == 'empty_name':
        msg.fields = [types.SimpleNamespace(name='', offset=0, datatype=7, count=1)]
    elif change == 'huge_count':
        msg.fields = [types.SimpleNamespace(name='x', offset=0, datatype=7, count=2 ** 60)]
    elif change == 'datatype_str':
        msg.fields = [types.SimpleNamespace(name='x', offset=0, datatype='f4', count=1)]
    else:
        msg = types.SimpleNamespace(**{k: getattr(msg, k) for k in (
            'height', 'width', 'fields', 'is_bigendian', 'point_step', 'row_step', 'data')})
        for key, value in change.items():
            setattr(msg, key, value)
    with pytest.raises(MessageFormatError):
        cloud_xyz(msg)


# --- issue 10, defect 1: image bombs and lying headers -----------------------------------------

def _jpeg(image):
    import cv2
    ok, data = cv2.imencode('.jpg', image)
    assert ok
    return bytearray(data.tobytes())


def _set_jpeg_size(data, width, height):
    import struct
    at = data.find(b'\xff\xc0')
    data[at + 5:at + 9] = struct.pack('>HH', height, width)
    return bytes(data)


def test_jpeg_bomb_is_refused_before_decoding():
    import time
    from aiat_perception.msg_conversions import DEFAULT_MAX_PIXELS
    data = _set_jpeg_size(_jpeg(random_image('bgr8', 16, 16)), 32768, 32767)
    start = time.perf_counter()
    with pytest.raises(MessageFormatError, match='32768x32767') as err:
        compressed_image_to_numpy(CompressedImage(format='jpeg', data=data))
    assert time.perf_counter() - start < 0.5
    assert err.value.msg_type == 'CompressedImage'
    assert 32768 * 32767 > DEFAULT_MAX_PIXELS >= 3840 * 2160


def test_pixel_limit_is_configurable():
    image = random_image('bgr8', 40, 50)
    msg = CompressedImage(format='jpeg', data=bytes(_jpeg(image)))
    assert compressed_image_to_numpy(msg, max_pixels=2000)[0].shape == (40, 50, 3)
    with pytest.raises(MessageFormatError, match='limit 1999'):
        compressed_image_to_numpy(msg, max_pixels=1999)


def test_header_beyond_opencv_limit_is_a_message_format_error():
    data = _set_jpeg_size(_jpeg(random_image('bgr8', 16, 16)), 65000, 65000)
    with pytest.raises(MessageFormatError):
        compressed_image_to_numpy(CompressedImage(format='jpeg', data=data), max_pixels=2 ** 40)


def test_header_claiming_more_than_its_data_can_fill():
    # 5 KB of real JPEG data whose header claims 4000x4000: OpenCV would pad it to 48 MB.
    data = _set_jpeg_size(_jpeg(random_image('bgr8', 64, 64)), 4000, 4000)
    with pytest.raises(MessageFormatError, match='cannot fill'):
        compressed_image_to_numpy(CompressedImage(format='jpeg', data=data), max_pixels=2 ** 26)


@pytest.mark.parametrize('kind', ['jpeg', 'png'])
def test_truncated_compressed_image_is_refused(kind):
    import cv2
    ok, data = cv2.imencode('.jpg' if kind == 'jpeg' else '.png', random_image('bgr8', 120, 160))
    data = data.tobytes()
    with pytest.raises(MessageFormatError):
        compressed_image_to_numpy(CompressedImage(format=kind, data=data[:len(data) * 2 // 3]))


@pytest.mark.parametrize('channels, encoding', [(1, 'mono16'), (3, 'bgr16'), (4, 'bgra16')])
def test_16bit_png_is_not_labelled_8bit(channels, encoding):
    import cv2
    rng = np.random.default_rng(3)
    shape = (9, 11) if channels == 1 else (9, 11, channels)
    image = rng.integers(0, 65535, size=shape, dtype=np.uint16)
    ok, data = cv2.imencode('.png', image)
    decoded, got = compressed_image_to_numpy(CompressedImage(format='png', data=data.tobytes()))
    assert got == encoding and got in IMAGE_ENCODINGS
    assert IMAGE_ENCODINGS[got] == (np.uint16, channels)
    np.testing.assert_array_equal(decoded, image)


@pytest.mark.parametrize('data', [b'\xff\xd8\xff', b'\x89PNG\r\n\x1a\n', b'\x00' * 100,
                                  b'BM' + b'\x00' * 60])
def test_garbage_and_unsupported_formats(data):
    with pytest.raises(MessageFormatError) as err:
        compressed_image_to_numpy(CompressedImage(format='jpeg', data=data))
    assert err.value.msg_type == 'CompressedImage'


# --- LaserScan ----------------------------------------------------------------------------------

def scan(**change):
    fields = dict(angle_min=-2.356194496154785, angle_max=2.3500585556030273,
                  angle_increment=0.006135923322290182, time_increment=0.0, scan_time=0.1,
                  range_min=0.03, range_max=11.0, ranges=np.linspace(0.5, 10, 768).astype(np.float32),
                  intensities=[])
    fields.update(change)
    return types.SimpleNamespace(**fields)


def test_laserscan_ranges_angles_and_mask():
    from aiat_perception.msg_conversions import laserscan_to_ranges
    ranges = np.linspace(0.5, 10, 768).astype(np.float32)
    ranges[[3, 4, 5, 6]] = [np.nan, np.inf, 0.01, 11.5]
    out = laserscan_to_ranges(scan(ranges=ranges, intensities=np.arange(768.0)))
    assert out.ranges.shape == out.angles.shape == out.valid.shape == (768,)
    assert out.angles[0] == pytest.approx(-2.356194496154785)
    assert out.angles[-1] == pytest.approx(2.3500585556030273, abs=1e-5)
    assert not out.valid[3:7].any() and out.valid[7:].all() and out.valid[:3].all()
    assert out.intensities is not None and out.intensities[10] == 10
    assert laserscan_to_ranges(scan()).intensities is None
    # a driver counting one beam fewer (angle_max one increment further) is accepted
    assert laserscan_to_ranges(scan(ranges=ranges[:-1])).ranges.size == 767


@pytest.mark.parametrize('change, field', [
    (dict(angle_min=float('nan')), 'angle_min'),
    (dict(angle_max='2'), 'angle_max'),
    (dict(angle_increment=0.0), 'angle_increment'),
    (dict(angle_increment=-0.006135923322290182), 'angle_increment'),
    (dict(angle_increment=0.007), 'angle_max'),
    (dict(angle_min=-20.0, angle_max=20.0, angle_increment=40 / 767), 'angle_increment'),
    (dict(range_min=-1.0), 'range_min'),
    (dict(range_max=0.01), 'range_max'),
    (dict(range_max=float('inf')), 'range_max'),
    (dict(ranges=[]), 'ranges'),
    (dict(ranges=['a'] * 768), 'ranges'),
    (dict(ranges=None), 'ranges'),
    (dict(ranges=[None] * 768), 'ranges'),
    (dict(ranges=['1.0'] * 768), 'ranges'),
    (dict(intensities=[1.0, 2.0]), 'intensities'),
])
def test_malformed_laserscan_names_the_field(change, field):
    from aiat_perception.msg_conversions import laserscan_to_ranges
    with pytest.raises(MessageFormatError) as err:
        laserscan_to_ranges(scan(**change))
    assert err.value.field == field and err.value.msg_type == 'LaserScan'
