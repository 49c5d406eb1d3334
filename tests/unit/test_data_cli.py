"""``aiat-data`` report / split / augment-preview on a small rendered KITTI dataset."""
from __future__ import annotations

import json

import cv2
import pytest

from aiat_training.cli.data import main
from aiat_training.data.synthetic import render_kitti_dataset


@pytest.fixture(scope='module')
def kitti(tmp_path_factory):
    return render_kitti_dataset(tmp_path_factory.mktemp('kitti'), frames=12, size=(320, 120), sequences=3)


def test_report(kitti, tmp_path, capsys):
    assert main(['report', '--format', 'kitti', '--path', str(kitti), '--out', str(tmp_path)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary['images'] == 12 and summary['issues'] == 0
    for name in ('report.md', 'report.html', 'report.json', 'boxes_per_class.png'):
        assert (tmp_path / name).is_file()


def test_split_with_config_grouped_and_reproducible(kitti, tmp_path, capsys):
    config = tmp_path / 'train.yaml'
    config.write_text(f'data: {{format: kitti, path: {kitti}, sequence_regex: "^(\\\\d{{2}})"}}\n'
                      'split: {seed: 5, group_by_sequence: true}\n')
    for out in ('a', 'b'):
        assert main(['split', '--config', str(config), '--out', str(tmp_path / out)]) == 0
    summary = json.loads(capsys.readouterr().out.split('\n}\n')[0] + '\n}')
    assert summary['sequences'] == {'train': 1, 'val': 1, 'test': 1}
    for name in ('train.txt', 'val.txt', 'test.txt'):
        assert (tmp_path / 'a' / name).read_text() == (tmp_path / 'b' / name).read_text()
    assert sum(len((tmp_path / 'a' / n).read_text().split()) for n in ('train.txt', 'val.txt', 'test.txt')) == 12


def test_augment_preview(kitti, tmp_path):
    out = tmp_path / 'sheet.png'
    assert main(['augment-preview', '--format', 'kitti', '--path', str(kitti), '--out', str(out),
                 '--samples', '2', '--variants', '3']) == 0
    sheet = cv2.imread(str(out))
    assert sheet.shape[1] == 4 * 260 and sheet.shape[0] == 2 * 260


def test_bad_input_exits_1_naming_the_problem(kitti, tmp_path, capsys):
    broken = tmp_path / 'k'
    render_kitti_dataset(broken, frames=2, size=(100, 60))
    label = sorted((broken / 'label_2').glob('*.txt'))[0]
    label.write_text(label.read_text() + 'Car 0 0 0 1 1\n')
    args = ['report', '--format', 'kitti', '--path', str(broken), '--out', str(tmp_path / 'r')]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert label.name in err and 'malformed' in err
    assert main(args + ['--on-error', 'skip']) == 0
    assert '1 broken input(s) skipped' in capsys.readouterr().err
    config = tmp_path / 'bad.yaml'
    config.write_text('augmentation: {flip: {p: 2}}\n')
    assert main(args + ['--config', str(config)]) == 1
    assert 'bad.yaml: augmentation.flip.p' in capsys.readouterr().err


def test_flags_are_validated_like_the_config(tmp_path, capsys):
    assert main(['report', '--format', 'coco', '--path', str(tmp_path / 'a.json'), '--out', str(tmp_path)]) == 1
    assert 'data.images: required for format coco' in capsys.readouterr().err
    assert main(['split', '--out', str(tmp_path)]) == 1
    assert 'data.path' in capsys.readouterr().err
