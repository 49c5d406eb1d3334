"""``aiat-train ablate-augment``: which augmentation helps a detector trained on rendered data.

Cells: no augmentation, each transform alone (flip, rotation, scale, crop, translation, noise,
colour) and all seven together, every cell with the same training budget and ``--seeds`` seeds.
Data: the simulator's mesh actors, trained on one scenario layout (``mesh_actors``) and validated on
another (``mesh_actors_layout_b``: the same actors elsewhere, other headings), because in-domain
validation is saturated and cannot separate the cells. Score: validation mAP@[.5:.95] of the EMA
weights after the last epoch, through the vehicle's pre- and post-processing.

    aiat-train ablate-augment --out runs/ablate_augment [--seeds 3] [--epochs 2] [--height 160 --width 224] [--jobs 4]

Writes ``data/`` (rendered once, reused), ``runs/<cell>-s<seed>/`` (a fit config + result.json each;
finished runs are skipped on a rerun), ``ablation.json``, ``ablation.md`` and ``ablation.png``.
Every run's ``fit.yaml`` is an ordinary ``aiat-train fit`` config.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Optional

import yaml

TRAIN_SCENARIO = 'mesh_actors'
VAL_SCENARIO = 'mesh_actors_layout_b'
CLASSES = ['car', 'person', 'bicycle']
CLASS_MAP = {'Car': 'car', 'Pedestrian': 'person', 'Cyclist': 'bicycle', 'Misc': 'drop'}

# Each transform's setting when it is on (the others at p = 0). Strengths are the fit config's
# defaults; rotation has p = 0 by default, so its angle is set here.
TRANSFORMS = {
    'flip': {'flip': {'p': 0.5}},
    'rotation': {'rotation': {'p': 0.5, 'degrees': 10.0}},
    'scale': {'scale': {'p': 0.5, 'range': 0.2}},
    'crop': {'crop': {'p': 0.5, 'max_fraction': 0.2}},
    'translation': {'translation': {'p': 0.5, 'fraction': 0.1}},
    'noise': {'gaussian_noise': {'p': 0.5, 'std': 0.05}},
    'colour': {'color_jitter': {'p': 0.5, 'brightness': 0.2, 'contrast': 0.2, 'saturation': 0.2, 'hue': 0.02}},
}
ALL_OFF = {'flip': {'p': 0.0}, 'rotation': {'p': 0.0}, 'scale': {'p': 0.0}, 'crop': {'p': 0.0},
           'translation': {'p': 0.0}, 'gaussian_noise': {'p': 0.0}, 'color_jitter': {'p': 0.0},
           'cutout': {'p': 0.0}}
CELLS = ['none', *TRANSFORMS, 'all']


def augmentation_for(cell: str) -> dict:
    """The fit config's ``augmentation`` section of a cell."""
    if cell == 'none':
        return {'enabled': False}
    if cell not in CELLS:
        raise ValueError(f'unknown cell {cell!r}; choose from {CELLS}')
    section = {'enabled': True, **json.loads(json.dumps(ALL_OFF))}
    for name in (TRANSFORMS if cell == 'all' else [cell]):
        section.update(TRANSFORMS[name])
    return section


# ------------------------------------------------------------------------------------------------
# data

def render_data(data_dir: Path, train_frames: int, val_frames: int, seed: int = 0, log=print) -> dict:
    """One KITTI directory holding both layouts (``a*`` = training layout, ``b*`` = validation
    layout) and ``lists/train.txt`` / ``lists/val.txt`` naming them, so a plain fit config reads it."""
    from aiat_perception.sim.dataset_writer import randomized, write_dataset
    from aiat_perception.sim.scenario import load_scenario, resolve_scenario

    done = data_dir / 'render.json'
    if done.is_file():
        info = json.loads(done.read_text())
        if info.get('train_frames') == train_frames and info.get('val_frames') == val_frames \
                and info.get('seed') == seed:
            return info
    if data_dir.exists():
        shutil.rmtree(data_dir)
    kitti = data_dir / 'kitti'
    (kitti / 'image_2').mkdir(parents=True)
    (kitti / 'label_2').mkdir(parents=True)
    (data_dir / 'lists').mkdir()
    info = {'train_scenario': TRAIN_SCENARIO, 'val_scenario': VAL_SCENARIO, 'train_frames': train_frames,
            'val_frames': val_frames, 'seed': seed, 'frames_per_episode': 5,
            'randomized': 'lighting, textures, placement jitter >= 1 m, yaw jitter >= 30 deg'}
    for prefix, scenario, frames, split, render_seed in (('a', TRAIN_SCENARIO, train_frames, 'train', seed),
                                                          ('b', VAL_SCENARIO, val_frames, 'val', seed + 1)):
        tmp = data_dir / f'render_{prefix}'
        log(f'[ablate-augment] rendering {frames} frames of {scenario}')
        counts = write_dataset(randomized(load_scenario(resolve_scenario(scenario))), tmp, frames,
                               formats=('kitti',), seed=render_seed, frames_per_episode=5)
        names = []
        for image in sorted((tmp / 'image_2').glob('*.png')):
            name = f'{prefix}{image.stem}'
            image.replace(kitti / 'image_2' / f'{name}.png')
            (tmp / 'label_2' / f'{image.stem}.txt').replace(kitti / 'label_2' / f'{name}.txt')
            names.append(f'../kitti/image_2/{name}.png')
        (data_dir / 'lists' / f'{split}.txt').write_text('\n'.join(names) + '\n')
        shutil.rmtree(tmp)
        info[f'{split}_objects'] = counts['objects']
        info[f'{split}_render_seconds'] = counts['seconds']
    done.write_text(json.dumps(info, indent=2))
    return info


# ------------------------------------------------------------------------------------------------
# runs

def fit_config(cell: str, seed: int, data_dir: Path, run_dir: Path, args) -> dict:
    """An ordinary ``aiat-train fit`` config for one (cell, seed)."""
    return {
        'data': {'format': 'kitti', 'path': str((data_dir / 'kitti').resolve())},
        'class_mapping': {'classes': CLASSES, 'map': CLASS_MAP, 'unmapped': 'error'},
        'split': {'lists_dir': str((data_dir / 'lists').resolve())},
        'input': {'height': args.height, 'width': args.width},
        'augmentation': augmentation_for(cell),
        'model': {'strategy': 'finetune_all', 'layer_lr_decay': 0.8},
        'optimizer': {'type': 'adamw', 'lr': args.lr, 'weight_decay': 0.05},
        'schedule': {'epochs': args.epochs, 'warmup_iters': 10},
        'train': {'batch_size': args.batch, 'num_workers': 0, 'seed': seed, 'ema': True, 'amp': 'off',
                  'eval_every': args.epochs, 'log_images': 0, 'log_every': 10,
                  'max_iters_per_epoch': args.iters_per_epoch},
        'output': {'dir': str(run_dir.resolve())},
    }


def run_one(cell: str, seed: int, data_dir: Path, runs_dir: Path, args, log=print,
            claim: bool = False) -> Optional[dict]:
    from aiat_training.data.loader import TrainingDataset
    from aiat_training.train.config import fit_config_from_dict
    from aiat_training.train.data_setup import read_splits
    from aiat_training.train.trainer import Trainer

    run_dir = runs_dir / f'{cell}-s{seed}'
    result_path = run_dir / 'result.json'
    if result_path.is_file():
        return json.loads(result_path.read_text())
    if claim:
        # --jobs children take runs from one shared list: the first to create the claim file runs it
        run_dir.mkdir(parents=True, exist_ok=True)
        try:
            os.close(os.open(run_dir / '.claim', os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return None
    else:
        if run_dir.exists():
            shutil.rmtree(run_dir)      # an interrupted run starts over (same seed, same result)
        run_dir.mkdir(parents=True)
    data = fit_config(cell, seed, data_dir, run_dir, args)
    (run_dir / 'fit.yaml').write_text(yaml.safe_dump(data, sort_keys=False))
    cfg = fit_config_from_dict(data, str(run_dir / 'fit.yaml'))
    splits = read_splits(cfg)
    train = splits['train']
    started = time.perf_counter()
    train_set = TrainingDataset(train, cfg.input, cfg.augmentation, augment=True, seed=seed)
    trainer = Trainer(cfg, train.class_names, train_set, splits['val'], progress=False)
    summary = trainer.fit()
    last = summary['history'][-1]
    result = {'cell': cell, 'seed': seed, 'val_mAP': last['val_mAP'], 'val_mAP50': last['val_mAP50'],
              'train_images': len(train), 'val_images': len(splits['val']),
              'iterations': summary['iterations'],
              'images_seen': summary['iterations'] * cfg.train.batch_size,
              'seconds': round(time.perf_counter() - started, 1)}
    # Keep the score, drop the weights: 27 runs of checkpoints are ~0.5 GB nobody reads again.
    shutil.rmtree(run_dir / 'checkpoints', ignore_errors=True)
    result_path.write_text(json.dumps(result, indent=2))
    log(f'[ablate-augment] {cell} seed {seed}: mAP {result["val_mAP"]:.4f} '
        f'mAP50 {result["val_mAP50"]:.4f} ({result["seconds"]} s)')
    return result


# ------------------------------------------------------------------------------------------------
# statistics

def summarise(results: list[dict], alpha: float = 0.05) -> dict:
    """Mean, sd per cell and Welch's t-test of each cell against ``none`` (no augmentation)."""
    import numpy as np
    from scipy import stats

    by_cell: dict[str, list[float]] = {}
    for r in results:
        by_cell.setdefault(r['cell'], []).append(float(r['val_mAP']))
    base = np.asarray(by_cell.get('none', []), np.float64)
    cells = {}
    for cell in [c for c in CELLS if c in by_cell]:
        v = np.asarray(by_cell[cell], np.float64)
        entry = {'n': int(len(v)), 'mean': float(v.mean()), 'sd': float(v.std(ddof=1)) if len(v) > 1 else math.nan,
                 'values': [float(x) for x in v]}
        if cell != 'none' and len(v) > 1 and len(base) > 1:
            t = stats.ttest_ind(v, base, equal_var=False)
            entry['diff_vs_none'] = float(v.mean() - base.mean())
            entry['welch_t'] = float(t.statistic)
            entry['welch_p'] = float(t.pvalue)
            entry['significant'] = bool(t.pvalue < alpha)
        cells[cell] = entry
    return {'alpha': alpha, 'test': "Welch's t-test (unequal variances) of each cell vs none",
            'cells': cells}


def plot(summary: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    cells = list(summary['cells'])
    means = [summary['cells'][c]['mean'] for c in cells]
    sds = [summary['cells'][c]['sd'] for c in cells]
    fig, ax = plt.subplots(figsize=(8, 3.8))
    colours = ['#888888' if c == 'none' else ('#2a7' if summary['cells'][c].get('significant')
                                               and summary['cells'][c]['diff_vs_none'] > 0 else
                                               '#c44' if summary['cells'][c].get('significant') else '#59c')
               for c in cells]
    ax.bar(cells, means, yerr=sds, capsize=4, color=colours, alpha=0.8)
    for i, c in enumerate(cells):
        vals = summary['cells'][c]['values']
        ax.scatter([i] * len(vals), vals, s=10, color='black', zorder=3)
    if 'none' in summary['cells']:
        ax.axhline(summary['cells']['none']['mean'], color='#555', linestyle='--', linewidth=0.8)
    ax.set_ylabel('val mAP@[.5:.95] (layout B)')
    ax.set_title('Augmentation ablation: mean ± sd over seeds (dots: seeds; green/red: p < 0.05 vs none)')
    ax.title.set_fontsize(9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(summary: dict, budget: dict) -> str:
    lines = ['| cell | mAP@[.5:.95] mean ± sd | seeds | diff vs none | Welch p | exceeds seed noise |',
             '|---|---|---|---|---|---|']
    for cell, e in summary['cells'].items():
        diff = f'{e["diff_vs_none"]:+.4f}' if 'diff_vs_none' in e else ''
        p = f'{e["welch_p"]:.3f}' if 'welch_p' in e else ''
        sig = ('yes' if e.get('significant') else 'no') if 'significant' in e else ''
        lines.append(f'| {cell} | {e["mean"]:.4f} ± {e["sd"]:.4f} | {e["n"]} | {diff} | {p} | {sig} |')
    lines += ['', 'Budget: ' + ', '.join(f'{k} {v}' for k, v in budget.items())]
    return '\n'.join(lines) + '\n'


# ------------------------------------------------------------------------------------------------

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('--out', type=Path, default=Path('runs/ablate_augment'), help='output directory')
    p.add_argument('--seeds', type=int, default=3, help='seeds per cell (>= 2 for a spread)')
    p.add_argument('--cells', nargs='+', default=CELLS, choices=CELLS, metavar='CELL',
                   help=f'cells to run (default all: {" ".join(CELLS)})')
    p.add_argument('--train-frames', type=int, default=120, help='rendered training frames (layout A)')
    p.add_argument('--val-frames', type=int, default=60, help='rendered validation frames (layout B)')
    p.add_argument('--height', type=int, default=160, help='network input height')
    p.add_argument('--width', type=int, default=224, help='network input width')
    p.add_argument('--epochs', type=int, default=2)
    p.add_argument('--batch', type=int, default=8)
    p.add_argument('--iters-per-epoch', type=int, default=0, help='> 0: cut each epoch to this many steps')
    p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--threads', type=int, default=1, help='torch threads')
    p.add_argument('--render-seed', type=int, default=0)
    p.add_argument('--jobs', type=int, default=1, help='runs in parallel (separate processes, '
                   '--threads each); finished runs are kept and skipped on a rerun')
    p.add_argument('--shard', default=None, help=argparse.SUPPRESS)   # K/N: a --jobs child process


def run_shards(args, log) -> None:
    """``--jobs`` child processes sharing the plan (each claims the next run nobody took)."""
    import subprocess

    base = [sys.executable, '-m', 'aiat_training.ablation', '--out', str(args.out), '--seeds', str(args.seeds),
            '--cells', *args.cells, '--train-frames', str(args.train_frames), '--val-frames', str(args.val_frames),
            '--height', str(args.height), '--width', str(args.width), '--epochs', str(args.epochs),
            '--batch', str(args.batch), '--iters-per-epoch', str(args.iters_per_epoch), '--lr', repr(args.lr),
            '--threads', str(args.threads), '--render-seed', str(args.render_seed)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    procs = [subprocess.Popen(base + ['--shard', f'{k}/{args.jobs}'], env=env)
             for k in range(args.jobs)]
    codes = [p.wait() for p in procs]
    if any(codes):
        raise SystemExit(f'ablate-augment: a job exited with {codes}')
    log(f'[ablate-augment] {args.jobs} jobs done')


def run(args) -> int:
    import torch

    if args.seeds < 2:
        raise SystemExit('ablate-augment: --seeds must be >= 2 to measure seed noise')
    torch.set_num_threads(args.threads)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731 -- stdout carries the JSON
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    render = render_data(out / 'data', args.train_frames, args.val_frames, args.render_seed, log)
    # seeds outermost: a cut-short ablation still covers every cell
    plan = [(cell, seed) for seed in range(args.seeds) for cell in args.cells]
    if args.shard:                            # a --jobs child: take unclaimed runs in plan order
        for cell, seed in plan:
            with contextlib.redirect_stdout(sys.stderr):    # the trainer's epoch lines
                run_one(cell, seed, out / 'data', out / 'runs', args, log, claim=True)
        return 0
    if args.jobs > 1:
        for claim in (out / 'runs').glob('*/.claim'):       # left by an interrupted earlier call
            if not (claim.parent / 'result.json').is_file():
                shutil.rmtree(claim.parent)
        run_shards(args, log)
    results = []
    for cell, seed in plan:
        with contextlib.redirect_stdout(sys.stderr):
            results.append(run_one(cell, seed, out / 'data', out / 'runs', args, log))
    summary = summarise(results)
    seconds = [r['seconds'] for r in results]
    budget = {'input': f'{args.height}x{args.width}', 'epochs': args.epochs, 'batch': args.batch,
              'train images': results[0]['train_images'], 'val images': results[0]['val_images'],
              'images seen per run': results[0]['images_seen'], 'seeds': args.seeds,
              'runs': len(results), 'median run seconds': sorted(seconds)[len(seconds) // 2],
              'sum of run seconds': round(sum(seconds), 1)}
    report = {'render': render, 'budget': budget, 'summary': summary, 'results': results,
              'wall_seconds': round(time.perf_counter() - started, 1)}
    (out / 'ablation.json').write_text(json.dumps(report, indent=2))
    (out / 'ablation.md').write_text(markdown(summary, budget))
    plot(summary, out / 'ablation.png')
    print(json.dumps({'out': str(out), 'budget': budget,
                      'cells': {c: round(e['mean'], 4) for c, e in summary['cells'].items()}}))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='aiat-train ablate-augment', description=__doc__.split('\n\n')[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == '__main__':
    sys.exit(main())
