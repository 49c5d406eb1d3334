"""``aiat-eval``: evaluate recorded drives.

  aiat-eval convert kitti DIR --out BAG [--compressed] [--storage mcap|sqlite3] [--rosbag2-version 5|8|9]
  aiat-eval convert ros1 BAG.bag [--out BAG]
  aiat-eval run BAG --offline --out DIR [--criteria YAML] [--baseline OTHER/report.json]
  aiat-eval run BAG --out DIR [--graph auto|camera_detector,lidar_detector,scan_detector]
                  [--rate-scale X | --capacity-multiple X | --max-rate]     (live: the node graph over DDS)

Exit codes: 0 pass, 1 a criterion failed, 2 the bag or an option is unusable (one line on stderr
naming the bag and the problem).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='aiat-eval', description='Evaluate recorded drives (rosbag2 / ROS 1 bags).')
    sub = p.add_subparsers(dest='command', required=True)
    conv = sub.add_parser('convert', help='make a rosbag2 bag from a KITTI directory or a ROS 1 bag')
    csub = conv.add_subparsers(dest='source', required=True)
    k = csub.add_parser('kitti', help='KITTI object directory -> bag')
    k.add_argument('dir', type=Path)
    k.add_argument('--out', type=Path, required=True)
    k.add_argument('--compressed', action='store_true', help='images as CompressedImage (PNG) instead of Image')
    k.add_argument('--storage', default='mcap', choices=('mcap', 'sqlite3'))
    k.add_argument('--rate', type=float, default=10.0, help='frame rate the stamps are spaced at (Hz)')
    k.add_argument('--rosbag2-version', type=int, default=5, choices=(5, 8, 9),
                   help="metadata.yaml version: 5 (Humble's; read by Humble and every later distribution), 8 or 9")
    r1 = csub.add_parser('ros1', help='ROS 1 bag -> rosbag2 (rosbags converter)')
    r1.add_argument('bag', type=Path)
    r1.add_argument('--out', type=Path)
    r1.add_argument('--storage', default='mcap', choices=('mcap', 'sqlite3'))
    r1.add_argument('--rosbag2-version', type=int, default=5, choices=(5, 8, 9),
                    help="metadata.yaml version: 5 (Humble's; read by Humble and every later distribution), 8 or 9")
    run = sub.add_parser('run', help='evaluate a bag')
    run.add_argument('bag', type=Path)
    run.add_argument('--out', type=Path, required=True, help='report directory')
    run.add_argument('--offline', action='store_true', help='through the ROS-free cores (default: live over DDS)')
    run.add_argument('--graph', default='auto',
                     help='the detectors to evaluate: auto (every sensor of the bag with ground truth) or camera_detector, '
                          'lidar_detector, scan_detector, several separated by commas (offline: their cores; live: '
                          'their node processes)')
    run.add_argument('--bundle', type=Path, help='camera model bundle (default: pretrained COCO NanoDet)')
    run.add_argument('--score-threshold', type=float, help="camera detector score threshold (default: the bundle's)")
    run.add_argument('--lidar-params', type=Path, help='lidar_detector parameter YAML')
    run.add_argument('--scan-params', type=Path, help='scan_detector parameter YAML')
    run.add_argument('--fusion-params', type=Path, help='fusion node parameter file (default config/fusion.yaml), '
                                                         'read by the offline core and the live node alike')
    run.add_argument('--image-topic'), run.add_argument('--points-topic'), run.add_argument('--scan-topic')
    run.add_argument('--gt-2d'), run.add_argument('--gt-3d'), run.add_argument('--gt-scan')
    run.add_argument('--tolerance-ms', type=float, default=75.0, help='ground truth within this of a frame stamp')
    run.add_argument('--criteria', type=Path, help='pass/fail criteria YAML (exit 1 on failure)')
    run.add_argument('--baseline', type=Path, help='another report.json: print the differences')
    run.add_argument('--rate-scale', type=float, default=1.0, help='live: play at this multiple of the recorded rate')
    run.add_argument('--capacity-multiple', type=float,
                     help='live: play at this multiple of the detector\'s measured capacity (fixed rate)')
    run.add_argument('--clock', action='store_true', help='live: also publish /clock from the bag stamps')
    run.add_argument('--max-rate', action='store_true', help='live: search the highest rate with <= 5%% drops')
    run.add_argument('--max-rate-iterations', type=int, default=6, help='live: bisection steps of --max-rate')
    run.add_argument('--max-rate-frames', type=int, default=30, help='live: frames per --max-rate trial (at least)')
    run.add_argument('--no-html', action='store_true')
    return p


def _fail(message: str) -> int:
    print('aiat-eval: ' + ' '.join(str(message).split()), file=sys.stderr)
    return 2


def cmd_convert(args) -> int:
    if args.source == 'kitti':
        from aiat_perception.replay.kitti_bag import convert_kitti
        counts = convert_kitti(args.dir, args.out, compressed=args.compressed, storage=args.storage, rate_hz=args.rate,
                               version=args.rosbag2_version)
        print(json.dumps({'bag': str(args.out), 'messages': counts}))
    else:
        from aiat_perception.replay.ros1 import convert_ros1
        out = convert_ros1(args.bag, args.out, storage=args.storage, version=args.rosbag2_version)
        from aiat_perception.replay.bag_input import bag_inventory
        print(json.dumps({'bag': str(out), 'topics': {t: {'type': k, 'count': n} for t, (k, n) in bag_inventory(out).items()}}))
    return 0


def cmd_run(args) -> int:
    from aiat_perception.replay.bag_input import bag_inventory, select_streams
    from aiat_training.replay_eval import criteria as crit
    from aiat_training.replay_eval.evaluate import evaluate
    from aiat_training.replay_eval.report import write_html, write_json
    rules = crit.load_criteria(args.criteria) if args.criteria else None
    baseline = None
    if args.baseline:
        try:
            baseline = json.loads(args.baseline.read_text())['summary']
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise crit.CriteriaError(f'{args.baseline}: not a report.json ({exc})') from exc
    inventory = bag_inventory(args.bag)
    streams = select_streams(args.bag, inventory, args.image_topic, args.points_topic, args.scan_topic,
                             args.gt_2d, args.gt_3d, args.gt_scan)
    from aiat_training.replay_eval.graphs import graph_sensors, streams_for
    sensors = graph_sensors(args.graph, streams, args.bag)
    streams = streams_for(streams, sensors)
    tolerance = int(args.tolerance_ms * 1e6)
    extra = {}
    if args.offline:
        from aiat_training.replay_eval import offline
        cam = offline.camera_detector(args.bundle, args.score_threshold) if streams.camera else None
        fusion = offline.fusion_config(args.fusion_params) if 'fusion' in sensors else None
        collected = offline.collect(
            args.bag, streams,
            detect_camera=(lambda img, enc: cam.detect_one(img, enc)) if cam else None,
            detect_points=offline.lidar_detector(args.lidar_params) if streams.points else None,
            detect_scan=offline.scan_detector(args.scan_params) if streams.scan else None,
            fuse=offline.fusion_core(fusion[0]) if fusion else None,
            fusion_tolerance_ns=fusion[1] if fusion else 0)
        if cam:
            collected.class_names = list(cam.classes)
        mode = 'offline'
    else:
        from aiat_training.replay_eval import live
        collected, extra = live.run_live(args, streams, sensors)
        mode = 'live'
    report, records = evaluate(collected, mode, tolerance, extra=extra)
    failed = crit.check(rules, report['summary']) if rules else []
    report['criteria'] = rules
    report['failed'] = failed
    report['verdict'] = 'fail' if failed else ('pass' if rules else 'no criteria')
    write_json(args.out, report, records)
    if not args.no_html:
        write_html(args.out, report, records, collected)
    _print_summary(report)
    if baseline is not None:
        diff = crit.differences(baseline, report['summary'])
        print(f'differences against {args.baseline} (baseline -> this run):')
        for line in diff or ['(none)']:
            print('  ' + line)
    for line in failed:
        print(f'FAILED {line}')
    return 1 if failed else 0


def _print_summary(report) -> None:
    s = report['summary']
    for note in report['notes']:
        print('note: ' + note)
    if s.get('camera'):
        c = s['camera']
        print(f"camera: mAP@0.5 {c['map_50']} mAP@[.5:.95] {c['map_50_95']} frames {c['evaluated']}/{c['frames']} "
              f"latency p99 {c['latency_ms']['p99']} ms drop rate {c['drop_rate']}")
    if s.get('lidar'):
        c = s['lidar']
        print(f"lidar: BEV mAP|R40 {c['bev_map_r40']} "
              + ' '.join(f"{k} {v['bev_ap_r40']}" for k, v in c['per_class'].items())
              + f" frames {c['evaluated']}/{c['frames']} latency p99 {c['latency_ms']['p99']} ms")
    if s.get('fusion'):
        c = s['fusion']
        d = c.get('distance_error') or {}
        print(f"fusion: BEV mAP|R40 {c['bev_map_r40']} "
              + ' '.join(f"{k} {v['bev_ap_r40']}" for k, v in c['per_class'].items())
              + f" distance error median {d.get('median_abs_m')} m over {d.get('matched')} matched objects"
              + f" frames {c['evaluated']}/{c['frames']}")
    mr = (report.get('live') or {}).get('max_rate')
    if mr:
        lat = mr.get('latency_ms_at_max') or {}
        print(f"max rate ({mr['criterion']}): {mr['max_rate_hz']} Hz, drop rate {mr['drop_rate_at_max']}, "
              f"latency p50 {lat.get('p50')} ms p99 {lat.get('p99')} ms")
    if s.get('scan'):
        c = s['scan']
        print(f"scan: {json.dumps(c.get('legs') or c.get('persons'))} frames {c['evaluated']}/{c['frames']}")


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from aiat_perception.replay.bag_input import ReplayError
    from aiat_perception.replay.bag_writer import BagWriteError
    from aiat_perception.replay.kitti_bag import ConvertError
    from aiat_perception.replay.ros1 import Ros1ConvertError
    from aiat_training.replay_eval.criteria import CriteriaError
    try:
        return cmd_convert(args) if args.command == 'convert' else cmd_run(args)
    except (ReplayError, BagWriteError, ConvertError, Ros1ConvertError, CriteriaError) as exc:
        return _fail(str(exc))


if __name__ == '__main__':
    sys.exit(main())
