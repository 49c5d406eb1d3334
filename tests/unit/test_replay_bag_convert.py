"""Bag converters: the real KITTI frames and the real ROS 1 leg bags into rosbag2 (MCAP, sqlite3),
read back with rosbags and with the mcap library."""
from __future__ import annotations

import numpy as np
import pytest

from aiat_perception.assets import shared_data
from aiat_perception.bag_reading import bag_topics, iterate_messages, paired_messages
from aiat_perception.kitti import KittiCalibration, read_label, read_velodyne
from aiat_perception.replay import messages as m
from aiat_perception.replay import topics
from aiat_perception.replay.kitti_bag import convert_kitti, projection_from_bag
from aiat_perception.replay.ros1 import convert_ros1
from aiat_perception.static_transforms import buffer_from


@pytest.fixture(scope='module')
def kitti_bag(tmp_path_factory):
    out = tmp_path_factory.mktemp('kitti') / 'bag'
    counts = convert_kitti(shared_data('kitti_object'), out)
    return out, counts


def test_kitti_bag_topics_and_types(kitti_bag):
    path, counts = kitti_bag
    # the two frames come from different drives: two calibrations, two /tf_static messages
    assert counts[topics.IMAGE] == 2 and counts[topics.POINTS] == 2 and counts[topics.TF_STATIC] == 2
    found = bag_topics(path)
    assert found[topics.IMAGE] == (m.IMAGE, 2)
    assert found[topics.GT_2D] == (m.DETECTION_2D_ARRAY, 2)
    assert found[topics.GT_3D] == (m.DETECTION_3D_ARRAY, 2)
    assert found[topics.CAMERA_INFO][0] == m.CAMERA_INFO


def test_kitti_bag_reproduces_calib_projection_and_data(kitti_bag):
    path, _ = kitti_bag
    root = shared_data('kitti_object', 'training')
    msgs = list(iterate_messages(path))
    tfs = [buffer_from([msg]) for topic, _, msg in msgs if topic == topics.TF_STATIC]
    infos = [msg for topic, _, msg in msgs if topic == topics.CAMERA_INFO]
    clouds = [msg for topic, _, msg in msgs if topic == topics.POINTS]
    gts = [msg for topic, _, msg in msgs if topic == topics.GT_2D]
    for name, info, cloud, gt, tf in zip(['000001', '000134'], infos, clouds, gts, tfs):
        from aiat_perception.msg_conversions import pointcloud2_to_array
        points = read_velodyne(root / 'velodyne' / f'{name}.bin')
        cloud_arr = pointcloud2_to_array(cloud)
        np.testing.assert_array_equal(cloud_arr['x'], points[:, 0])
        np.testing.assert_array_equal(cloud_arr['intensity'], points[:, 3])
        calib = KittiCalibration.read(root / 'calib' / f'{name}.txt')
        front = points[points[:, 0] > 5][:2000, :3]
        expected, _ = calib.project_velo(front)
        P = projection_from_bag(info, tf)
        uvw = np.hstack([front, np.ones((len(front), 1))]) @ P.T
        got = uvw[:, :2] / uvw[:, 2:]
        assert np.abs(got - expected).max() < 0.05, 'CameraInfo.P with /tf_static must reproduce the calib'
        boxes, classes, _ = m.boxes_2d(gt)
        labels = read_label(root / 'label_2' / f'{name}.txt')
        assert classes == [o.type for o in labels]
        np.testing.assert_allclose(boxes, [o.bbox for o in labels], atol=1e-9)


def test_kitti_bag_opens_with_the_mcap_reader(kitti_bag):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory
    path, _ = kitti_bag
    (mcap_file,) = path.glob('*.mcap')
    with open(mcap_file, 'rb') as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        seen = {}
        for schema, channel, message, decoded in reader.iter_decoded_messages():
            seen[channel.topic] = schema.name
            if channel.topic == topics.GT_3D:
                assert decoded.detections[0].results[0].hypothesis.class_id
            if channel.topic == topics.CAMERA_INFO:
                assert len(decoded.p) == 12 and decoded.width in (1224, 1242)   # 000134 is 1224 px wide
    assert seen[topics.IMAGE] == 'sensor_msgs/msg/Image'
    assert seen[topics.GT_2D] == 'vision_msgs/msg/Detection2DArray'


def test_kitti_compressed_sqlite3(tmp_path):
    out = tmp_path / 'bag'
    convert_kitti(shared_data('kitti_object'), out, compressed=True, storage='sqlite3', frames=['000134'])
    assert list(out.glob('*.db3'))
    from aiat_perception.msg_conversions import compressed_image_to_numpy
    (msg,) = [msg for t, _, msg in iterate_messages(out, [topics.COMPRESSED_IMAGE])]
    image, _ = compressed_image_to_numpy(msg)
    import cv2
    original = cv2.imread(str(shared_data('kitti_object', 'training', 'image_2', '000134.png')), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(image, original)   # PNG: lossless


def test_ros1_leg_bag_converts_and_keeps_label_pairing(tmp_path):
    src = shared_data('laser_scans', 'leg_tracker_positive_2_extracted.bag')
    out = convert_ros1(src, tmp_path / 'leg')
    found = bag_topics(out)
    assert found[topics.LEG_SCAN] == ('sensor_msgs/msg/LaserScan', 83)
    before = [(len(a.poses), len(b.ranges)) for a, b in paired_messages(src, topics.GT_LEGS, topics.LEG_SCAN)]
    after = [(len(a.poses), len(b.ranges)) for a, b in paired_messages(out, topics.GT_LEGS, topics.LEG_SCAN)]
    assert after == before and len(after) == 83
