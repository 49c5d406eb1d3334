"""A run stopped after a checkpoint and resumed equals an uninterrupted run with the same seed."""
import torch

from aiat_training.data.loader import TrainingDataset
from aiat_training.data.readers import read_dataset
from aiat_training.data.classmap import ClassMapping
from aiat_training.train.config import fit_config_from_dict
from aiat_training.train.checkpoint import load_checkpoint
from aiat_training.data.synthetic import write_synthetic_kitti
from aiat_training.train.trainer import Trainer


def _config(out_dir, strategy='scratch'):
    return fit_config_from_dict({
        'input': {'height': 64, 'width': 64},
        'augmentation': {'enabled': True, 'flip': {'p': 0.5}, 'color_jitter': {'p': 0.5},
                         'gaussian_noise': {'p': 0.5}},
        'model': {'strategy': strategy},
        'optimizer': {'lr': 0.003},
        'schedule': {'epochs': 3, 'warmup_iters': 2},
        'train': {'batch_size': 4, 'num_workers': 0, 'seed': 7, 'log_every': 1, 'log_images': 1},
        'output': {'dir': str(out_dir)},
    })


def _trainer(cfg, root):
    data = read_dataset('kitti', root, mapping=ClassMapping(classes=['Car', 'Pedestrian'], unmapped='drop'))
    train, val = data.subset(range(8)), data.subset(range(8, 10))
    train_set = TrainingDataset(train, cfg.input, cfg.augmentation, augment=True, seed=cfg.train.seed)
    return Trainer(cfg, data.class_names, train_set, val, progress=False)


def test_resume_matches_uninterrupted_run(tmp_path):
    root = write_synthetic_kitti(tmp_path / 'data', num_images=10, width=80, height=64)
    full = _trainer(_config(tmp_path / 'full'), root)
    summary = full.fit()
    assert summary['iterations'] == 6 and (tmp_path / 'full/checkpoints/best.pt').is_file()

    first = _trainer(_config(tmp_path / 'split'), root)
    first.fit(stop_after_epoch=1)
    assert load_checkpoint(tmp_path / 'split/checkpoints/last.pt')['epoch'] == 1
    del first
    torch.manual_seed(12345)                     # a fresh process would not share the RNG state
    resumed = _trainer(_config(tmp_path / 'split'), root)
    resumed.fit(resume=True)
    assert resumed.iteration == 6

    a, b = full.model.state_dict(), resumed.model.state_dict()
    worst = max((a[k].float() - b[k].float()).abs().max().item() for k in a)
    assert worst < 1e-5, worst
    ea, eb = full.ema.module.state_dict(), resumed.ema.module.state_dict()
    assert max((ea[k].float() - eb[k].float()).abs().max().item() for k in ea) < 1e-5
    assert [h['train_loss'] for h in full.history] == [h['train_loss'] for h in resumed.history] or \
        max(abs(x['train_loss'] - y['train_loss']) for x, y in zip(full.history, resumed.history)) < 1e-5


def test_epoch_sampler_is_a_function_of_seed_and_epoch_and_splits_ranks():
    from aiat_training.train.sampler import EpochSampler

    a, b = EpochSampler(10, seed=3), EpochSampler(10, seed=3)
    a.set_epoch(2)
    b.set_epoch(2)
    assert list(a) == list(b) and sorted(a) == list(range(10))
    b.set_epoch(3)
    assert list(a) != list(b)
    full = list(a)
    a.set_epoch(2, start=4)
    assert list(a) == full[4:] and len(a) == 6
    ranks = [EpochSampler(10, 3, rank=r, world_size=3) for r in range(3)]
    for r in ranks:
        r.set_epoch(1)
    parts = [r.indices() for r in ranks]
    assert all(len(p) == 4 for p in parts) and set(sum(parts, [])) == set(range(10))
