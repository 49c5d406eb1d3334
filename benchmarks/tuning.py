"""Hyperparameter search throughput: trials per hour of `aiat-train tune` on this machine and the
tuner's overhead, plus data-parallel (torchrun DDP) vs one-run-per-process throughput on CPU.

Study: a tiny synthetic KITTI set (640x480 PNGs), input --size, finetune_all, batch 8, no pruning,
the search over lr / weight decay / EMA (all speed-neutral), --trials trials in one worker. Each
trial's epochs are sized by a short calibration so that its training lasts about --trial-seconds
(>= 60 s). The whole `aiat-train tune` command is timed as a subprocess (process start, imports,
sampling, storage, dataset reads, model builds: everything); overhead = that wall time minus the
time the trials spent inside the trainer's training and validation loop (`Trainer.fit`). The report
(plots, HTML) is timed separately.

Parallel modes (--modes): the same images per run (2 epochs of the training split) trained by
  single  one process, --threads torch threads
  ddp     torchrun --nproc_per_node=2, one thread each (gloo): one model data-parallel
  trials  two independent fit processes, one thread each: one trial per worker
Images/s is the sum over processes of images trained per second of training (same-run floor:
the single process).

    .venv/bin/python benchmarks/tuning.py [--trials 3] [--trial-seconds 80] [--modes] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from aiat_training.data.synthetic import write_synthetic_kitti  # noqa: E402


def base_config(data_root: Path, size: int, epochs: int, iters: int, out: Path) -> dict:
    return {
        'data': {'format': 'kitti', 'path': str(data_root)},
        'class_mapping': {'classes': ['car', 'person'], 'map': {'Car': 'car', 'Pedestrian': 'person'},
                          'unmapped': 'drop'},
        'split': {'train': 0.8, 'val': 0.2, 'test': 0.0, 'stratify': False, 'seed': 0},
        'input': {'height': size, 'width': size},
        'model': {'strategy': 'finetune_all', 'layer_lr_decay': 0.8},
        'schedule': {'epochs': epochs, 'warmup_iters': 5},
        'train': {'batch_size': 8, 'num_workers': 0, 'device': 'cpu', 'log_images': 0, 'seed': 0,
                  'max_iters_per_epoch': iters},
        'output': {'dir': str(out)},
    }


def run_fit(cfg_path: Path, env: dict, torchrun: int = 0):
    cmd = ([str(Path(sys.executable).with_name('torchrun')), f'--nproc_per_node={torchrun}']
           if torchrun else [sys.executable])
    cmd += ['-m', 'aiat_training.cli.train', 'fit', str(cfg_path), '--quiet']
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def fit_summary(proc) -> dict:
    out, err = proc.communicate(timeout=3600)
    if proc.returncode:
        raise RuntimeError(f'fit failed: {err[-2000:]}')
    return json.loads(out[out.index('{\n'):])   # after the one-line epoch records


def calibrate(tmp: Path, data_root: Path, size: int, threads: int) -> float:
    """Seconds per training step (batch 8) of one process with ``threads`` threads."""
    cfg = base_config(data_root, size, 1, 6, tmp / 'calib')
    cfg['train']['eval_every'] = 0
    path = tmp / 'calib.yaml'
    path.write_text(yaml.safe_dump(cfg))
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), CUDA_VISIBLE_DEVICES='')
    summary = fit_summary(run_fit(path, env))
    return summary['seconds'] / max(summary['iterations'], 1)


def study(tmp: Path, data_root: Path, args, step_seconds: float) -> dict:
    epochs = 3
    iters = max(2, round(args.trial_seconds / step_seconds / epochs))
    cfg_path = tmp / 'base.yaml'
    cfg_path.write_text(yaml.safe_dump(base_config(data_root, args.size, epochs, iters, tmp / 'unused')))
    search = tmp / 'search.yaml'
    search.write_text(yaml.safe_dump({'pruner': 'none', 'params': {
        'optimizer.lr': {'low': 3e-4, 'high': 3e-3, 'log': True},
        'optimizer.weight_decay': {'low': 1e-3, 'high': 0.1, 'log': True},
        'train.ema': {'choices': [True, False]}}}))
    out = tmp / 'study'
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), CUDA_VISIBLE_DEVICES='')
    cmd = [sys.executable, '-m', 'aiat_training.cli.train', 'tune', str(cfg_path), '--search', str(search),
           '--trials', str(args.trials), '--out', str(out), '--no-report']
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=7200)
    wall = time.perf_counter() - started
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    summary = json.loads(proc.stdout)
    trials = json.loads((out / 'study.json').read_text())
    fit = [t['fit_seconds'] for t in trials]
    inside = sum(fit)
    t0 = time.perf_counter()
    import optuna

    from aiat_training.tune.report import write_report
    from aiat_training.tune.study import open_storage
    write_report(optuna.load_study(study_name='aiat-tune', storage=open_storage(None, out)), out)
    report_seconds = time.perf_counter() - t0
    return {
        'trials': len(trials), 'states': summary['states'], 'epochs': epochs, 'iters_per_epoch': iters,
        'images_per_trial': epochs * iters * 8,
        'trial_fit_seconds': [round(s, 1) for s in fit],
        'trial_seconds_incl_setup': [round(t['trial_seconds'], 1) for t in trials],
        'study_wall_seconds': round(wall, 2),
        'inside_training_and_validation_seconds': round(inside, 2),
        'overhead_seconds': round(wall - inside, 2),
        'overhead_fraction': round((wall - inside) / wall, 4),
        'overhead_limit_fraction': 0.05,
        'trials_per_hour': round(3600 * len(trials) / wall, 2),
        'report_seconds_not_in_study_wall': round(report_seconds, 2),
    }


def _cpu_children() -> float:
    import resource
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def modes(tmp: Path, data_root: Path, args) -> dict:
    """images/s of training in the three ways two cores can train, each mode run --repeats times
    interleaved (the load of a shared machine changes by the minute); also images per CPU-second of
    the processes (less sensitive to the other jobs: what each mode costs, not what it was given)."""

    def cfg(name: str) -> Path:
        # 2 epochs of (train images / world) // batch steps: the same images per run in every mode
        c = base_config(data_root, args.size, 2, 0, tmp / f'mode_{name}')
        c['train']['eval_every'] = 0
        path = tmp / f'mode_{name}.yaml'
        path.write_text(yaml.safe_dump(c))
        return path

    env1 = dict(os.environ, OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='')
    runs = {'single_process': [], 'ddp_2_processes': [], 'two_independent_trials': []}
    for _ in range(args.repeats):
        cpu = _cpu_children()
        s = fit_summary(run_fit(cfg('single'), dict(env1, OMP_NUM_THREADS=str(args.threads))))
        runs['single_process'].append((s['images_per_second'], s['iterations'] * 8, _cpu_children() - cpu))
        cpu = _cpu_children()
        d = fit_summary(run_fit(cfg('ddp'), env1, torchrun=2))
        runs['ddp_2_processes'].append((d['images_per_second'], d['iterations'] * 8 * 2, _cpu_children() - cpu))
        cpu = _cpu_children()
        both = [fit_summary(p) for p in [run_fit(cfg(f'trial{i}'), env1) for i in range(2)]]
        runs['two_independent_trials'].append((sum(b['images_per_second'] for b in both),
                                               sum(b['iterations'] * 8 for b in both), _cpu_children() - cpu))
    out = {}
    for name, values in runs.items():
        ips = sorted(v[0] for v in values)
        out[name] = {'processes': 1 if name == 'single_process' else 2,
                     'threads_each': args.threads if name == 'single_process' else 1,
                     'images_per_second_median': round(ips[len(ips) // 2], 2),
                     'images_per_second_all': [round(v, 2) for v in ips],
                     'cpu_seconds_all': [round(v[2], 2) for v in values],
                     'images_per_cpu_second_incl_startup': round(
                         sum(v[1] for v in values) / max(sum(v[2] for v in values), 1e-9), 3)}
    out['images_per_run'] = {'single_process': runs['single_process'][0][1],
                             'ddp_2_processes': runs['ddp_2_processes'][0][1],
                             'two_independent_trials': runs['two_independent_trials'][0][1]}
    out['repeats'] = args.repeats
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--trials', type=int, default=3)
    parser.add_argument('--trial-seconds', type=float, default=80.0, help='target training time per trial')
    parser.add_argument('--size', type=int, default=160)
    parser.add_argument('--threads', type=int, default=1, help='torch threads of the study worker and '
                        'of the single-process mode')
    parser.add_argument('--images', type=int, default=60)
    parser.add_argument('--modes', action='store_true', help='also measure DDP vs independent processes')
    parser.add_argument('--repeats', type=int, default=2, help='interleaved repetitions of the modes')
    parser.add_argument('--skip-study', action='store_true')
    parser.add_argument('--json', type=Path, help='also write the JSON here')
    args = parser.parse_args(argv)
    if args.trial_seconds < 60:
        parser.error('--trial-seconds: the measurement needs trials of at least a minute')

    report = {'benchmark': 'tuning', 'machine': {'cpus': os.cpu_count(), 'python': platform.python_version(),
                                                 'load_average_at_start': os.getloadavg()}}
    with tempfile.TemporaryDirectory(prefix='aiat-tuning-bench-') as tmp:
        tmp = Path(tmp)
        data_root = write_synthetic_kitti(tmp / 'data', num_images=args.images, width=640, height=480,
                                          max_objects=4)
        if not args.skip_study:
            step = calibrate(tmp, data_root, args.size, args.threads)
            report['calibration_seconds_per_step'] = round(step, 3)
            report['study'] = study(tmp, data_root, args, step)
        if args.modes:
            report['parallel_modes'] = modes(tmp, data_root, args)
    report['machine']['load_average_at_end'] = os.getloadavg()
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
