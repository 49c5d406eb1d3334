"""Detector cost per input mode on a real 1242x375 KITTI frame, with the raw session floor.

    python benchmarks/camera_modes.py [--bundle DIR] [--iterations 30] [--threads 0]

Modes: stretch and letterbox (416x416), keep_aspect (256x640 for this frame with the default pixel
budget and the pretrained max_stretch 4:3) and tiling (keep_aspect full frame + three 416x416 tiles, NMS-merged). Per mode: median and
p99 (ms) of ``Detector.detect`` end to end and of the floor: plain ``InferenceSession.run`` calls on
the same preprocessed input tensors (one per network run of that mode), interleaved with ours so
both see the same machine load. Prints JSON (docs/benchmarks/camera_modes.json).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.inference import time_against_raw  # noqa: E402

from aiat_perception.assets import shared_data  # noqa: E402
from aiat_perception.inference.bundle import load_bundle  # noqa: E402
from aiat_perception.inference.detector import Detector  # noqa: E402
from aiat_perception.inference.tiling import auto_grid, tile_windows  # noqa: E402

MODES = ('stretch', 'letterbox', 'keep_aspect', 'tiling')


def network_inputs(detector: Detector, frame: np.ndarray):
    """The preprocessed tensors one detect() of this frame runs the network on (copies)."""
    crops = [frame]
    if detector.tiling:
        h, w = frame.shape[:2]
        crops += [np.ascontiguousarray(frame[y0:y1, x0:x1])
                  for x0, y0, x1, y1 in tile_windows(w, h, *auto_grid(w, h), detector.tile_overlap)]
    return [detector.preprocessor(c, 'bgr8')[0].copy() for c in crops]


def bench_mode(detector: Detector, raw_session, frame: np.ndarray, iterations: int, warmup: int) -> dict:
    tensors = network_inputs(detector, frame)
    out, result = time_against_raw(detector, raw_session, tensors,
                                   lambda: detector.detect_one(frame, 'bgr8'), iterations, warmup)
    detections = len(result)
    out['network_inputs'] = [list(t.shape[2:]) for t in tensors]
    out['detections'] = detections
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--bundle', type=Path, help='default: the pretrained COCO bundle (built if missing)')
    parser.add_argument('--frame', default='000134', help='KITTI image_2 frame (shared/data)')
    parser.add_argument('--iterations', type=int, default=30)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--threads', type=int, default=0, help='ORT intra-op threads, both sessions (0 = default)')
    parser.add_argument('--modes', nargs='+', default=list(MODES), choices=MODES)
    args = parser.parse_args(argv)

    import onnxruntime as ort

    if args.bundle is None:
        from aiat_perception.cli.detect import ensure_default_bundle
        args.bundle = ensure_default_bundle(quiet=True)
    bundle = load_bundle(args.bundle)
    frame = cv2.imread(str(shared_data('kitti_object', 'training', 'image_2', f'{args.frame}.png')))
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.add_session_config_entry('session.intra_op.allow_spinning', '0')
    options.add_session_config_entry('session.inter_op.allow_spinning', '0')
    raw = ort.InferenceSession(str(bundle.onnx_path), sess_options=options, providers=['CPUExecutionProvider'])
    report = {'benchmark': 'camera_modes', 'bundle': bundle.name, 'frame': f'kitti {args.frame}',
              'frame_size': [frame.shape[1], frame.shape[0]], 'onnxruntime': ort.__version__,
              'cpu': platform.processor() or platform.machine(), 'threads': args.threads,
              'iterations': args.iterations, 'unit': 'ms', 'modes': {}}
    for mode in args.modes:
        options_ = {'resize': 'keep_aspect', 'tiling': True} if mode == 'tiling' else {'resize': mode}
        detector = Detector(bundle, intra_op_threads=args.threads, device='cpu', allow_spinning=False,
                            **options_)
        report['modes'][mode] = bench_mode(detector, raw, frame, args.iterations, args.warmup)
        detector.close()
    print(json.dumps(report, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
