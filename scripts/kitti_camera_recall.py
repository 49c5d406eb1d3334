"""Recall of the camera detector on the real KITTI frames, per input mode (docs/real_camera.md).

    python scripts/kitti_camera_recall.py [--bundle DIR] [--frames 000134 000001] [--modes ...]

Modes: ``stretch`` and ``letterbox`` (the bundle's trained input size, resized that way),
``keep_aspect`` (flexible input keeping the aspect ratio within the default pixel budget),
``tiling`` (keep_aspect plus overlapping tiles). Prints JSON:
per mode and frame, found / counted moderate objects (rule in aiat_perception.metrics.kitti_camera).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiat_perception.assets import shared_data  # noqa: E402
from aiat_perception.inference.bundle import load_bundle  # noqa: E402
from aiat_perception.inference.detector import Detector  # noqa: E402
from aiat_perception.kitti import read_label  # noqa: E402
from aiat_perception.metrics.kitti_camera import kitti_camera_recall  # noqa: E402
from aiat_perception.metrics.matching import LabeledBox  # noqa: E402

FRAMES = ('000134', '000001')
MODES = ('stretch', 'letterbox', 'keep_aspect', 'tiling')


def mode_detector(bundle_dir: Path, mode: str, **options) -> Detector:
    """A Detector on the bundle with its input resized the way ``mode`` names."""
    if mode not in MODES:
        raise ValueError(f'unknown mode {mode!r}; modes: {MODES}')
    if mode == 'tiling':
        return Detector(load_bundle(bundle_dir), resize='keep_aspect', tiling=True, **options)
    return Detector(load_bundle(bundle_dir), resize=mode, **options)


def frame_recall(detector: Detector, root: Path, frame: str) -> dict:
    image = cv2.imread(str(root / 'image_2' / f'{frame}.png'), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(root / 'image_2' / f'{frame}.png')
    dets = detector.detect_one(image)
    boxes = [LabeledBox(tuple(float(v) for v in box), label, float(score))
             for box, label, score in zip(dets.boxes, dets.labels, dets.scores)]
    result = kitti_camera_recall(boxes, read_label(root / 'label_2' / f'{frame}.txt'))
    return {'found': result.tp, 'counted': result.total, 'recall': round(result.recall, 3),
            'by_type': {k: list(v) for k, v in result.by_type().items()},
            'detections': len(dets)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--bundle', help='bundle directory (default: the pretrained COCO bundle)')
    parser.add_argument('--frames', nargs='+', default=list(FRAMES))
    parser.add_argument('--modes', nargs='+', default=list(MODES), choices=MODES)
    args = parser.parse_args(argv)
    if args.bundle:
        bundle_dir = Path(args.bundle)
    else:
        from aiat_training.nanodet.pretrained import ensure_pretrained_bundle
        bundle_dir = ensure_pretrained_bundle()
    root = shared_data('kitti_object', 'training')
    report = {}
    for mode in args.modes:
        detector = mode_detector(bundle_dir, mode)
        per_frame = {frame: frame_recall(detector, root, frame) for frame in args.frames}
        found = sum(r['found'] for r in per_frame.values())
        counted = sum(r['counted'] for r in per_frame.values())
        report[mode] = {'frames': per_frame, 'found': found, 'counted': counted,
                        'input': list(detector.last_input_size)}
        detector.close()
    print(json.dumps(report, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
