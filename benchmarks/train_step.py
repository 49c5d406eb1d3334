"""Training throughput: images/s of `aiat-train fit`'s step at batch 8, 416x416 (CPU by default),
and the share of wall time spent waiting for data.

Runs the real Trainer (pretrained NanoDet, fine-tune all, AdamW, EMA, loss + ATSS) on a synthetic
KITTI dataset (640x480 PNGs, full augmentation, the real TrainingDataset/DataLoader). Same-run
floor: the same step on one batch already in memory (no data loading at all).

    .venv/bin/python benchmarks/train_step.py [--iters 8] [--warmup 2] [--workers 2] [--size 416]

Prints JSON: medians and p99 of step and data-wait times, images/s, data share, and the floor.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiat_training.data.classmap import ClassMapping  # noqa: E402
from aiat_training.data.loader import TrainingDataset  # noqa: E402
from aiat_training.data.readers import read_dataset  # noqa: E402
from aiat_training.train.config import fit_config_from_dict  # noqa: E402
from aiat_training.data.synthetic import write_synthetic_kitti  # noqa: E402
from aiat_training.train.trainer import Trainer  # noqa: E402


def stats(values):
    a = np.asarray(values, np.float64)
    return {'median': float(np.median(a)), 'p99': float(np.percentile(a, 99)), 'mean': float(a.mean()), 'n': len(a)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--iters', type=int, default=8, help='measured iterations')
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--size', type=int, default=416)
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--amp', default='auto')
    args = parser.parse_args(argv)

    n_iter = args.iters + args.warmup
    with tempfile.TemporaryDirectory() as tmp:
        root = write_synthetic_kitti(Path(tmp) / 'data', num_images=args.batch * n_iter, width=640, height=480,
                                     max_objects=5)
        data = read_dataset('kitti', root, mapping=ClassMapping(classes=['Car', 'Pedestrian'], unmapped='drop'))
        cfg = fit_config_from_dict({
            'input': {'height': args.size, 'width': args.size},
            'model': {'strategy': 'finetune_all'},
            'schedule': {'epochs': 1, 'warmup_iters': 1},
            'train': {'batch_size': args.batch, 'num_workers': args.workers, 'device': args.device,
                      'amp': args.amp, 'eval_every': 0},
            'output': {'dir': str(Path(tmp) / 'run')},
        })
        train_set = TrainingDataset(data, cfg.input, cfg.augmentation, augment=True, seed=0)
        trainer = Trainer(cfg, data.class_names, train_set, None, progress=False)
        trainer.net.train()
        sync = torch.cuda.synchronize if trainer.device.type == 'cuda' else (lambda: None)

        step_times, wait_times = [], []
        t_fetch = time.perf_counter()
        for i, batch in enumerate(trainer.loader(0)):
            t0 = time.perf_counter()
            trainer.train_step(batch)
            sync()
            t1 = time.perf_counter()
            if i >= args.warmup:
                wait_times.append(t0 - t_fetch)
                step_times.append(t1 - t0)
            t_fetch = time.perf_counter()
            if i + 1 >= n_iter:
                break

        floor_times = []
        for _ in range(max(3, args.iters // 2)):
            t0 = time.perf_counter()
            trainer.train_step(batch)
            sync()
            floor_times.append(time.perf_counter() - t0)

    total = np.asarray(step_times) + np.asarray(wait_times)
    result = {
        'benchmark': 'train_step', 'batch': args.batch, 'input': [args.size, args.size],
        'device': str(trainer.device), 'amp': cfg.train.amp, 'num_workers': args.workers,
        'torch_threads': torch.get_num_threads(), 'torch': torch.__version__, 'machine': platform.machine(),
        'iteration_s': stats(total), 'step_s': stats(step_times), 'data_wait_s': stats(wait_times),
        'images_per_second': args.batch / float(np.median(total)),
        'data_loading_share': float(np.sum(wait_times) / np.sum(total)),
        'floor_step_in_memory_batch_s': stats(floor_times),
        'floor_images_per_second': args.batch / float(np.median(floor_times)),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
