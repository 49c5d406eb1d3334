"""Per-stage detector timing on a 1280x720 frame, against raw ``InferenceSession.run`` of the same graph.

    python benchmarks/inference.py [--bundle DIR] [--iterations 40] [--threads 0]

Prints JSON: for batch 1 and batch 4, median and p99 (ms) of preprocess, inference and
decode+NMS, the end-to-end ``Detector.detect`` time, and the floor: a plain ONNX Runtime session (same
thread options as ours) running the same graph on the same preprocessed input, interleaved with our runs so both see
the same machine load. ``within_15pct`` says whether end-to-end median <= 1.15 x raw median.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiat_perception.assets import darknet_image  # noqa: E402
from aiat_perception.inference.bundle import load_bundle  # noqa: E402
from aiat_perception.inference.detector import Detector  # noqa: E402


def stats(values_s):
    ms = np.asarray(values_s) * 1e3
    return {'median': round(float(np.median(ms)), 3), 'p99': round(float(np.percentile(ms, 99)), 3)}


def time_against_raw(detector: Detector, raw_session, tensors, detect, iterations: int, warmup: int):
    """Per iteration: the bare session on the same network inputs (the floor), then ``detect()``
    with its stage times; medians/p99 per stage, the overhead over the floor, and the last result."""
    in_name = detector.bundle.input.name
    out_names = [detector.bundle.outputs['scores'].name, detector.bundle.outputs['boxes'].name]
    times = {'preprocess': [], 'inference': [], 'decode_nms': [], 'end_to_end': [], 'raw_session_run': []}
    result = None
    for i in range(warmup + iterations):
        t0 = time.perf_counter()
        for tensor in tensors:
            raw_session.run(out_names, {in_name: tensor})
        t1 = time.perf_counter()
        result = detect()
        t2 = time.perf_counter()
        if i < warmup:
            continue
        st = detector.last_times
        times['raw_session_run'].append(t1 - t0)
        times['end_to_end'].append(t2 - t1)
        times['preprocess'].append(st.preprocess)
        times['inference'].append(st.inference)
        times['decode_nms'].append(st.decode)
    out = {name: stats(values) for name, values in times.items()}
    e2e, raw = out['end_to_end']['median'], out['raw_session_run']['median']
    out['overhead_vs_raw_pct'] = round(100.0 * (e2e - raw) / raw, 1)
    return out, result


def frame_1280x720() -> np.ndarray:
    """A real photo (darknet's dog.jpg) stretched to 1280x720, so decoding has real detections."""
    return cv2.resize(cv2.imread(str(darknet_image('dog.jpg'))), (1280, 720), interpolation=cv2.INTER_LINEAR)


def bench_batch(detector: Detector, raw_session, frame: np.ndarray, batch: int, iterations: int,
                warmup: int) -> dict:
    images = [frame.copy() for _ in range(batch)]
    tensor = detector.preprocessor(images, 'bgr8')[0].copy()
    out, results = time_against_raw(detector, raw_session, [tensor],
                                    lambda: detector.detect(images, 'bgr8'), iterations, warmup)
    detections = sum(len(r) for r in results)
    e2e, raw = out['end_to_end']['median'], out['raw_session_run']['median']
    out['within_15pct'] = bool(e2e <= 1.15 * raw)
    out['detections_per_batch'] = detections
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--bundle', type=Path, help='default: the pretrained COCO bundle (built if missing)')
    parser.add_argument('--iterations', type=int, default=40)
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--threads', type=int, default=0, help='ORT intra-op threads, both sessions (0 = default)')
    parser.add_argument('--batches', type=int, nargs='+', default=[1, 4])
    parser.add_argument('--spinning', action='store_true',
                        help="let ORT's threads busy-wait after a run (ORT's default; ours is off), both sessions")
    args = parser.parse_args(argv)

    import onnxruntime as ort

    if args.bundle is None:
        from aiat_perception.cli.detect import ensure_default_bundle
        args.bundle = ensure_default_bundle(quiet=True)
    bundle = load_bundle(args.bundle)
    detector = Detector(bundle, intra_op_threads=args.threads, device='cpu',
                        allow_spinning=args.spinning)
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    if not args.spinning:
        options.add_session_config_entry('session.intra_op.allow_spinning', '0')
        options.add_session_config_entry('session.inter_op.allow_spinning', '0')
    raw = ort.InferenceSession(str(bundle.onnx_path), sess_options=options,
                               providers=['CPUExecutionProvider'])
    frame = frame_1280x720()
    report = {
        'benchmark': 'inference', 'bundle': bundle.name, 'network_input': [bundle.input.height, bundle.input.width],
        'frame': [1280, 720], 'backend': detector.backend.name, 'device': detector.backend.device,
        'onnxruntime': ort.__version__, 'cpu': platform.processor() or platform.machine(),
        'threads': args.threads, 'ort_spinning': args.spinning, 'iterations': args.iterations, 'unit': 'ms',
        'batches': {},
    }
    for batch in args.batches:
        report['batches'][str(batch)] = bench_batch(detector, raw, frame, batch, args.iterations, args.warmup)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
