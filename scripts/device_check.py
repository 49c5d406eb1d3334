"""GPU device check: CUDA PyTorch backend vs ONNX Runtime (CPU) on a bundle, NVML read under load, and
TensorRT fp32/fp16 engines (built with aiat-engine's builder) where TensorRT is importable.

    python scripts/device_check.py --bundle DIR [--inputs inputs.npz] [--iterations 30] [--out FILE]

Prints one JSON document (and writes it to --out). Each section records its own error instead of
stopping the run. Run through scripts/device_check.sh on a lent GPU machine; it also runs on a CPU-only
machine (torch on the CPU, TensorRT and NVML reported absent), which is how it is tested.
"""
from __future__ import annotations

import argparse
import datetime
import platform
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.json_out import emit_json  # noqa: E402


def stats(seconds):
    import numpy as np
    ms = np.asarray(seconds) * 1e3
    return {'median_ms': round(float(np.median(ms)), 3), 'p99_ms': round(float(np.percentile(ms, 99)), 3),
            'runs': len(ms)}


def time_backend(backend, batch, iterations, warmup):
    for _ in range(warmup):
        backend.run(batch)
    times = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        backend.run(batch)
        times.append(time.perf_counter() - t0)
    return stats(times)


def compare(got, want):
    import numpy as np
    out = {}
    for name in want:
        diff = np.abs(got[name].astype(np.float64) - want[name].astype(np.float64))
        out[name] = {'max_abs_diff': float(diff.max()), 'mean_abs_diff': float(diff.mean()),
                     'allclose_1e-3': bool(np.allclose(got[name], want[name], atol=1e-3, rtol=1e-3)),
                     'shape': list(got[name].shape)}
    return out


def section(report, key, fn):
    started = time.perf_counter()
    try:
        report[key] = fn()
    except Exception as exc:  # every section reports its own failure; the JSON always comes out
        report[key] = {'error': f'{type(exc).__name__}: {exc}',
                       'traceback': traceback.format_exc().strip().splitlines()[-6:]}
    if isinstance(report[key], dict):
        report[key]['section_seconds'] = round(time.perf_counter() - started, 2)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--bundle', type=Path, required=True)
    parser.add_argument('--inputs', type=Path, help='npz with "batch" [N,C,H,W] float32 (preprocessed photos)')
    parser.add_argument('--iterations', type=int, default=30)
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--calibration', help='int8 calibration images (needs OpenCV)')
    parser.add_argument('--skip-tensorrt', action='store_true')
    parser.add_argument('--out', type=Path)
    args = parser.parse_args(argv)

    import numpy as np
    from aiat_perception.inference.backends import create_backend
    from aiat_perception.inference.bundle import load_bundle

    report = {'script': 'scripts/device_check.py', 'started': datetime.datetime.now(datetime.timezone.utc)
              .replace(microsecond=0).isoformat(), 'host': platform.node(), 'python': platform.python_version(),
              'numpy': np.__version__, 'bundle': str(args.bundle)}
    bundle = load_bundle(args.bundle)
    spec = bundle.input
    if args.inputs:
        base = np.load(args.inputs)['batch'].astype(np.float32)
        report['inputs'] = f'{args.inputs} ({len(base)} preprocessed photos)'
    else:
        base = np.random.default_rng(0).normal(0, 1, (2, spec.channels, spec.height, spec.width)).astype(np.float32)
        report['inputs'] = 'seeded normal noise (no --inputs)'
    batches = {1: base[:1], 4: np.concatenate([base] * 4)[:4]}
    state = {}

    def machine():
        info = {}
        try:
            import torch
            info['torch'] = torch.__version__
            info['cuda_available'] = bool(torch.cuda.is_available())
            info['torch_cuda'] = torch.version.cuda
            if torch.cuda.is_available():
                info['gpu_name'] = torch.cuda.get_device_name(0)
                info['compute_capability'] = '.'.join(map(str, torch.cuda.get_device_capability(0)))
        except ImportError:
            info['torch'] = None
        try:
            import onnxruntime
            info['onnxruntime'] = onnxruntime.__version__
            info['onnxruntime_providers'] = onnxruntime.get_available_providers()
        except ImportError:
            info['onnxruntime'] = None
        return info

    def ort_cpu():
        backend = create_backend('onnxruntime', bundle, device='cpu')
        state['reference'] = {b: backend.run(x) for b, x in batches.items()}
        return {'device': backend.device,
                'timing': {f'batch{b}': time_backend(backend, x, args.iterations, args.warmup)
                           for b, x in batches.items()}}

    def torch_backend():
        import torch
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
        backend = create_backend('torch', bundle, device=device)
        state['torch'] = backend
        out = {'device': backend.device, 'source': backend.source}
        if 'reference' in state:
            out['vs_onnxruntime_cpu'] = {f'batch{b}': compare(backend.run(x), state['reference'][b])
                                         for b, x in batches.items()}
        out['timing'] = {f'batch{b}': time_backend(backend, x, args.iterations, args.warmup)
                         for b, x in batches.items()}
        out['timing_note'] = 'Backend.run: host->device copy, forward, device->host copy (synchronous)'
        return out

    def gpu_load():
        from aiat_perception.gpu_load import GpuLoad
        load = GpuLoad()
        out = {'source': load.source, 'problems': load.problems, 'idle': load.read()}
        backend = state.get('torch')
        if load.available and backend is not None and backend.device.startswith('cuda'):
            stop = threading.Event()

            def busy():
                while not stop.is_set():
                    backend.run(batches[4])
            worker = threading.Thread(target=busy, daemon=True)
            worker.start()
            samples = []
            deadline = time.monotonic() + 3.0
            while time.monotonic() < deadline:
                time.sleep(0.25)
                samples.append(load.read())
            stop.set()
            worker.join(timeout=10)
            utils = [s['gpu_util_percent'] for s in samples if 'gpu_util_percent' in s]
            out['under_load'] = {'samples': len(samples), 'max_util_percent': max(utils) if utils else None,
                                 'last': samples[-1] if samples else {}}
            out['note'] = 'read while the torch backend runs batch 4 in a loop (no ROS node on this machine)'
        load.close()
        return out

    def tensorrt():
        from aiat_perception.engine.trt_api import tensorrt_problem
        problem = tensorrt_problem()
        if problem or args.skip_tensorrt:
            return {'available': False, 'reason': problem or '--skip-tensorrt'}
        import tensorrt as trt
        from aiat_perception.engine.builder import BuildOptions, build_engine
        out = {'available': True, 'version': trt.__version__, 'engines': {}}
        work = Path(tempfile.mkdtemp(prefix='aiat-trt-'))
        precisions = ['fp32', 'fp16'] + (['int8'] if args.calibration else [])
        for precision in precisions:
            entry = {}
            try:
                result = build_engine(bundle, work / f'{precision}.engine', BuildOptions(
                    precision=precision, batch=(1, 4, 4), timing_cache=work / 'timing.cache',
                    calibration=args.calibration))
                entry['build_seconds'] = round(result.seconds, 1)
                entry['metadata'] = result.metadata.to_dict()
                backend = create_backend('tensorrt', bundle, engine=result.engine_path)
                if 'reference' in state:
                    entry['vs_onnxruntime_cpu'] = {f'batch{b}': compare(backend.run(x), state['reference'][b])
                                                   for b, x in batches.items()}
                entry['timing'] = {f'batch{b}': time_backend(backend, x, args.iterations, args.warmup)
                                   for b, x in batches.items()}
                backend.close()
            except Exception as exc:
                entry['error'] = f'{type(exc).__name__}: {exc}'
                entry['traceback'] = traceback.format_exc().strip().splitlines()[-6:]
            out['engines'][precision] = entry
        return out

    section(report, 'machine', machine)
    section(report, 'onnxruntime_cpu', ort_cpu)
    section(report, 'torch', torch_backend)
    section(report, 'gpu_load', gpu_load)
    section(report, 'tensorrt', tensorrt)
    emit_json(report, args.out, default=str)
    return 0


if __name__ == '__main__':
    sys.exit(main())
