"""The ``tensorrt`` backend against the bare engine (needs TensorRT and an NVIDIA GPU).

    python benchmarks/tensorrt_backend.py --bundle DIR [--engine PATH | --precision fp16] [--batch 1]
                                          [--iterations 200]

Prints JSON: median and p99 (ms) of ``Backend.run`` (copy into pinned memory, host->device,
``execute_async_v3``, device->host, float32 outputs) and, interleaved in the same run, the floor:
``execute_async_v3`` + stream synchronize on the already-bound device buffers (no copies).
``overhead_ms`` is what our copies and Python add. Where TensorRT or a GPU is missing it prints
``{"skipped": reason}`` and exits 0 (as on the machines this project is developed on: never run yet).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiat_perception.inference.backends import backend_problem, create_backend  # noqa: E402
from aiat_perception.inference.bundle import load_bundle  # noqa: E402


def stats(seconds):
    ms = np.asarray(seconds) * 1e3
    return {'median': round(float(np.median(ms)), 3), 'p99': round(float(np.percentile(ms, 99)), 3)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--bundle', type=Path, required=True)
    parser.add_argument('--engine', type=Path, help='default: the engine cache (built if missing)')
    parser.add_argument('--precision', default='fp16', choices=('fp32', 'fp16', 'int8'))
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--iterations', type=int, default=200)
    parser.add_argument('--warmup', type=int, default=20)
    args = parser.parse_args(argv)

    problem = backend_problem('tensorrt')
    if problem:
        print(json.dumps({'benchmark': 'tensorrt_backend', 'skipped': problem}))
        return 0
    bundle = load_bundle(args.bundle)
    backend = create_backend('tensorrt', bundle, engine=args.engine, precision=args.precision,
                             batch=args.batch, build_if_missing=True)
    spec = bundle.input
    batch = np.random.default_rng(0).normal(0, 1, (args.batch, spec.channels, spec.height, spec.width)
                                            ).astype(np.float32)
    context, cuda, stream = backend._context, backend._cuda, backend._stream   # the floor's bare engine
    handle = cuda.stream_handle(stream)
    ours, floor = [], []
    for i in range(args.warmup + args.iterations):
        t0 = time.perf_counter()
        backend.run(batch)
        t1 = time.perf_counter()
        context.execute_async_v3(handle)
        cuda.synchronize(stream)
        t2 = time.perf_counter()
        if i >= args.warmup:
            ours.append(t1 - t0)
            floor.append(t2 - t1)
    result = {'benchmark': 'tensorrt_backend', 'bundle': bundle.name, 'engine': str(backend.engine_path),
              'tensorrt': backend.metadata.tensorrt_version, 'gpu': backend.metadata.gpu_name,
              'precision': backend.metadata.precision, 'batch': args.batch, 'unit': 'ms',
              'backend_run': stats(ours), 'floor_execute_sync': stats(floor)}
    result['overhead_ms'] = round(result['backend_run']['median'] - result['floor_execute_sync']['median'], 3)
    print(json.dumps(result, indent=2))
    backend.close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
