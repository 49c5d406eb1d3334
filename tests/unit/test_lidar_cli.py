"""``aiat-lidar`` on real files: KITTI .bin, the same points as .npy and .pcd, BEV pictures with
ground truth, and detect-scan over the ROS 1 leg bag and a ROS 2 bag written here."""
from __future__ import annotations

import importlib.util
import json

import cv2
import numpy as np

from aiat_perception.assets import shared_data
from aiat_perception.cli.lidar import main
from aiat_perception.kitti import read_velodyne


def run(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_detect_json_for_bin_npy_and_pcd(tmp_path, capsys):
    kitti = shared_data('kitti_object', 'training')
    source = kitti / 'velodyne' / '000134.bin'
    points = read_velodyne(source)
    npy = tmp_path / 'cloud.npy'
    np.save(npy, points)
    code, out, _ = run(capsys, 'detect', source, npy, '--json')
    assert code == 0
    files = json.loads(out)['files']
    a, b = files[str(source)], files[str(npy)]
    assert a['detections'] == b['detections'] and a['frame_id'] == 'velodyne' and a['points'] == len(points)
    cars = [d for d in a['detections'] if d['class'] == 'car']
    assert cars and set(cars[0]) >= {'class', 'score', 'center', 'size', 'yaw', 'n_points', 'frame_id'}
    assert len(cars[0]['center']) == 3 and len(cars[0]['size']) == 3
    pcd = tmp_path / 'cloud.pcd'
    if importlib.util.find_spec('pypcd4') is not None:
        from pypcd4 import PointCloud
        PointCloud.from_xyzi_points(points).save(str(pcd))
        code, out, _ = run(capsys, 'detect', pcd, '--json')
        assert code == 0
        got = json.loads(out)['files'][str(pcd)]['detections']
        assert [d['class'] for d in got] == [d['class'] for d in a['detections']]
    else:   # the vehicle environments: the optional reader is missing, and says so
        pcd.write_text('not read')
        code, out, err = run(capsys, 'detect', pcd)
        assert code == 1 and 'pip install pypcd4' in err


def test_bev_picture_with_ground_truth(tmp_path, capsys):
    kitti = shared_data('kitti_object', 'training')
    code, out, _ = run(capsys, 'detect', kitti / 'velodyne' / '000134.bin', '--bev-png', tmp_path,
                       '--kitti-labels', kitti / 'label_2', '--kitti-calib', kitti / 'calib')
    assert code == 0 and 'car' in out
    img = cv2.imread(str(tmp_path / '000134_bev.png'))
    assert img is not None and img.shape[0] > 400
    bare = tmp_path / 'bare'
    assert run(capsys, 'detect', kitti / 'velodyne' / '000134.bin', '--bev-png', bare)[0] == 0
    without = cv2.imread(str(bare / '000134_bev.png'))
    changed = np.any(img != without, axis=2)
    assert np.count_nonzero(changed) > 300          # ground-truth outlines (and detections outside the labels faint)


def test_detect_errors(tmp_path, capsys):
    code, _, err = run(capsys, 'detect', tmp_path / 'missing.bin')
    assert code == 1 and 'no such file' in err
    bad = tmp_path / 'odd.bin'
    bad.write_bytes(b'\0' * 10)
    code, _, err = run(capsys, 'detect', bad)
    assert code == 1 and 'whole number' in err
    code, _, err = run(capsys, 'detect', bad, '--set', 'cluster_tolerance=-3')
    assert code == 2 and 'cluster_tolerance' in err


def test_detect_scan_on_ros1_and_ros2_bags(tmp_path, capsys):
    bag = shared_data('laser_scans', 'leg_tracker_positive_2_extracted.bag')
    code, out, _ = run(capsys, 'detect-scan', bag, '--topic', '/training_scan', '--json')
    assert code == 0
    doc = json.loads(out)
    assert len(doc['scans']) == 83 and doc['scans'][0]['frame_id'] == 'right_laser'
    assert sum(d['class'] == 'person' for s in doc['scans'] for d in s['detections']) > 80

    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore
    store = get_typestore(Stores.ROS2_HUMBLE)
    LaserScan, Header, Time = (store.types[t] for t in ('sensor_msgs/msg/LaserScan', 'std_msgs/msg/Header',
                                                        'builtin_interfaces/msg/Time'))
    angles = np.linspace(-2.0, 2.0, 1081)
    ranges = np.full(1081, np.nan, np.float32)
    for cx, cy in ((2.0, 0.15), (2.0, -0.15)):          # two legs
        d = np.hypot(2.0 * np.cos(angles) - cx, 2.0 * np.sin(angles) - cy)
        ranges[d < 0.06] = 1.95
    path = tmp_path / 'ros2_bag'
    with Writer(path, version=8) as writer:
        conn = writer.add_connection('/scan', LaserScan.__msgtype__, typestore=store)
        msg = LaserScan(Header(Time(1, 0), 'laser'), -2.0, 2.0, float(4.0 / 1080), 0.0, 0.025, 0.02, 30.0,
                        ranges, np.zeros(0, np.float32))
        writer.write(conn, 1, store.serialize_cdr(msg, LaserScan.__msgtype__))
    code, out, _ = run(capsys, 'detect-scan', path, '--json', '--set', 'background_scans=0')
    assert code == 0
    dets = json.loads(out)['scans'][0]['detections']
    assert [d['class'] for d in dets].count('person') == 1 and dets[0]['frame_id'] == 'laser'
    code, _, err = run(capsys, 'detect-scan', path, '--topic', '/none')
    assert code == 2 and 'no topic /none' in err
