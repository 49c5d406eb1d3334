"""Non-UTF-8 label/calib/config files and truncated images: a one-line error naming the file, or
(--on-error skip) the file left out and counted; `aiat-data report` decodes every image fully
(issue 10, defect 6)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from aiat_training.cli.data import main
from aiat_training.config import ConfigError, load_config
from aiat_training.data.classmap import ClassMapping, ClassMappingError
from aiat_training.data.issues import DatasetError
from aiat_training.data.readers import read_dataset
from aiat_training.data.readers.kitti import read_calib
from aiat_training.data.synthetic import render_kitti_dataset

NOT_UTF8 = b'Car 0.00 0 -1.5 \xff\xfe 10 50 40 1.5 1.6 3.9 1 1.8 10 0.1\n'


@pytest.fixture()
def kitti(tmp_path):
    return render_kitti_dataset(tmp_path / 'kitti', frames=4, size=(160, 90))


def _write_png(path, w=40, h=30):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), 128, np.uint8)).save(path)


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def test_kitti_non_utf8_label_raises_naming_the_file_or_is_skipped(kitti):
    labels = sorted((kitti / 'label_2').glob('*.txt'))
    labels[1].write_bytes(NOT_UTF8)
    with pytest.raises(DatasetError, match=rf'{labels[1].name}: malformed_file: label file: not UTF-8 text '
                                          r'\(byte 0xff at offset 16\)'):
        read_dataset('kitti', kitti)
    data = read_dataset('kitti', kitti, on_error='skip')
    assert len(data) == 3 and [i.kind for i in data.issues] == ['malformed_file']
    assert data.issues[0].file == str(labels[1])


def test_kitti_non_utf8_calib(kitti):
    calib = kitti / 'calib' / sorted((kitti / 'label_2').glob('*.txt'))[0].name
    calib.parent.mkdir(exist_ok=True)
    calib.write_bytes(b'P2: 7.2e+02 0 \xe9\n')
    with pytest.raises(DatasetError, match=rf'{calib.name}: malformed_file: calibration file: not UTF-8'):
        read_dataset('kitti', kitti)
    with pytest.raises(DatasetError, match='calibration file: not UTF-8'):
        read_calib(calib)
    data = read_dataset('kitti', kitti, on_error='skip')
    assert len(data) == 4 and len(data.issues) == 1 and 'calib' not in data.samples[0].meta


def test_yolo_non_utf8_label_and_data_yaml(tmp_path):
    _write_png(tmp_path / 'images/train/a.png')
    _write_png(tmp_path / 'images/train/b.png')
    (tmp_path / 'labels/train').mkdir(parents=True)
    (tmp_path / 'labels/train/a.txt').write_text('0 0.5 0.5 0.2 0.2\n')
    (tmp_path / 'labels/train/b.txt').write_bytes(b'0 0.5 0.5 0.2 \x9c\n')
    data_yaml = tmp_path / 'data.yaml'
    data_yaml.write_text('path: .\ntrain: images/train\nnames: [car]\n')
    with pytest.raises(DatasetError, match='b.txt: malformed_file: label file: not UTF-8'):
        read_dataset('yolo', data_yaml)
    data = read_dataset('yolo', data_yaml, on_error='skip')
    assert len(data) == 1 and data.box_count() == 1 and len(data.issues) == 1
    data_yaml.write_bytes(b'path: .\ntrain: images/train\nnames: [caf\xe9]\n')
    with pytest.raises(DatasetError, match=r'data.yaml: data YAML: not UTF-8 text \(byte 0xe9'):
        read_dataset('yolo', data_yaml, on_error='skip')


def test_coco_bdd_cityscapes_voc_non_utf8(tmp_path):
    bad = b'{"images": [], "caf\xe9": 1}'
    (tmp_path / 'coco.json').write_bytes(bad)
    (tmp_path / 'bdd.json').write_bytes(bad)
    for fmt, path in (('coco', tmp_path / 'coco.json'), ('bdd100k', tmp_path / 'bdd.json')):
        with pytest.raises(DatasetError, match=rf'{path.name}: malformed_file'):
            read_dataset(fmt, path, images=tmp_path)
        assert len(read_dataset(fmt, path, images=tmp_path, on_error='skip').issues) == 1
    city = tmp_path / 'cs/gtFine/train/aachen/aachen_000000_000019_gtFine_polygons.json'
    city.parent.mkdir(parents=True)
    city.write_bytes(bad)
    _write_png(tmp_path / 'cs/leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png')
    with pytest.raises(DatasetError, match=rf'{city.name}: malformed_file'):
        read_dataset('cityscapes', tmp_path / 'cs')
    voc = tmp_path / 'voc/Annotations/x.xml'
    voc.parent.mkdir(parents=True)
    voc.write_bytes(b'<annotation><filename>x.jpg</filename><object><name>caf\xe9</name></object></annotation>')
    with pytest.raises(DatasetError, match=r'x.xml(:\d+)?: malformed_file'):
        read_dataset('voc', tmp_path / 'voc')
    assert len(read_dataset('voc', tmp_path / 'voc', on_error='skip').issues) == 1


def test_non_utf8_config_and_class_map_are_named(tmp_path):
    config = tmp_path / 'train.yaml'
    config.write_bytes(b'data: {path: caf\xe9}\n')
    with pytest.raises(ConfigError, match=r'train.yaml: not UTF-8 text \(byte 0xe9 at offset 16\)'):
        load_config(config)
    mapping = tmp_path / 'map.yaml'
    mapping.write_bytes(b'classes: [\xff]\n')
    with pytest.raises(ClassMappingError, match=r'map.yaml: not UTF-8 text \(byte 0xff'):
        ClassMapping.from_yaml(mapping)


def test_cli_non_utf8_label_one_line_or_skipped(kitti, tmp_path, capsys):
    label = sorted((kitti / 'label_2').glob('*.txt'))[0]
    label.write_bytes(NOT_UTF8)
    args = ['report', '--format', 'kitti', '--path', str(kitti), '--out', str(tmp_path / 'r'), '--no-plots']
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(label) in err and 'not UTF-8' in err, err
    assert main(args + ['--on-error', 'skip']) == 0
    out, err = capsys.readouterr()
    assert '1 broken input(s) skipped' in err and json.loads(out)['images'] == 3


@pytest.mark.parametrize('suffix', ['.png', '.jpg'])
def test_report_finds_truncated_images(tmp_path, capsys, suffix):
    root = render_kitti_dataset(tmp_path / 'kitti', frames=4, size=(160, 90))
    images = sorted((root / 'image_2').glob('*.png'))
    if suffix == '.jpg':          # the same dataset with JPEG images
        for png in images:
            Image.open(png).convert('RGB').save(png.with_suffix('.jpg'), quality=90)
            png.unlink()
        images = sorted((root / 'image_2').glob('*.jpg'))
    _truncate(images[2])
    args = ['report', '--format', 'kitti', '--path', str(root), '--out', str(tmp_path / 'r'), '--no-plots']
    assert main(args + ['--no-verify-images']) == 0              # headers alone do not show it
    assert json.loads(capsys.readouterr().out)['issues'] == 0
    assert main(args) == 1                                       # verification is on by default
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(images[2]) in err and 'corrupt_image' in err, err
    assert main(args + ['--on-error', 'skip']) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)['images'] == 3 and json.loads(out)['issues'] == 1
    report = json.loads((tmp_path / 'r/report.json').read_text())
    assert report['issues']['by_kind'] == {'corrupt_image': 1}
    assert report['issues']['first'][0]['file'] == str(images[2])
