"""`aiat-train fit` on broken files ends in a one-line message naming the file, or skips and counts
per --on-error, never in a traceback (issue 10, defect 6); checkpoint writes are fsynced and
leftover temp files are removed."""
import os
from pathlib import Path

import pytest
import torch
import yaml

from aiat_training.cli.train import main
from aiat_training.data.synthetic import write_synthetic_kitti
from aiat_training.train import checkpoint as checkpoint_module
from aiat_training.train.checkpoint import load_checkpoint, save_checkpoint


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return write_synthetic_kitti(tmp_path_factory.mktemp('data') / 'kitti', num_images=8, width=80, height=64)


def _config(tmp_path, data_path, epochs=1, **data):
    cfg = {'data': {'format': 'kitti', 'path': str(data_path), **data},
           'class_mapping': {'classes': ['Car', 'Pedestrian'], 'unmapped': 'drop'},
           'split': {'train': 0.75, 'val': 0.25, 'test': 0.0, 'stratify': False},
           'input': {'height': 64, 'width': 64},
           'model': {'strategy': 'scratch'},
           'schedule': {'epochs': epochs, 'warmup_iters': 1},
           'train': {'batch_size': 2, 'num_workers': 0, 'log_images': 0},
           'output': {'dir': str(tmp_path / 'run')}}
    path = tmp_path / 'fit.yaml'
    path.write_text(yaml.safe_dump(cfg))
    return path


def _copy_data(src: Path, dst: Path) -> Path:
    for sub in ('image_2', 'label_2'):
        (dst / sub).mkdir(parents=True)
        for f in (src / sub).iterdir():
            (dst / sub / f.name).write_bytes(f.read_bytes())
    return dst


def _one_line_error(capsys, code, *names):
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and 'Traceback' not in err, err
    for name in names:
        assert str(name) in err, err
    return err


def test_resume_without_a_checkpoint_says_so(tmp_path, data_root, capsys):
    cfg = _config(tmp_path, data_root)
    err = _one_line_error(capsys, main(['fit', str(cfg), '--resume', '--quiet']), tmp_path / 'run/checkpoints')
    assert 'no checkpoint to resume' in err and 'without --resume' in err


def test_corrupt_last_pt_falls_back_to_best_then_stops_naming_both(tmp_path, data_root, capsys):
    cfg = _config(tmp_path, data_root, epochs=2)
    ckpts = tmp_path / 'run/checkpoints'
    # one epoch, as a killed run would leave it (last.pt and best.pt, epoch 1)
    cfg1 = yaml.safe_load(cfg.read_text())
    cfg1['schedule']['epochs'] = 1
    (tmp_path / 'fit1.yaml').write_text(yaml.safe_dump(cfg1))
    assert main(['fit', str(tmp_path / 'fit1.yaml'), '--quiet']) == 0
    capsys.readouterr()
    last = ckpts / 'last.pt'
    data = last.read_bytes()
    last.write_bytes(data[:len(data) // 2])                 # torn
    assert main(['fit', str(cfg), '--resume', '--quiet']) == 0
    err = capsys.readouterr().err
    assert f'{last}: not a readable checkpoint' in err and 'resuming from' in err and 'best.pt' in err, err
    assert load_checkpoint(last)['epoch'] == 2

    last.write_bytes(b'garbage')
    (ckpts / 'best.pt').write_bytes(b'\x80\x02garbage')
    err = _one_line_error(capsys, main(['fit', str(cfg), '--resume', '--quiet']), last, ckpts / 'best.pt')
    assert 'no intact checkpoint' in err


def test_leftover_tmp_files_are_removed_and_writes_are_fsynced(tmp_path, data_root, monkeypatch, capsys):
    cfg = _config(tmp_path, data_root)
    ckpts = tmp_path / 'run/checkpoints'
    ckpts.mkdir(parents=True)
    (ckpts / 'last.pt.tmp').write_bytes(b'half a checkpoint')
    (ckpts / 'best.pt.tmp').write_bytes(b'half a copy')

    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(('fsync', os.readlink(f'/proc/self/fd/{fd}')))
        return real_fsync(fd)

    def replace(src, dst):
        events.append(('replace', str(src), str(dst)))
        return real_replace(src, dst)

    monkeypatch.setattr(checkpoint_module.os, 'fsync', fsync)
    monkeypatch.setattr(checkpoint_module.os, 'replace', replace)
    assert main(['fit', str(cfg), '--quiet']) == 0
    assert 'removed' in capsys.readouterr().err
    assert sorted(p.name for p in ckpts.iterdir()) == ['best.pt', 'last.pt']
    for name in ('last.pt', 'best.pt'):
        tmp, final = str(ckpts / (name + '.tmp')), str(ckpts / name)
        i = events.index(('replace', tmp, final))
        assert ('fsync', tmp) in events[:i], events          # file contents durable before the rename
        assert ('fsync', str(ckpts)) in events[i + 1:], events   # and the rename durable after it


def test_a_failed_write_leaves_no_tmp_file(tmp_path):
    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError('disk full')
    with pytest.raises(TypeError):
        save_checkpoint(tmp_path / 'x.pt', model={'a': Unpicklable()})
    assert list(tmp_path.iterdir()) == []


def test_missing_data_directory_is_named(tmp_path, capsys):
    cfg = _config(tmp_path, tmp_path / 'nowhere')
    err = _one_line_error(capsys, main(['fit', str(cfg), '--quiet']), tmp_path / 'nowhere')
    assert 'does not exist' in err


def test_non_utf8_label_file_stops_or_is_skipped(tmp_path, data_root, capsys):
    root = _copy_data(data_root, tmp_path / 'kitti')
    bad = sorted((root / 'label_2').iterdir())[0]
    bad.write_bytes(b'Car 0 0 0 \xff\xfe 1 2 3\n')
    cfg = _config(tmp_path, root)
    err = _one_line_error(capsys, main(['fit', str(cfg), '--quiet']), bad)
    assert 'not UTF-8' in err
    assert main(['fit', str(cfg), '--quiet', '--on-error', 'skip']) == 0
    err = capsys.readouterr().err
    assert '1 broken input(s) skipped' in err and str(bad) in err, err


def test_non_utf8_config_file_is_named(tmp_path, capsys):
    cfg = tmp_path / 'fit.yaml'
    cfg.write_bytes(b'data:\n  path: caf\xe9\n')
    err = _one_line_error(capsys, main(['fit', str(cfg), '--quiet']), cfg)
    assert 'not UTF-8' in err and '0xe9' in err


def test_truncated_png_stops_or_is_skipped_in_the_first_epoch(tmp_path, data_root, capsys):
    root = _copy_data(data_root, tmp_path / 'kitti')
    cfg = _config(tmp_path, root)
    # the split puts 6 images in train: cut every one of them, so the first batch meets one
    images = sorted((root / 'image_2').iterdir())
    for image in images:
        data = image.read_bytes()
        image.write_bytes(data[:len(data) // 2])
    err = _one_line_error(capsys, main(['fit', str(cfg), '--quiet']))
    assert 'corrupt_image' in err and 'image_2' in err and '.png' in err
    assert main(['fit', str(cfg), '--quiet', '--on-error', 'skip']) == 0
    out, err = capsys.readouterr()
    assert 'skipped' in err and 'corrupt_image' in err, err
    assert torch.load(tmp_path / 'run/checkpoints/last.pt', weights_only=True)['epoch'] == 1
