"""Bag reading over rosbags on the real ROS 1 leg-tracker bags, and a ROS 2 bag written here."""
from __future__ import annotations

import numpy as np
import pytest

from aiat_perception.assets import shared_data
from aiat_perception.bag_reading import BagError, bag_topics, iterate_messages, paired_messages


def leg_bag(n=2):
    return shared_data('laser_scans', f'leg_tracker_positive_{n}_extracted.bag')


def test_topics_and_messages_of_a_ros1_bag():
    topics = bag_topics(leg_bag())
    assert topics['/training_scan'] == ('sensor_msgs/msg/LaserScan', 83)
    assert topics['/leg_cluster_positions'][1] == 83
    scans = [m for t, _, m in iterate_messages(leg_bag(), ['/training_scan'])]
    assert len(scans) == 83 and len(scans[0].ranges) == 768 and scans[0].header.frame_id == 'right_laser'


def test_labels_pair_with_the_next_scan():
    pairs = list(paired_messages(leg_bag(), '/leg_cluster_positions', '/training_scan'))
    assert len(pairs) == 83
    label, scan = pairs[0]
    assert label.header.stamp.sec == 0 and len(scan.ranges) == 768
    legs = np.array([[p.position.x, p.position.y] for lab, _ in pairs for p in lab.poses])
    assert 1.0 < len(legs) / len(pairs) < 2.0


def test_missing_bag_and_topic_are_clear_errors(tmp_path):
    with pytest.raises(BagError, match='no such bag'):
        list(iterate_messages(tmp_path / 'none.bag'))
    with pytest.raises(BagError, match='no topic /nope'):
        list(iterate_messages(leg_bag(), ['/nope']))
    bad = tmp_path / 'bad.bag'
    bad.write_bytes(b'not a bag at all')
    with pytest.raises(BagError):
        list(iterate_messages(bad))


def test_ros2_bag_written_with_rosbags_reads_back(tmp_path):
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore
    store = get_typestore(Stores.ROS2_HUMBLE)
    LaserScan = store.types['sensor_msgs/msg/LaserScan']
    Header = store.types['std_msgs/msg/Header']
    Time = store.types['builtin_interfaces/msg/Time']
    path = tmp_path / 'scan_bag'
    with Writer(path, version=8) as writer:
        conn = writer.add_connection('/scan', LaserScan.__msgtype__, typestore=store)
        for i in range(3):
            msg = LaserScan(Header(Time(i, 0), 'laser'), -1.0, 1.0, 0.5, 0.0, 0.1, 0.1, 30.0,
                            np.full(5, 2.0 + i, np.float32), np.zeros(5, np.float32))
            writer.write(conn, i * 1000, store.serialize_cdr(msg, LaserScan.__msgtype__))
    got = [(t, s, float(m.ranges[0])) for t, s, m in iterate_messages(path, ['/scan'])]
    assert got == [('/scan', 0, 2.0), ('/scan', 1000, 3.0), ('/scan', 2000, 4.0)]
