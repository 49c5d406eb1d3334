"""aiat-train tune: the search space is checked against the fit schema, workers are assigned to
GPUs/cores (pure function: tested here without GPUs), and a real small study runs end to end with
2 worker processes sharing one SQLite file, resumes, and writes a best config that fit accepts."""
import json
from pathlib import Path

import pytest
import yaml

from aiat_training.config import ConfigError
from aiat_training.tune.search_space import parse_search_space
from aiat_training.tune.workers import assign_workers, parse_gpus, split_trials


# ------------------------------------------------------------------------------------------------
# search space

def _space(params, **top):
    return parse_search_space({'params': params, **top}, 'search.yaml')


def test_search_space_parses_every_kind():
    space = _space({'optimizer.lr': {'low': 1e-4, 'high': 1e-2, 'log': True},
                    'schedule.epochs': {'low': 2, 'high': 8},
                    'train.batch_size': {'choices': [4, 8]},
                    'model.strategy': {'choices': ['head_only', 'early_layers', 'finetune_all']},
                    'train.ema': {'choices': [True, False]},
                    'input.height': {'choices': [256, 320]}, 'input.width': {'same_as': 'input.height'},
                    'augmentation.flip.p': {'low': 0.0, 'high': 0.5}},
                   pruner='hyperband')
    kinds = {p.key: p.kind for p in space.params}
    assert kinds == {'optimizer.lr': 'float', 'schedule.epochs': 'int', 'train.batch_size': 'categorical',
                     'model.strategy': 'categorical', 'train.ema': 'categorical',
                     'input.height': 'categorical', 'input.width': 'same_as', 'augmentation.flip.p': 'float'}
    assert space.pruner == 'hyperband' and space.sampler == 'tpe'
    import optuna
    trial = optuna.create_study().ask()
    values = space.suggest(trial)
    assert values['input.width'] == values['input.height']
    assert 1e-4 <= values['optimizer.lr'] <= 1e-2 and isinstance(values['schedule.epochs'], int)


@pytest.mark.parametrize('params, words', [
    ({'optimizer.learning_rate': {'low': 1e-4, 'high': 1e-2}}, ['optimizer.learning_rate', 'unknown key', 'optimizer.lr']),
    ({'train.batchsize': {'choices': [4, 8]}}, ['train.batchsize', 'did you mean train.batch_size']),
    ({'optimizer.lr': {'low': 1e-2, 'high': 1e-4}}, ['optimizer.lr', 'impossible range', 'low']),
    ({'optimizer.lr': {'low': 0.0, 'high': 1e-2, 'log': True}}, ['optimizer.lr', 'log range needs low > 0']),
    ({'schedule.epochs': {'low': 1.5, 'high': 8}}, ['schedule.epochs', 'type mismatch', 'int']),
    ({'train.batch_size': {'choices': [4, 'big']}}, ['train.batch_size', 'type mismatch']),
    ({'model.strategy': {'low': 0, 'high': 2}}, ['model.strategy', 'type mismatch']),
    ({'model.strategy': {'choices': ['head_only', 'everything']}}, ['model.strategy', 'everything']),
    ({'train.ema': {'choices': ['maybe']}}, ['train.ema', 'maybe']),
    ({'optimizer.lr': {'low': 0.0, 'high': 1e-2}}, ['optimizer.lr', 'greater than 0']),
    ({'input.height': {'choices': [256, 300]}}, ['input.height', 'multiple of 32']),
    ({'input.width': {'same_as': 'input.height'}}, ['input.width', 'same_as']),
    ({'optimizer.lr': {'low': 1e-4}}, ['optimizer.lr', 'missing high']),
    ({'optimizer.lr': {'low': 1e-4, 'high': 1e-2, 'logscale': True}}, ['optimizer.lr', 'logscale']),
    ({'optimizer.lr': {'low': float('nan'), 'high': 1e-2}}, ['optimizer.lr', 'finite']),
])
def test_search_space_rejects_naming_the_key(params, words):
    with pytest.raises(ConfigError) as info:
        _space(params)
    message = str(info.value)
    assert message.startswith('search.yaml: ')
    for word in words:
        assert word in message, message


def test_search_space_rejects_bad_top_level():
    for data, word in (({'params': {}}, 'params'), ({'params': {'optimizer.lr': {'low': 1e-4, 'high': 1e-3}},
                                                     'sampler': 'grid'}, 'sampler'),
                       ({'params': {'optimizer.lr': {'low': 1e-4, 'high': 1e-3}}, 'prunner': 'median'}, 'prunner'),
                       ([1, 2], 'mapping')):
        with pytest.raises(ConfigError, match=word):
            parse_search_space(data, 'search.yaml')


def test_example_search_space_is_valid():
    from aiat_training.tune.search_space import load_search_space
    space = load_search_space(Path(__file__).resolve().parents[2] / 'config' / 'tune_search_example.yaml')
    assert {p.key for p in space.params} >= {'optimizer.lr', 'model.strategy', 'train.ema', 'input.width'}


# ------------------------------------------------------------------------------------------------
# worker assignment (pure: no GPU on this machine, the CUDA_VISIBLE_DEVICES pinning is checked here)

def test_one_worker_per_gpu_pinned():
    slots = assign_workers(10, None, parse_gpus('0,1,2,3'), cpu_count=16)
    assert [s.env['CUDA_VISIBLE_DEVICES'] for s in slots] == ['0', '1', '2', '3']
    assert {s.device for s in slots} == {'cuda:0'}            # each sees only its own GPU
    assert [s.trials for s in slots] == [3, 3, 2, 2] and sum(s.trials for s in slots) == 10
    assert {s.torch_threads for s in slots} == {4}


def test_more_workers_than_gpus_round_robin_and_few_trials():
    slots = assign_workers(6, 3, parse_gpus('2,5'), cpu_count=2)
    assert [s.env['CUDA_VISIBLE_DEVICES'] for s in slots] == ['2', '5', '2']
    assert all(s.torch_threads >= 1 for s in slots)
    assert len(assign_workers(2, None, parse_gpus('0,1,2,3'))) == 2     # no idle worker


def test_cpu_workers_share_the_cores():
    slots = assign_workers(5, 2, [], cpu_count=8)
    assert [s.device for s in slots] == ['cpu', 'cpu']
    assert all(s.env == {'CUDA_VISIBLE_DEVICES': ''} for s in slots)
    assert [s.torch_threads for s in slots] == [4, 4] and [s.trials for s in slots] == [3, 2]
    assert [s.torch_threads for s in assign_workers(4, 4, [], cpu_count=2)] == [1, 1, 1, 1]
    single = assign_workers(3, cpu_count=2)
    assert len(single) == 1 and single[0].env == {} and single[0].device is None     # config's device


@pytest.mark.parametrize('text', ['0,0', 'a,b', '-1', '0,,1', ''])
def test_bad_gpu_lists(text):
    with pytest.raises(ValueError, match='--gpus'):
        parse_gpus(text)


def test_bad_counts():
    with pytest.raises(ValueError, match='--trials'):
        assign_workers(0)
    with pytest.raises(ValueError, match='--workers'):
        assign_workers(3, 0)
    assert split_trials(7, 3) == [3, 2, 2]


# ------------------------------------------------------------------------------------------------
# storage and command-line errors (no training)

def test_journal_file_is_the_default_storage_and_urls_go_to_optuna(tmp_path):
    import optuna
    from optuna.storages.journal import JournalStorage

    from aiat_training.tune.study import open_storage
    storage = open_storage(None, tmp_path / 'out')
    assert isinstance(storage, JournalStorage) and (tmp_path / 'out' / 'study.journal').exists()
    study = optuna.create_study(study_name='s', storage=storage, direction='maximize')
    for x in (0.2, 0.7):
        trial = study.ask()
        study.tell(trial, x)
    again = optuna.load_study(study_name='s', storage=open_storage(str(tmp_path / 'out' / 'study.journal'), tmp_path))
    assert [t.value for t in again.trials] == [0.2, 0.7]
    db = open_storage(f'sqlite:///{tmp_path / "s.db"}', tmp_path)
    assert isinstance(db, optuna.storages.RDBStorage)


def test_pruners_and_samplers():
    import optuna

    from aiat_training.tune.study import make_pruner, make_sampler, max_epochs
    assert isinstance(make_pruner('hyperband', 8), optuna.pruners.HyperbandPruner)
    assert isinstance(make_pruner('median', 8), optuna.pruners.MedianPruner)
    assert isinstance(make_pruner('none', 8), optuna.pruners.NopPruner)
    space = _space({'schedule.epochs': {'low': 2, 'high': 12}})
    assert max_epochs(space, {}) == 12 and max_epochs(_space({'optimizer.lr': {'low': 1e-4, 'high': 1e-3}}), {}) == 30
    assert isinstance(make_sampler(space, 0, parallel=True), optuna.samplers.TPESampler)
    space.sampler = 'random'
    assert isinstance(make_sampler(space, 0, parallel=False), optuna.samplers.RandomSampler)


def test_cli_rejects_bad_search_space_and_missing_gpus(tmp_path, capsys):
    from aiat_training.cli.train import main
    cfg = tmp_path / 'fit.yaml'
    cfg.write_text(yaml.safe_dump({'data': {'format': 'kitti', 'path': str(tmp_path)}}))
    bad = tmp_path / 'bad.yaml'
    bad.write_text(yaml.safe_dump({'params': {'optimizer.lr': {'low': 0.01, 'high': 0.001}}}))
    assert main(['tune', str(cfg), '--search', str(bad), '--trials', '2', '--out', str(tmp_path / 'o')]) == 2
    err = capsys.readouterr().err
    assert f'{bad}: params.optimizer.lr: impossible range' in err
    good = tmp_path / 'good.yaml'
    good.write_text(yaml.safe_dump({'params': {'optimizer.lr': {'low': 0.001, 'high': 0.01}}}))
    assert main(['tune', str(cfg), '--search', str(good), '--trials', '2', '--gpus', '0,7',
                 '--out', str(tmp_path / 'o')]) == 2
    assert '--gpus: GPU' in capsys.readouterr().err
    assert not (tmp_path / 'o' / 'trials').exists()


# ------------------------------------------------------------------------------------------------
# a real study

def _fit_config(tmp_path, data_root):
    cfg = {
        'data': {'format': 'kitti', 'path': str(data_root)},
        'class_mapping': {'classes': ['car', 'person'], 'map': {'Car': 'car', 'Pedestrian': 'person'},
                          'unmapped': 'drop'},
        'split': {'train': 0.75, 'val': 0.25, 'test': 0.0, 'stratify': False},
        'input': {'height': 96, 'width': 128},
        'augmentation': {'enabled': True, 'crop': {'p': 0.0}, 'cutout': {'p': 0.0}},
        'model': {'strategy': 'finetune_all'},
        'schedule': {'epochs': 2, 'warmup_iters': 2},
        'train': {'batch_size': 4, 'num_workers': 0, 'log_images': 0, 'seed': 7},
        'output': {'dir': str(tmp_path / 'unused')},
    }
    path = tmp_path / 'fit.yaml'
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_study_two_workers_sqlite_resume_and_best_config_fits(tmp_path, capsys):
    import optuna

    from aiat_training.cli.train import main
    from aiat_training.data.synthetic import write_synthetic_kitti

    data_root = write_synthetic_kitti(tmp_path / 'data', num_images=12, width=128, height=96, seed=5)
    cfg_path = _fit_config(tmp_path, data_root)
    search = tmp_path / 'search.yaml'
    search.write_text(yaml.safe_dump({'pruner': 'median', 'params': {
        'optimizer.lr': {'low': 1e-4, 'high': 3e-3, 'log': True},
        'schedule.epochs': {'low': 1, 'high': 2},
        'model.strategy': {'choices': ['head_only', 'finetune_all']},
        'train.ema': {'choices': [True, False]}}}))
    out = tmp_path / 'tune'
    db = f'sqlite:///{tmp_path / "study.db"}'
    args = ['tune', str(cfg_path), '--search', str(search), '--out', str(out), '--storage', db]

    assert main(args + ['--trials', '4', '--workers', '2', '--no-report']) == 0
    first = json.loads(capsys.readouterr().out)
    assert first['trials_added'] == 4 and len(first['workers']) == 2
    assert {w['env']['CUDA_VISIBLE_DEVICES'] for w in first['workers']} == {''}
    study = optuna.load_study(study_name='aiat-tune', storage=db)
    trials = study.get_trials()
    assert len(trials) == 4
    assert {t.state.name for t in trials} <= {'COMPLETE', 'PRUNED'}, [t.state for t in trials]
    assert {t.user_attrs['worker'] for t in trials} == {0, 1}          # both processes ran trials
    for t in trials:
        trial_dir = Path(t.user_attrs['trial_dir'])
        result = json.loads((trial_dir / 'result.json').read_text())
        assert result['state'] == t.state.name and result['seed'] == 7 == t.user_attrs['seed']
        assert result['params'] == t.params
        assert yaml.safe_load((trial_dir / 'fit.yaml').read_text())['optimizer']['lr'] == t.params['optimizer.lr']
        assert list((trial_dir / 'tensorboard').glob('events.out.tfevents.*'))
        assert t.intermediate_values                          # validation mAP reported per epoch

    # resume: the same study gets more trials
    assert main(args + ['--trials', '1']) == 0
    second = json.loads(capsys.readouterr().out)
    assert second['trials_added'] == 1 and second['trials_total'] == 5
    assert len(optuna.load_study(study_name='aiat-tune', storage=db).trials) == 5

    # report and best config
    for name in ('summary.md', 'study.html', 'history.png', 'study.json'):
        assert (out / name).is_file(), name
    assert 'Best: trial' in (out / 'summary.md').read_text()
    best = yaml.safe_load((out / 'best.yaml').read_text())
    assert best['optimizer']['lr'] == second['best_params']['optimizer.lr']
    assert best['data']['path'] == str(data_root)
    assert main(['fit', str(out / 'best.yaml'), '--quiet', '--out', str(tmp_path / 'refit')]) == 0
    assert (tmp_path / 'refit' / 'checkpoints' / 'best.pt').is_file()


def test_trainer_epoch_hook_sees_validation_and_can_stop(tmp_path):
    """The per-epoch hook the pruner uses: called with each epoch's record, a true return stops."""
    from aiat_training.data.loader import TrainingDataset
    from aiat_training.train.config import fit_config_from_dict
    from aiat_training.train.data_setup import read_splits
    from aiat_training.data.synthetic import write_synthetic_kitti
    from aiat_training.train.trainer import Trainer

    data_root = write_synthetic_kitti(tmp_path / 'data', num_images=8, width=96, height=64, seed=1)
    data = yaml.safe_load(_fit_config(tmp_path, data_root).read_text())
    data['input'] = {'height': 64, 'width': 96}
    data['schedule'] = {'epochs': 3, 'warmup_iters': 1}
    data['output'] = {'dir': str(tmp_path / 'run')}
    cfg = fit_config_from_dict(data)
    splits = read_splits(cfg)
    trainer = Trainer(cfg, splits['train'].class_names, TrainingDataset(splits['train'], cfg.input, cfg.augmentation,
                      seed=0), splits['val'], progress=False)
    seen = []
    summary = trainer.fit(on_epoch_end=lambda record: seen.append(record) or record['epoch'] == 2)
    assert [r['epoch'] for r in seen] == [1, 2] and all('val_mAP' in r for r in seen)
    assert summary['stopped_early'] and summary['epochs'] == 2
