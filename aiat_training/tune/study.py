"""The Optuna study behind ``aiat-train tune``: storage, sampler, pruner, the objective (one
``aiat-train fit`` run per trial) and the worker loop.

Each trial writes ``OUT/trials/trial_NNNN/`` with ``fit.yaml`` (the exact fit config it ran, which
``aiat-train fit`` accepts), ``result.json`` (state, value, parameters, seed, per-epoch history,
timings) and ``tensorboard/`` (``tensorboard --logdir OUT/trials`` shows every trial as a run).
The objective is the best validation mAP@[.5:.95] of the run; the validation mAP after each epoch
feeds the pruner.
"""
from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Optional

import yaml

from aiat_training.config import PATH_KEYS, ConfigError, read_config_file

from .search_space import SearchSpace, load_search_space, set_key

DEFAULT_STUDY = 'aiat-tune'
JOURNAL_FILE = 'study.journal'


# ------------------------------------------------------------------------------------------------
# configs

def load_base_config(path: str | Path) -> dict:
    """The fit config as a dict with its relative paths made absolute (the trials' configs live
    elsewhere), validated as ``aiat-train fit`` would."""
    from aiat_training.train.config import fit_config_from_dict

    path = Path(path)
    data = read_config_file(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f'{path}: expected a mapping of sections at the top level')
    data = copy.deepcopy(data)
    base_dir = path.resolve().parent
    for section, key in (*PATH_KEYS, ('model', 'pretrained')):
        value = (data.get(section) or {}).get(key)
        if isinstance(value, str) and value and not (section == 'model' and value == 'coco') \
                and not Path(value).is_absolute():
            data[section][key] = os.path.normpath(base_dir / value)
    fit_config_from_dict(data, str(path))
    return data


def trial_config(base: dict, values: dict, out_dir: Path, device: Optional[str] = None,
                 per_epoch_validation: bool = True) -> dict:
    data = copy.deepcopy(base)
    for key, value in values.items():
        set_key(data, key, value)
    set_key(data, 'output.dir', str(out_dir))
    if device is not None:
        set_key(data, 'train.device', device)
    if per_epoch_validation:
        set_key(data, 'train.eval_every', 1)      # the pruner needs a score after every epoch
    return data


def best_config(base: dict, params: dict, out_dir: Path) -> dict:
    """The base config with the best trial's values: what ``aiat-train fit`` should run next."""
    data = copy.deepcopy(base)
    for key, value in params.items():
        set_key(data, key, value)
    set_key(data, 'output.dir', str(out_dir))
    return data


# ------------------------------------------------------------------------------------------------
# Optuna pieces

def open_storage(storage: Optional[str], out_dir: Path):
    """Optuna storage: a journal file (default ``OUT/study.journal``; a path without ``://`` is a
    journal file too), or any database URL Optuna supports (``sqlite:///x.db``,
    ``postgresql://user:pw@host/db``, ``mysql+pymysql://...``), which workers on many machines share."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    if storage and '://' in storage:
        kwargs = {}
        if storage.startswith('sqlite'):
            kwargs['engine_kwargs'] = {'connect_args': {'timeout': 120}}   # parallel writers wait
        return optuna.storages.RDBStorage(storage, **kwargs)
    path = Path(storage) if storage else Path(out_dir) / JOURNAL_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


def make_sampler(space: SearchSpace, seed: Optional[int], parallel: bool):
    import optuna
    if space.sampler == 'random':
        return optuna.samplers.RandomSampler(seed=seed)
    # constant_liar: running trials count as bad guesses, so parallel workers spread out
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=4, constant_liar=parallel)


def max_epochs(space: SearchSpace, base: dict) -> int:
    for p in space.params:
        if p.key == 'schedule.epochs':
            return int(max(p.choices) if p.kind == 'categorical' else p.high)
    return int((base.get('schedule') or {}).get('epochs', 30))


def make_pruner(name: str, epochs: int):
    import optuna
    if name == 'hyperband':
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 1), reduction_factor=3)
    if name == 'median':
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    return optuna.pruners.NopPruner()


def load_study(storage, name: str, space: SearchSpace, base: dict, seed: Optional[int] = None,
               parallel: bool = False, create: bool = True):
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    kwargs = dict(study_name=name, storage=storage, sampler=make_sampler(space, seed, parallel),
                  pruner=make_pruner(space.pruner, max_epochs(space, base)))
    if create:
        return optuna.create_study(direction='maximize', load_if_exists=True, **kwargs)
    return optuna.load_study(**kwargs)


# ------------------------------------------------------------------------------------------------
# the objective

class Objective:
    """One trial = one fit run in this process."""

    def __init__(self, base: dict, space: SearchSpace, out_dir: Path, device: Optional[str] = None,
                 keep_checkpoints: bool = False, worker: int = 0):
        self.base, self.space, self.out_dir = base, space, Path(out_dir)
        self.device, self.keep_checkpoints, self.worker = device, keep_checkpoints, worker
        self._splits: dict = {}
        self.per_epoch_validation = space.pruner != 'none'

    def splits(self, cfg):
        """The dataset is read once per worker (every trial shares the data sections' settings
        unless the space samples them)."""
        from aiat_training.train.data_setup import read_splits
        key = json.dumps({k: json.loads(getattr(cfg, k).model_dump_json())
                          for k in ('data', 'class_mapping', 'split')}, sort_keys=True)
        if key not in self._splits:
            self._splits = {key: read_splits(cfg)}
        return self._splits[key]

    def __call__(self, trial) -> float:
        import optuna

        from aiat_training.data.loader import TrainingDataset
        from aiat_training.train.config import fit_config_from_dict
        from aiat_training.train.trainer import Trainer

        started = time.perf_counter()
        trial_dir = self.out_dir / 'trials' / f'trial_{trial.number:04d}'
        if trial_dir.exists():
            shutil.rmtree(trial_dir)
        trial_dir.mkdir(parents=True)
        values = self.space.suggest(trial)
        data = trial_config(self.base, values, trial_dir, self.device, self.per_epoch_validation)
        seed = int((data.get('train') or {}).get('seed', 0))
        trial.set_user_attr('seed', seed)
        trial.set_user_attr('trial_dir', str(trial_dir))
        trial.set_user_attr('worker', self.worker)
        trial.set_user_attr('device', self.device or 'auto')
        (trial_dir / 'fit.yaml').write_text(yaml.safe_dump(data, sort_keys=False))
        result = {'number': trial.number, 'params': values, 'seed': seed, 'worker': self.worker,
                  'device': self.device or 'auto', 'config': str(trial_dir / 'fit.yaml')}
        fit_seconds = 0.0
        try:
            cfg = fit_config_from_dict(data, str(trial_dir / 'fit.yaml'))
            splits = self.splits(cfg)
            if 'val' not in splits or not len(splits['val']):
                raise ConfigError(f'{trial_dir / "fit.yaml"}: split: tuning needs a validation split '
                                  '(split.val > 0 or split.lists_dir with val.txt)')
            train = splits['train']
            train_set = TrainingDataset(train, cfg.input, cfg.augmentation, augment=True, seed=cfg.train.seed)
            trainer = Trainer(cfg, train.class_names, train_set, splits['val'], progress=False)

            def on_epoch_end(record: dict) -> bool:
                if 'val_mAP' not in record:
                    return False
                trial.report(float(record['val_mAP']), int(record['epoch']))
                return trial.should_prune()

            fit_start = time.perf_counter()
            summary = trainer.fit(on_epoch_end=on_epoch_end)
            fit_seconds = time.perf_counter() - fit_start
            history = [{k: v for k, v in h.items() if isinstance(v, (int, float))} for h in summary['history']]
            result.update(history=history, epochs_run=summary['epochs'], best_val_mAP=summary['best_mAP'],
                          images_per_second=summary['images_per_second'])
            state = 'PRUNED' if summary['stopped_early'] else 'COMPLETE'
        except Exception as exc:   # recorded as a failed trial, the study goes on
            result.update(state='FAIL', error=f'{type(exc).__name__}: {exc}', traceback=traceback.format_exc())
            self._finish(trial, trial_dir, result, started, fit_seconds)
            raise
        result['state'] = state
        self._finish(trial, trial_dir, result, started, fit_seconds)
        if state == 'PRUNED':
            raise optuna.TrialPruned(f'pruned after epoch {summary["epochs"]}')
        if summary['best_mAP'] < 0:
            raise RuntimeError('no validation ran (train.eval_every = 0?)')
        return float(summary['best_mAP'])

    def _finish(self, trial, trial_dir: Path, result: dict, started: float, fit_seconds: float) -> None:
        result['fit_seconds'] = round(fit_seconds, 3)
        result['trial_seconds'] = round(time.perf_counter() - started, 3)
        trial.set_user_attr('fit_seconds', result['fit_seconds'])
        trial.set_user_attr('trial_seconds', result['trial_seconds'])
        if not self.keep_checkpoints:
            shutil.rmtree(trial_dir / 'checkpoints', ignore_errors=True)
        (trial_dir / 'result.json').write_text(json.dumps(result, indent=2, default=str))


def run_worker(spec: dict) -> int:
    """Run ``spec['trials']`` trials of the study in this process (a worker)."""
    import torch

    from aiat_training.train.config import fit_config_from_dict  # noqa: F401 -- import cost before timing

    if spec.get('torch_threads'):
        torch.set_num_threads(int(spec['torch_threads']))
    out_dir = Path(spec['out'])
    space = load_search_space(spec['search'])
    base = load_base_config(spec['config'])
    storage = open_storage(spec.get('storage'), out_dir)
    seed = spec.get('sampler_seed')
    study = load_study(storage, spec['study'], space, base, seed=seed, parallel=spec.get('parallel', False),
                       create=False)
    objective = Objective(base, space, out_dir, spec.get('device'), spec.get('keep_checkpoints', False),
                          spec.get('worker', 0))
    study.optimize(objective, n_trials=int(spec['trials']), catch=(Exception,), gc_after_trial=True)
    return 0


def spawn_workers(specs: list[dict], envs: list[dict], out_dir: Path) -> list[int]:
    """One process per spec (``python -m aiat_training.tune.study SPEC.json``), with its
    environment overrides; waits for all and returns their exit codes."""
    procs = []
    for spec, env_extra in zip(specs, envs):
        path = out_dir / 'workers' / f'worker_{spec["worker"]}.json'
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(spec, indent=2))
        env = dict(os.environ, **env_extra)
        env['OMP_NUM_THREADS'] = str(spec.get('torch_threads') or 1)
        log = open(path.with_suffix('.log'), 'w')
        procs.append((subprocess.Popen([sys.executable, '-m', 'aiat_training.tune.study', str(path)],
                                       env=env, stdout=log, stderr=subprocess.STDOUT), log))
    codes = []
    for proc, log in procs:
        codes.append(proc.wait())
        log.close()
    return codes


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print('usage: python -m aiat_training.tune.study WORKER_SPEC.json', file=sys.stderr)
        return 2
    return run_worker(json.loads(Path(argv[0]).read_text()))


if __name__ == '__main__':
    sys.exit(main())
