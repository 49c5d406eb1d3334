"""Images/s of the augmented training loader vs the same loader without augmentation (same run).

    .venv/bin/python benchmarks/dataloader.py                       # rendered KITTI-like data
    .venv/bin/python benchmarks/dataloader.py --config my_train.yaml  # your dataset and augmentation

Both loaders read, decode, stretch to the input size (416x416), normalise and collate; only the
augmentation differs. The modes are interleaved epoch by epoch so machine noise hits both alike.
Prints JSON: per mode the median and min/max images/s over epochs and the median/p99 time per
batch; ``floor`` = the loader without augmentation, ``augmentation_cost`` = 1 - aug/floor.
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiat_training.config import TrainingConfig, load_config  # noqa: E402
from aiat_training.data.loader import TrainingDataset, make_loader  # noqa: E402
from aiat_training.data.readers import read_dataset  # noqa: E402
from aiat_training.data.synthetic import render_kitti_dataset  # noqa: E402


def run_epoch(loader) -> tuple[int, float, list[float]]:
    images, batch_times = 0, []
    start = last = time.perf_counter()
    for batch in loader:
        now = time.perf_counter()
        batch_times.append(now - last)
        last = now
        images += batch['image'].shape[0]
    return images, time.perf_counter() - start, batch_times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', type=Path, help='training config (data + augmentation + input)')
    parser.add_argument('--frames', type=int, default=96, help='rendered frames when no --config')
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--epochs', type=int, default=4, help='timed epochs per mode (after one warm-up)')
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        if args.config:
            config = load_config(args.config)
        else:
            config = TrainingConfig()
            config.data.path = render_kitti_dataset(Path(tmp) / 'kitti', frames=args.frames, size=(1242, 375))
        d = config.data
        dataset = read_dataset(d.format, d.path, d.images, d.subset, config.class_mapping.to_mapping(),
                               d.on_error, d.sequence_regex)
        loaders = {}
        for mode, augment in (('augmented', True), ('no_augmentation', False)):
            train = TrainingDataset(dataset, config.input, config.augmentation, augment=augment, seed=0)
            loaders[mode] = make_loader(train, batch_size=args.batch_size, num_workers=args.workers,
                                        seed=0, drop_last=False)
        for loader in loaders.values():
            run_epoch(loader)   # warm-up: worker start, page cache
        rates = {m: [] for m in loaders}
        batches = {m: [] for m in loaders}
        for _ in range(args.epochs):
            for mode, loader in loaders.items():
                n, seconds, times = run_epoch(loader)
                rates[mode].append(n / seconds)
                batches[mode] += times[1:]   # first batch of an epoch waits for the prefetch to fill
        result = {
            'benchmark': 'dataloader',
            'input': f'{config.input.width}x{config.input.height}',
            'dataset': 'rendered KITTI-like 1242x375 PNG' if not args.config else str(d.path),
            'images': len(dataset), 'workers': args.workers, 'batch_size': args.batch_size,
            'epochs': args.epochs, 'cpu_threads': torch.get_num_threads(), 'machine': platform.machine(),
        }
        for mode in loaders:
            r = np.array(rates[mode])
            t = np.array(batches[mode]) * 1000
            result[mode] = {'images_per_s_median': round(float(np.median(r)), 1),
                            'images_per_s_min': round(float(r.min()), 1),
                            'images_per_s_max': round(float(r.max()), 1),
                            'batch_ms_median': round(float(np.median(t)), 1),
                            'batch_ms_p99': round(float(np.percentile(t, 99)), 1)}
        result['floor'] = 'no_augmentation'
        result['augmentation_cost'] = round(
            1 - result['augmented']['images_per_s_median'] / result['no_augmentation']['images_per_s_median'], 3)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
