"""Bad bags give one line naming the bag and the problem: missing, truncated, corrupt, unknown
storage, missing topics, wrong message types, no ground truth."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from aiat_perception.replay import messages as m
from aiat_perception.replay import topics
from aiat_perception.replay.bag_input import ReplayError, bag_inventory, iterate, select_streams
from aiat_perception.replay.bag_writer import BagWriteError, BagWriter


def _bag(path, frames=40, with_gt=True, image_type=m.IMAGE, storage='mcap'):
    rng = np.random.default_rng(0)
    with BagWriter(path, storage) as bag:
        for i in range(frames):
            ns = 10**18 + i * 33_000_000
            img = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)   # noise: does not compress
            if image_type == m.IMAGE:
                bag.write(topics.IMAGE, m.IMAGE, m.image(img, 'bgr8', ns, 'cam'), ns)
            else:
                bag.write(topics.IMAGE, m.LASER_SCAN, m.laser_scan(np.ones(10), 0.0, 0.1, 0.1, 10.0, ns, 'cam'), ns)
            if with_gt:
                bag.write(topics.GT_2D, m.DETECTION_2D_ARRAY,
                          m.detection_2d_array([(10, 10, 50, 60)], ['person'], None, ns, 'cam'), ns)
    return path


def _read_all(path):
    inventory = bag_inventory(path)
    streams = select_streams(path, inventory)
    return sum(1 for _ in iterate(path, streams.topics()))


def _one_line(exc_info, *words):
    text = str(exc_info.value)
    assert '\n' not in text
    for w in words:
        assert w in text, text
    return text


def test_a_good_bag_reads(tmp_path):
    assert _read_all(_bag(tmp_path / 'good')) == 80
    assert _read_all(_bag(tmp_path / 'good_db', storage='sqlite3')) == 80


def test_missing_bag(tmp_path):
    with pytest.raises(ReplayError) as e:
        bag_inventory(tmp_path / 'nothing')
    _one_line(e, str(tmp_path / 'nothing'), 'no such bag')


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_truncated_bag(tmp_path, storage):
    path = _bag(tmp_path / 'bag', storage=storage)
    (data,) = [p for p in path.iterdir() if p.suffix in ('.mcap', '.db3')]
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    with pytest.raises(ReplayError) as e:
        _read_all(path)
    _one_line(e, str(path))


def test_corrupt_bag(tmp_path):
    path = _bag(tmp_path / 'bag')
    (data,) = path.glob('*.mcap')
    raw = bytearray(data.read_bytes())
    raw[40:4136] = b"\xff" * 4096   # record headers after the magic and header record: structure, not pixels
    data.write_bytes(bytes(raw))
    with pytest.raises(ReplayError) as e:
        _read_all(path)
    _one_line(e, str(path))


def test_not_a_bag(tmp_path):
    path = tmp_path / 'notes.txt'
    path.write_text('hello')
    with pytest.raises(ReplayError) as e:
        bag_inventory(path)
    _one_line(e, str(path))


def test_unknown_storage(tmp_path):
    path = _bag(tmp_path / 'bag', frames=2)
    meta = path / 'metadata.yaml'
    meta.write_text(meta.read_text().replace('storage_identifier: mcap', 'storage_identifier: rosbag_v9000'))
    with pytest.raises(ReplayError) as e:
        bag_inventory(path)
    _one_line(e, str(path), "unknown storage 'rosbag_v9000'")
    with pytest.raises(BagWriteError) as e:
        BagWriter(tmp_path / 'new', 'parquet')
    _one_line(e, "unknown storage 'parquet'")


def test_missing_topic(tmp_path):
    path = _bag(tmp_path / 'bag', frames=2)
    with pytest.raises(ReplayError) as e:
        select_streams(path, bag_inventory(path), camera='/front/image')
    _one_line(e, str(path), 'no topic /front/image', topics.IMAGE)


def test_wrong_message_type(tmp_path):
    path = _bag(tmp_path / 'bag', frames=2, image_type=m.LASER_SCAN)
    with pytest.raises(ReplayError) as e:
        select_streams(path, bag_inventory(path))
    _one_line(e, str(path), f'topic {topics.IMAGE} is sensor_msgs/msg/LaserScan', 'sensor_msgs/msg/Image')
    good = _bag(tmp_path / 'good', frames=2)
    with pytest.raises(ReplayError) as e:
        select_streams(good, bag_inventory(good), gt_2d=topics.IMAGE)
    _one_line(e, f'topic {topics.IMAGE} is sensor_msgs/msg/Image', 'vision_msgs/msg/Detection2DArray')


def test_no_ground_truth(tmp_path):
    path = _bag(tmp_path / 'bag', frames=2, with_gt=False)
    with pytest.raises(ReplayError) as e:
        select_streams(path, bag_inventory(path))
    _one_line(e, str(path), 'no ground truth', topics.IMAGE)


def test_existing_output_is_not_overwritten(tmp_path):
    path = _bag(tmp_path / 'bag', frames=1)
    with pytest.raises(BagWriteError) as e:
        BagWriter(path)
    _one_line(e, 'already exists')
    shutil.rmtree(path)
