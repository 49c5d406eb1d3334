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


@pytest.mark.parametrize('data, text', [(b'', 'empty'), (b'not an image at all', 'could not decode')])
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
