"""``aiat-train tune CONFIG --search SEARCH.yaml --trials N``: hyperparameter search on Optuna.

    aiat-train tune config/fit_example.yaml --search config/tune_search_example.yaml --trials 20 \
        [--out runs/tune] [--study NAME] [--storage URL|JOURNAL_FILE] [--workers N | --gpus 0,1,2,3]

Every call adds ``--trials`` trials to the study (a second call with the same ``--out``/``--storage``
and ``--study`` resumes it). Storage: ``OUT/study.journal`` by default (Optuna's journal file, which
parallel workers on this machine share); any database URL Optuna supports for workers on many
machines (docs/tuning.md). ``--gpus``: one worker process per GPU, pinned with
``CUDA_VISIBLE_DEVICES``; ``--workers N`` on CPU: N processes sharing the cores.

Writes ``OUT/best.yaml`` (the base config with the best trial's values, for ``aiat-train fit``),
``OUT/trials/trial_NNNN/`` (each trial's fit.yaml, result.json, tensorboard/), ``OUT/summary.md``,
``OUT/study.html``, the PNG plots and ``OUT/study.json``; prints a JSON summary.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

import yaml


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('config', type=Path, help='the base fit config (docs/training_fit_config.md)')
    p.add_argument('--search', type=Path, required=True, help='search space YAML (docs/tuning.md)')
    p.add_argument('--trials', type=int, required=True, help='trials to add to the study in this call')
    p.add_argument('--out', type=Path, default=Path('runs/tune'), help='output directory')
    p.add_argument('--study', default=None, help='study name (default aiat-tune)')
    p.add_argument('--storage', default=None, help='Optuna storage: a database URL (sqlite:///x.db, '
                   'postgresql://user:pw@host/db) or a journal file path (default OUT/study.journal)')
    p.add_argument('--workers', type=int, default=None, help='parallel worker processes (default: '
                   'one per --gpus entry, else 1)')
    p.add_argument('--gpus', default=None, help='comma-separated GPU ids, one trial per GPU at a time')
    p.add_argument('--pruner', choices=('median', 'hyperband', 'none'), default=None,
                   help='override the search file\'s pruner')
    p.add_argument('--sampler-seed', type=int, default=0, help='seed of the TPE/random sampler '
                   '(worker k uses seed + k)')
    p.add_argument('--keep-checkpoints', action='store_true', help='keep each trial\'s checkpoints/')
    p.add_argument('--no-report', action='store_true', help='skip the plots and HTML')


def run(args) -> int:
    from aiat_training.config import ConfigError

    from . import report
    from .search_space import load_search_space
    from .study import DEFAULT_STUDY, best_config, load_base_config, load_study, open_storage, run_worker, \
        spawn_workers
    from .workers import assign_workers, parse_gpus

    started = time.perf_counter()
    space = load_search_space(args.search)
    if args.pruner:
        space.pruner = args.pruner
    base = load_base_config(args.config)
    try:
        gpus = parse_gpus(args.gpus)
        slots = assign_workers(args.trials, args.workers, gpus, os.cpu_count() or 1)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if gpus:
        import torch
        present = torch.cuda.device_count()
        missing = [g for g in gpus if int(g) >= present]
        if missing:
            raise ConfigError(f'--gpus: GPU {",".join(missing)} not present (this machine has {present} '
                              'CUDA device(s)); leave out --gpus to run on the CPU')
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    name = args.study or DEFAULT_STUDY
    storage_arg = args.storage
    if storage_arg and '://' not in storage_arg:
        storage_arg = str(Path(storage_arg).resolve())
    storage = open_storage(storage_arg, out)
    parallel = len(slots) > 1
    study = load_study(storage, name, space, base, seed=args.sampler_seed, parallel=parallel)
    before = len(study.trials)
    # the search file may have had its pruner overridden: workers read this copy
    search_copy = out / 'search.yaml'
    search_copy.write_text(yaml.safe_dump({'sampler': space.sampler, 'pruner': space.pruner,
                                           'params': yaml.safe_load(Path(args.search).read_text())['params']},
                                          sort_keys=False))
    specs = [{'worker': s.index, 'trials': s.trials, 'device': s.device, 'torch_threads': s.torch_threads,
              'config': str(args.config.resolve()), 'search': str(search_copy), 'out': str(out),
              'storage': storage_arg, 'study': name, 'sampler_seed': args.sampler_seed + s.index,
              'parallel': parallel, 'keep_checkpoints': args.keep_checkpoints} for s in slots]
    setup_seconds = time.perf_counter() - started
    if len(slots) == 1 and not slots[0].env:
        with contextlib.redirect_stdout(sys.stderr):    # the trainer's epoch lines; stdout is the JSON
            run_worker(specs[0])                  # one worker, no pinning: this process
        codes = [0]
    else:
        codes = spawn_workers(specs, [s.env for s in slots], out)
    if any(codes):
        failed = [i for i, c in enumerate(codes) if c]
        raise SystemExit(f'aiat-train tune: worker(s) {failed} exited with {[codes[i] for i in failed]}; '
                         f'logs: {out / "workers"}')
    study = load_study(storage, name, space, base, create=False)
    trials = study.get_trials(deepcopy=False)
    states = {}
    for t in trials:
        states[t.state.name] = states.get(t.state.name, 0) + 1
    summary = {'study': name, 'storage': storage_arg or str(out / 'study.journal'), 'out': str(out),
               'trials_added': len(trials) - before, 'trials_total': len(trials), 'states': states,
               'workers': [{'index': s.index, 'device': s.device, 'env': s.env, 'trials': s.trials,
                            'torch_threads': s.torch_threads} for s in slots]}
    best_path = None
    try:
        best = study.best_trial
    except ValueError:
        best = None
    if best is not None:
        best_path = out / 'best.yaml'
        data = best_config(base, best.params, out / 'best_run')
        header = (f'# aiat-train tune: best of study {name!r}: trial {best.number}, val mAP@[.5:.95] '
                  f'{best.value:.4f}, seed {best.user_attrs.get("seed")}.\n# Run it: aiat-train fit {best_path}\n')
        best_path.write_text(header + yaml.safe_dump(data, sort_keys=False))
        summary.update(best_trial=best.number, best_value=best.value, best_params=best.params,
                       best_config=str(best_path))
    report.dump(report.trials_json(study), out / 'study.json')
    if not args.no_report:
        summary['report'] = report.write_report(study, out, best_path)
    wall = time.perf_counter() - started
    fit_seconds = sum(float(t.user_attrs.get('fit_seconds') or 0) for t in trials[before:])
    summary['seconds'] = {'wall': round(wall, 2), 'setup': round(setup_seconds, 2),
                          'trials_fit_sum': round(fit_seconds, 2)}
    print(json.dumps(summary, indent=2, default=str))
    return 0 if best is not None else 1
