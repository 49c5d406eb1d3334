"""``aiat-lidar``: the lidar detectors on files, offline.

  aiat-lidar detect FILE... [--json] [--bev-png DIR] [--kitti-labels DIR --kitti-calib DIR] [--params YAML]
      point clouds (.bin KITTI velodyne, .npy, .pcd with the optional pypcd4) -> 3D detections
  aiat-lidar detect-scan BAG --topic /scan [--json] [--params YAML]
      every LaserScan of a ROS 1 or ROS 2 bag -> legs and persons
  aiat-lidar fuse --image IMG --cloud BIN --kitti-calib CALIB [--kitti-labels LABEL] [--json] [--png OUT]
      camera detections (pretrained bundle by default) + lidar -> a distance and 3D position per
      detection (camera frame); with labels, the distance error of every matched object

Parameters come from the detectors' tables, then the ``--params`` file (the nodes' YAML, default
config/lidar_detector.yaml or config/scan_detector.yaml when present), then ``--set name=value``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional

import yaml

REPO_CONFIG = Path(__file__).resolve().parents[2] / 'config'


class CliError(Exception):
    pass


def _params(kind: str, path: Optional[str], sets: List[str]) -> Dict[str, object]:
    from aiat_perception.lidar.params import ParameterError, read_yaml, resolve
    if kind == 'lidar':
        from aiat_perception.lidar.detector import PARAMETERS as table
        node, default = 'lidar_detector', REPO_CONFIG / 'lidar_detector.yaml'
    else:
        from aiat_perception.lidar.scan import SCAN_PARAMETERS as table
        node, default = 'scan_detector', REPO_CONFIG / 'scan_detector.yaml'
    try:
        if path:
            values = read_yaml(path, node, table)
        elif default.is_file():
            values = read_yaml(default, node, table)
        else:
            values = resolve(table)
        overrides = {}
        for item in sets:
            name, sep, text = item.partition('=')
            if not sep:
                raise CliError(f'--set expects name=value, got {item!r}')
            overrides[name.strip()] = yaml.safe_load(text)
        values.update(resolve(table, dict(values, **overrides), '--set'))
    except ParameterError as exc:
        raise CliError(str(exc)) from exc
    return values


def _kitti_truth(path: Path, labels_dir: Optional[str], calib_dir: Optional[str]):
    if not labels_dir and not calib_dir:
        return None
    if not (labels_dir and calib_dir):
        raise CliError('--kitti-labels and --kitti-calib go together')
    from aiat_perception.kitti import KittiCalibration, KittiFormatError, read_label
    from aiat_perception.metrics import kitti_rules
    label, calib = Path(labels_dir) / f'{path.stem}.txt', Path(calib_dir) / f'{path.stem}.txt'
    for f in (label, calib):
        if not f.is_file():
            raise CliError(f'{f}: no such file (labels and calib are found by the point file\'s name)')
    try:
        cal = KittiCalibration.read(calib)
        gts, dontcare = kitti_rules.ground_truth(cal, read_label(label))
    except KittiFormatError as exc:
        raise CliError(str(exc)) from exc
    return cal, gts, dontcare


def cmd_detect(args) -> int:
    from aiat_perception.lidar.bev import render_bev
    from aiat_perception.lidar.detector import PointCloudDetector
    from aiat_perception.lidar.point_files import PointFileError, load_points
    detector = PointCloudDetector(_params('lidar', args.params, args.set))
    out_dir = Path(args.bev_png) if args.bev_png else None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    report = {}
    failed = 0
    for name in args.files:
        path = Path(name)
        try:
            points = load_points(path)
        except PointFileError as exc:
            print(f'error: {exc}', file=sys.stderr)
            report[name] = {'error': str(exc)}
            failed += 1
            continue
        result = detector(points)
        report[name] = {'frame_id': args.frame_id, 'points': int(len(points)),
                        'stage_ms': {k: round(v, 3) for k, v in result.stage_ms.items()},
                        'detections': [d.to_dict(args.frame_id) for d in result.detections]}
        if not args.json:
            print(f'{name}: {len(points)} points, {len(result.detections)} detections, '
                  f'{result.total_ms:.1f} ms ({", ".join(f"{k} {v:.1f}" for k, v in result.stage_ms.items())})')
            for d in result.detections:
                if d.class_name != 'unknown' or args.all:
                    print(f'  {d.class_name:10s} {d.score:.2f}  x {d.center[0]:7.2f} y {d.center[1]:7.2f} '
                          f'z {d.center[2]:6.2f}  l {d.size[0]:5.2f} w {d.size[1]:5.2f} h {d.size[2]:5.2f}  '
                          f'yaw {d.yaw:6.2f}  {d.n_points} points')
        if out_dir:
            truth = _kitti_truth(path, args.kitti_labels, args.kitti_calib)
            gts = truth[1] if truth else ()
            ignored = None
            if truth:
                from aiat_perception.lidar.evaluate import as_object
                from aiat_perception.metrics import kitti_rules
                ignored = kitti_rules.not_counted(truth[0], [as_object(d) for d in result.detections], truth[2])
            extent = (-args.range, args.range, -args.range, args.range) if args.full_view else (-5.0, args.range, -args.range / 2, args.range / 2)
            img = render_bev(points, result.detections, gts, extent, args.pixels_per_m,
                             f'{path.name}: {len(result.detections)} detections', ignored)
            import cv2
            target = out_dir / f'{path.stem}_bev.png'
            cv2.imwrite(str(target), img)
            if not args.json:
                print(f'  BEV picture: {target}')
    if args.json:
        print(json.dumps({'files': report}, indent=1))
    return 1 if failed else 0


def cmd_detect_scan(args) -> int:
    from aiat_perception.bag_reading import BagError, iterate_messages
    from aiat_perception.lidar.evaluate import scan_arrays
    from aiat_perception.lidar.scan import ScanDetector
    detector = ScanDetector(_params('scan', args.params, args.set))
    scans, bad = [], 0
    try:
        for _, stamp, msg in iterate_messages(args.bag, [args.topic]):
            try:
                result = detector(*scan_arrays(msg))
            except (ValueError, AttributeError) as exc:
                bad += 1
                print(f'warning: scan at {stamp} skipped: {exc}', file=sys.stderr)
                continue
            frame = getattr(getattr(msg, 'header', None), 'frame_id', '')
            entry = {'stamp_ns': stamp, 'frame_id': frame,
                     'stage_ms': {k: round(v, 3) for k, v in result.stage_ms.items()},
                     'detections': [d.to_dict(frame) for d in result.detections]}
            scans.append(entry)
            if not args.json:
                kinds = {}
                for d in result.detections:
                    kinds[d.class_name] = kinds.get(d.class_name, 0) + 1
                persons = '; '.join(f'({d.center[0]:.2f}, {d.center[1]:.2f})' for d in result.detections
                                    if d.class_name == 'person')
                print(f'{stamp} {frame}: ' + ', '.join(f'{v} {k}' for k, v in sorted(kinds.items()))
                      + (f'  persons at {persons}' if persons else ''))
    except BagError as exc:
        raise CliError(str(exc)) from exc
    if args.json:
        print(json.dumps({'bag': str(args.bag), 'topic': args.topic, 'skipped': bad, 'scans': scans}, indent=1))
    elif not scans:
        print(f'no scans on {args.topic}', file=sys.stderr)
    return 0


def cmd_fuse(args) -> int:
    from aiat_perception.fusion.config import FusionConfig, FusionConfigError
    from aiat_perception.fusion.kitti_eval import summarize
    from aiat_perception.fusion.kitti_frame import FrameError, KittiFrame, run_frame
    from aiat_perception.inference.bundle import BundleError
    from aiat_perception.inference.detector import Detector
    from aiat_perception.lidar.detector import PointCloudDetector
    try:
        frame = KittiFrame.read(args.image, args.cloud, args.kitti_calib, args.kitti_labels)
    except FrameError as exc:
        raise CliError(str(exc)) from exc
    fusion_values = {}
    for item in args.fusion_set:
        name, sep, text = item.partition('=')
        if not sep:
            raise CliError(f'--fusion-set expects name=value, got {item!r}')
        fusion_values[name.strip()] = yaml.safe_load(text)
    try:
        config = FusionConfig.from_dict(fusion_values, '--fusion-set')
    except FusionConfigError as exc:
        raise CliError(str(exc)) from exc
    if args.score_threshold is not None and not 0.0 <= args.score_threshold <= 1.0:
        raise CliError(f'--score-threshold must be in [0, 1], got {args.score_threshold}')
    if args.bundle:
        bundle = args.bundle
    else:
        from aiat_perception.cli.detect import CliError as DetectCliError
        from aiat_perception.cli.detect import ensure_default_bundle
        try:
            bundle = ensure_default_bundle(quiet=args.json)
        except DetectCliError as exc:
            raise CliError(str(exc)) from exc
    try:
        detector = Detector(bundle, resize=args.resize, score_threshold=args.score_threshold)
    except (BundleError, ValueError, RuntimeError) as exc:
        raise CliError(str(exc)) from exc
    lidar = PointCloudDetector(_params('lidar', args.params, args.set))
    out = run_frame(frame, detector, lidar, config, moderate_only=not args.any_difficulty)
    r = out.result
    fused = {o.detection_index: o for o in r.objects}
    entries = []
    for k, det in enumerate(out.detections.to_list()):
        o = fused.get(k)
        det.update({'index': k, 'distance': None, 'position': None})
        if o is not None:
            det.update({key: value for key, value in o.to_dict().items()
                        if key not in ('detection_index', 'class', 'score', 'box')})
        entries.append(det)
    report = {'image': str(args.image), 'cloud': str(args.cloud), 'frame': 'camera (KITTI reference camera 0: '
              'x right, y down, z forward)', 'points': int(len(frame.points)),
              'detections': entries, 'lidar_detections': [d.to_dict('velodyne') for d in out.lidar_detections],
              'agreement': {'camera_count': r.camera_count, 'confirmed': r.confirmed,
                            'lidar_in_view': r.lidar_in_view, 'lidar_missed': r.lidar_missed,
                            'ious': [round(v, 3) for v in r.ious]},
              'stage_ms': {'camera': round(out.camera_ms, 2), 'lidar': round(out.lidar_ms, 2),
                           **{f'fusion_{k}': round(v, 3) for k, v in r.stage_ms.items()}}}
    summary = None
    if frame.labels is not None:
        summary = summarize(out.errors)
        report['labels'] = {'errors': [e.to_dict() for e in out.errors],
                            'summary': {k: (round(v, 4) if isinstance(v, float) else v) for k, v in summary.items()}}
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(f'{args.image}: {len(entries)} camera detections, {len(out.lidar_detections)} lidar detections, '
              f'{len(r.objects)} with a distance; fusion {r.total_ms:.1f} ms')
        for e in entries:
            where = (f'{e["distance"]:6.2f} m  at ({", ".join(f"{v:.2f}" for v in e["position"])})'
                     if e['distance'] is not None else 'no distance (too few lidar points in the box)')
            print(f'  {e["index"]:2d} {e["class"]:14s} {e["score"]:.2f}  {where}')
        if summary is not None:
            from aiat_perception.fusion.picture import error_table
            print('\n'.join(error_table(out.errors, summary)))
    if args.png:
        import cv2

        from aiat_perception.fusion.picture import error_table, render
        from aiat_perception.metrics.kitti_rules import ground_truth
        gts = ground_truth(frame.calib, frame.labels)[0] if frame.labels is not None else ()
        picture = render(frame.image, frame.points, frame.cam_from_lidar, frame.camera, r, out.detections,
                         out.lidar_detections, gts, error_table(out.errors, summary) if summary else (),
                         f'{frame.name}: fused camera + lidar')
        Path(args.png).parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(args.png), picture):
            raise CliError(f'{args.png}: cannot write the picture there')
        if not args.json:
            print(f'picture: {args.png}')
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='aiat-lidar', description=__doc__.split('\n\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    d = sub.add_parser('detect', help='3D detections in point cloud files (.bin, .npy, .pcd)')
    d.add_argument('files', nargs='+')
    d.add_argument('--json', action='store_true', help='one JSON document: per file, its detections')
    d.add_argument('--bev-png', metavar='DIR', help="write a bird's-eye-view picture per file here")
    d.add_argument('--kitti-labels', metavar='DIR', help='label_2 folder: draw ground truth (with --kitti-calib)')
    d.add_argument('--kitti-calib', metavar='DIR', help='calib folder of those labels')
    d.add_argument('--frame-id', default='velodyne', help='sensor frame named in the output')
    d.add_argument('--range', type=float, default=60.0, help='BEV picture range (m)')
    d.add_argument('--pixels-per-m', type=float, default=10.0)
    d.add_argument('--full-view', action='store_true', help='BEV all around the sensor (default: mostly ahead)')
    d.add_argument('--all', action='store_true', help='also list unknown clusters (text output)')
    s = sub.add_parser('detect-scan', help='legs and persons in every LaserScan of a bag (ROS 1 or 2)')
    s.add_argument('bag')
    s.add_argument('--topic', default='/scan')
    s.add_argument('--json', action='store_true')
    f = sub.add_parser('fuse', help='camera + lidar fusion of one KITTI frame: a distance per camera detection')
    f.add_argument('--image', required=True, help='camera image (KITTI image_2 PNG)')
    f.add_argument('--cloud', required=True, help='point cloud (.bin KITTI velodyne, .npy, .pcd)')
    f.add_argument('--kitti-calib', required=True, metavar='CALIB', help='KITTI calib file of the frame')
    f.add_argument('--kitti-labels', metavar='LABEL', help='KITTI label file: report the distance errors')
    f.add_argument('--any-difficulty', action='store_true',
                   help="with labels: match labels of any difficulty (default: KITTI's moderate ones, the "
                        "real-camera rule)")
    f.add_argument('--json', action='store_true', help='one JSON document')
    f.add_argument('--png', metavar='OUT', help="write the picture (image and bird's-eye view) here")
    f.add_argument('--bundle', help='camera model bundle (default: the pretrained COCO bundle)')
    f.add_argument('--resize', choices=('stretch', 'letterbox', 'keep_aspect'), default='keep_aspect',
                   help='how the image reaches the network (default keep_aspect)')
    f.add_argument('--score-threshold', type=float, help="camera detections' score threshold (default: the bundle's)")
    f.add_argument('--fusion-set', action='append', default=[], metavar='NAME=VALUE',
                   help='a fusion setting (aiat_perception.fusion.config.FusionConfig), e.g. box_shrink=0.5')
    for p in (d, s, f):
        p.add_argument('--params', metavar='YAML', help="the node's parameter file")
        p.add_argument('--set', action='append', default=[], metavar='NAME=VALUE', help='override one parameter')
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {'detect': cmd_detect, 'detect-scan': cmd_detect_scan, 'fuse': cmd_fuse}[args.command](args)
    except CliError as exc:
        print(f'aiat-lidar: error: {exc}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
