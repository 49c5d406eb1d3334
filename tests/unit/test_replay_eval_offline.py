"""aiat-eval run --offline on the real KITTI frames and the real (converted ROS 1) leg bag: report
files, the figures against the existing scorers, criteria exit codes and baseline differences."""
from __future__ import annotations

import json

import pytest

from aiat_perception.assets import shared_data
from aiat_training.replay_eval import cli
from aiat_training.replay_eval.scoring import bev_ap_r40


@pytest.fixture(scope='module')
def kitti_run(tmp_path_factory):
    root = tmp_path_factory.mktemp('kitti_eval')
    assert cli.main(['convert', 'kitti', str(shared_data('kitti_object')), '--out', str(root / 'bag')]) == 0
    assert cli.main(['run', str(root / 'bag'), '--offline', '--out', str(root / 'report')]) == 0
    return root


def test_kitti_report_files_and_schema(kitti_run):
    report = json.loads((kitti_run / 'report' / 'report.json').read_text())
    assert report['schema_version'] == 1 and report['mode'] == 'offline' and report['verdict'] == 'no criteria'
    cam, lidar = report['summary']['camera'], report['summary']['lidar']
    assert cam['frames'] == cam['evaluated'] == 2 and cam['skipped_no_gt'] == 0
    assert 0.0 <= cam['map_50'] <= 1.0 and 0.0 <= cam['map_50_95'] <= cam['map_50']
    assert set(lidar['per_class']) == {'car', 'pedestrian', 'cyclist'}
    assert lidar['per_class']['car']['bev_iou_threshold'] == 0.7
    assert lidar['per_class']['pedestrian']['ground_truth'] == 7
    assert any('smoke test' in n for n in report['notes'])
    frames = [json.loads(line) for line in (kitti_run / 'report' / 'frames.jsonl').read_text().splitlines()]
    assert sorted((f['sensor'], f['index']) for f in frames) == [('camera', 0), ('camera', 1), ('fusion', 0), ('fusion', 1),
                                                                 ('lidar', 0), ('lidar', 1)]
    html = (kitti_run / 'report' / 'report.html').read_text()
    assert 'smoke test' in html and html.count('data:image/png;base64') >= 4


def test_criteria_fail_exits_1_and_names_the_criterion(kitti_run, tmp_path, capsys):
    rules = tmp_path / 'criteria.yaml'
    rules.write_text('min_ap_50: {person: 0.99}\nmax_latency_p99_ms: 100000\n')
    code = cli.main(['run', str(kitti_run / 'bag'), '--offline', '--out', str(tmp_path / 'r'), '--criteria', str(rules),
                     '--baseline', str(kitti_run / 'report' / 'report.json'), '--no-html'])
    out = capsys.readouterr().out
    assert code == 1
    assert 'FAILED min_ap_50.person' in out and 'max_latency' not in out.split('FAILED', 1)[1]
    assert 'differences against' in out and 'latency_ms' in out   # timings differ run to run; scores do not
    assert 'map_50:' not in out
    report = json.loads((tmp_path / 'r' / 'report.json').read_text())
    assert report['verdict'] == 'fail' and report['failed'][0].startswith('min_ap_50.person')


def test_bad_criteria_file_is_one_line(tmp_path, capsys):
    rules = tmp_path / 'c.yaml'
    rules.write_text('min_mAP: 0.5\n')
    assert cli.main(['run', str(tmp_path / 'nobag'), '--offline', '--out', str(tmp_path / 'r'), '--criteria', str(rules)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count('\n') == 0 and "unknown criterion 'min_mAP'" in err and str(rules) in err


def test_leg_bag_converted_and_scored_like_the_ros1_original(tmp_path, capsys):
    from aiat_perception.lidar.evaluate import score_leg_bag
    from aiat_training.replay_eval.offline import scan_detector
    src = shared_data('laser_scans', 'leg_tracker_positive_2_extracted.bag')
    assert cli.main(['convert', 'ros1', str(src), '--out', str(tmp_path / 'leg')]) == 0
    assert cli.main(['run', str(tmp_path / 'leg'), '--offline', '--out', str(tmp_path / 'r'), '--no-html']) == 0
    legs = json.loads((tmp_path / 'r' / 'report.json').read_text())['summary']['scan']['legs']
    expected = score_leg_bag(src, scan_detector()).summary()
    assert legs['scans'] == 83 and legs['leg_recall'] == expected['leg_recall'] > 0.5
    assert legs['person_found'] == expected['person_found']


def test_bev_ap_r40_definition():
    # 2 ground truths; detections by score: TP, FP, TP -> precision 1, 0.5, 0.667 at recall 0.5, 0.5, 1
    ap, recall, precision = bev_ap_r40([(0.9, True), (0.8, False), (0.7, True)], 2)
    # recall points 1/40..0.5 (20 of them) get max precision 1.0; 0.525..1 (20) get 0.667
    assert ap == pytest.approx((20 * 1.0 + 20 * (2 / 3)) / 40, abs=1e-6)
    assert bev_ap_r40([], 3)[0] == 0.0 and bev_ap_r40([(0.5, False)], 0)[0] is None


def test_cli_bad_bag_is_one_line_exit_2(tmp_path, capsys):
    assert cli.main(['run', str(tmp_path / 'nobag'), '--offline', '--out', str(tmp_path / 'r')]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f'aiat-eval: {tmp_path / "nobag"}: no such bag'


def test_no_nan_reaches_the_report():
    from aiat_training.replay_eval.evaluate import finite_or_none
    assert finite_or_none({'a': float('nan'), 'b': [1.0, float('inf')], 'c': {'d': 2}}) == \
        {'a': None, 'b': [1.0, None], 'c': {'d': 2}}


def test_graph_chooses_the_cores_and_names_what_it_cannot_run(kitti_run, tmp_path, capsys):
    bag = str(kitti_run / 'bag')
    assert cli.main(['run', bag, '--offline', '--graph', 'lidar_detector', '--out', str(tmp_path / 'lidar'),
                     '--no-html']) == 0
    report = json.loads((tmp_path / 'lidar' / 'report.json').read_text())
    assert set(report['summary']) == {'lidar'} and any('camera was not evaluated' in n for n in report['notes'])
    full = json.loads((kitti_run / 'report' / 'report.json').read_text())['summary']['lidar']
    assert report['summary']['lidar']['per_class'] == full['per_class']   # DontCare regions still apply
    capsys.readouterr()
    assert cli.main(['run', bag, '--offline', '--graph', 'scan_detector', '--out', str(tmp_path / 'x')]) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and bag in err and 'scan_detector needs a scan topic' in err
    assert cli.main(['run', bag, '--graph', 'radar_detector', '--out', str(tmp_path / 'y')]) == 2
    assert 'unknown graph' in capsys.readouterr().err


def test_kitti_fusion_scored_against_3d_ground_truth_with_distance_errors(kitti_run):
    report = json.loads((kitti_run / 'report' / 'report.json').read_text())
    fusion = report['summary']['fusion']
    assert fusion['frames'] == fusion['evaluated'] == 2
    assert set(fusion['per_class']) == {'car', 'pedestrian', 'cyclist'}
    assert fusion['per_class']['pedestrian']['ground_truth'] == 7
    assert fusion['center_distance_recall']['pedestrian/all']['ground_truth'] == 7
    dist = fusion['distance_error']
    assert dist['matched'] >= 3 and dist['matched'] == sum(v['matched'] for v in dist['per_range'].values())
    assert dist['median_abs_m'] <= 1.0          # the fusion core's own KITTI acceptance: median <= 0.5 m on 000134
    frames = [json.loads(line) for line in (kitti_run / 'report' / 'frames.jsonl').read_text().splitlines()]
    fused = {f['index']: f for f in frames if f['sensor'] == 'fusion'}
    assert sorted(fused) == [0, 1]
    for f in fused.values():
        for e in f['distance_errors']:
            assert e['error'] == pytest.approx(e['distance'] - e['true_distance'], abs=2e-3)
    html = (kitti_run / 'report' / 'report.html').read_text()
    assert 'Fusion (fused boxes' in html and 'Distance error' in html


def test_replay_fusion_reproduces_the_fusion_core_on_the_kitti_files(kitti_run):
    """The bag path (image decoded from the bag, CameraInfo P2 in the rectified frame, /tf_static)
    gives the same fused distances as the fusion core run on the KITTI files (P2 with R0_rect,
    Tr_velo_to_cam): a rotation of the camera frame keeps distances."""
    from aiat_perception.fusion.kitti_frame import KittiFrame, run_frame
    from aiat_training.replay_eval import offline
    from aiat_training.replay_eval.fusion_frames import FUSED_CLASS
    root = shared_data('kitti_object', 'training')
    frame = KittiFrame.read(root / 'image_2' / '000134.png', root / 'velodyne' / '000134.bin',
                            root / 'calib' / '000134.txt')
    direct = run_frame(frame, offline.camera_detector(), offline.lidar_detector())
    expected = sorted((o.class_name, float(o.distance)) for o in direct.result.objects if o.class_name in FUSED_CLASS)
    frames = [json.loads(line) for line in (kitti_run / 'report' / 'frames.jsonl').read_text().splitlines()]
    (replayed,) = [f for f in frames if f['sensor'] == 'fusion' and f['index'] == 1]    # 000134
    got = sorted((o['class'], o['distance']) for o in replayed['fused'])
    assert [c for c, _ in got] == [c for c, _ in expected] and len(got) >= 5
    # the extrinsic goes through a quaternion on /tf_static and frames.jsonl rounds to the millimetre
    assert [d for _, d in got] == pytest.approx([d for _, d in expected], abs=0.01)


def test_fusion_criteria_fail_and_name_themselves(kitti_run, tmp_path, capsys):
    rules = tmp_path / 'criteria.yaml'
    rules.write_text('min_fused_bev_ap: {car: 0.99}\nmax_fused_distance_error_m: 0.001\n')
    assert cli.main(['run', str(kitti_run / 'bag'), '--offline', '--graph', 'fusion', '--out', str(tmp_path / 'r'),
                     '--no-html', '--criteria', str(rules)]) == 1
    out = capsys.readouterr().out
    assert 'FAILED min_fused_bev_ap.car: 0.2500 < 0.99' in out and 'FAILED max_fused_distance_error_m:' in out
    rules.write_text('max_fused_distance_error_m: {car: 1}\n')
    assert cli.main(['run', str(kitti_run / 'bag'), '--offline', '--out', str(tmp_path / 's'), '--criteria', str(rules)]) == 2
