"""The metadata.yaml of the bags we write: by default version 5, the layout ROS 2 Humble's rosbag2
records (and every later distribution reads), with every field Humble's reader takes, of the type it
takes it as; versions 8 and 9 stay rosbags' own. No rosbag2 runs here: these checks read the file as
Humble's reader does (rosbag2_storage's YAML decoder, version-gated fields) and open the bag with rosbags."""
from __future__ import annotations

import pytest
import yaml

from aiat_perception.assets import shared_data
from aiat_perception.replay.bag_writer import BagWriteError, BagWriter
from aiat_perception.replay.kitti_bag import convert_kitti
from aiat_perception.replay.ros1 import convert_ros1

NEWER_THAN_HUMBLE = {'custom_data', 'ros_distro'}          # bag-level keys of versions 6 and 8
QOS_POLICIES = ('history', 'depth', 'reliability', 'durability', 'liveliness')
QOS_DURATIONS = ('deadline', 'lifespan', 'liveliness_lease_duration')


def _info(bag):
    text = (bag / 'metadata.yaml').read_text()
    return text, yaml.safe_load(text)['rosbag2_bagfile_information']


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _check_humble_fields(bag, info):
    """What rosbag2 on Humble reads for a version-5 file, each as the type it converts it to."""
    assert info['version'] == 5
    assert info['storage_identifier'] in ('mcap', 'sqlite3')
    assert _is_int(info['duration']['nanoseconds']) and _is_int(info['starting_time']['nanoseconds_since_epoch'])
    assert _is_int(info['message_count'])
    assert isinstance(info['compression_format'], str) and isinstance(info['compression_mode'], str)
    assert info['relative_file_paths'] and all((bag / p).is_file() for p in info['relative_file_paths'])
    for f in info['files']:
        assert f['path'] in info['relative_file_paths'] and _is_int(f['message_count'])
        assert _is_int(f['starting_time']['nanoseconds_since_epoch']) and _is_int(f['duration']['nanoseconds'])
    assert sum(f['message_count'] for f in info['files']) == info['message_count']
    assert sum(t['message_count'] for t in info['topics_with_message_count']) == info['message_count']
    for topic in info['topics_with_message_count']:
        meta = topic['topic_metadata']
        assert set(meta) == {'name', 'type', 'serialization_format', 'offered_qos_profiles'}
        assert meta['serialization_format'] == 'cdr' and meta['type'].count('/msg/') == 1
        qos = meta['offered_qos_profiles']
        assert isinstance(qos, str)               # version 9 makes it a list: "bad conversion" on Humble
        for profile in yaml.safe_load(qos) or []:
            assert all(_is_int(profile[k]) for k in QOS_POLICIES)      # Humble's numeric policies
            assert all(_is_int(profile[k]['sec']) and _is_int(profile[k]['nsec']) for k in QOS_DURATIONS)
    assert not NEWER_THAN_HUMBLE & set(info)


def _read_back(bag):
    from rosbags.highlevel import AnyReader
    with AnyReader([bag]) as reader:
        return sum(1 for _ in reader.messages())


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_kitti_bag_metadata_is_humbles_version_5(tmp_path, storage):
    bag = tmp_path / 'bag'
    convert_kitti(shared_data('kitti_object'), bag, storage=storage, frames=['000134'])
    text, info = _info(bag)
    _check_humble_fields(bag, info)
    assert not any(line.rstrip().endswith('\\') for line in text.splitlines())   # one line per value
    latched = [t for t in info['topics_with_message_count'] if t['topic_metadata']['name'] == '/tf_static']
    (profile,) = yaml.safe_load(latched[0]['topic_metadata']['offered_qos_profiles'])
    assert profile['durability'] == 1 and profile['reliability'] == 1 and profile['depth'] == 1   # transient local
    assert _read_back(bag) == info['message_count']


def test_converted_ros1_bag_metadata_is_version_5(tmp_path):
    bag = convert_ros1(shared_data('laser_scans', 'leg_tracker_positive_2_extracted.bag'), tmp_path / 'leg')
    _, info = _info(bag)
    _check_humble_fields(bag, info)
    assert _read_back(bag) == info['message_count'] == 249


@pytest.mark.parametrize('version', [8, 9])
def test_versions_8_and_9_are_rosbags_own(tmp_path, version):
    bag = tmp_path / 'bag'
    convert_kitti(shared_data('kitti_object'), bag, frames=['000134'], version=version)
    _, info = _info(bag)
    assert info['version'] == version and 'ros_distro' in info
    meta = info['topics_with_message_count'][0]['topic_metadata']
    assert meta['type_description_hash'].startswith('RIHS01_')
    assert isinstance(meta['offered_qos_profiles'], str if version == 8 else list)
    assert _read_back(bag) == info['message_count']


def test_a_version_we_do_not_write_is_refused_naming_the_bag(tmp_path):
    with pytest.raises(BagWriteError, match=r'bag.*version 7.*choose 5, 8, 9'):
        BagWriter(tmp_path / 'bag', version=7)
    assert not (tmp_path / 'bag').exists()
