"""aiat-train end to end on a tiny synthetic KITTI dataset: fit (killed after a checkpoint),
resume, eval through the inference core, export, and the bundle detects in the Detector."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from aiat_perception.inference.detector import Detector
from aiat_perception.metrics.matching import iou_matrix
from aiat_training.cli.train import main
from aiat_training.data.synthetic import write_synthetic_kitti
from aiat_training.train.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[2]


def _config(tmp_path, data_root):
    cfg = {
        'data': {'format': 'kitti', 'path': str(data_root)},
        'class_mapping': {'classes': ['car', 'person'], 'map': {'Car': 'car', 'Pedestrian': 'person'},
                          'unmapped': 'drop'},
        'split': {'train': 0.75, 'val': 0.25, 'test': 0.0, 'stratify': False},
        'input': {'height': 96, 'width': 128},
        'augmentation': {'enabled': True, 'crop': {'p': 0.0}, 'cutout': {'p': 0.0}},
        'model': {'strategy': 'finetune_all'},
        'optimizer': {'lr': 0.002},
        'schedule': {'epochs': 3, 'warmup_iters': 3},
        'train': {'batch_size': 4, 'num_workers': 1, 'log_every': 1, 'log_images': 2},
        'output': {'dir': str(tmp_path / 'run')},
    }
    path = tmp_path / 'fit.yaml'
    path.write_text(yaml.safe_dump(cfg))
    return path


def _fit_and_kill(cfg_path, last):
    """Start a real `aiat-train fit` process and SIGKILL it once the first checkpoint exists."""
    proc = subprocess.Popen([sys.executable, '-m', 'aiat_training.cli.train', 'fit', str(cfg_path), '--quiet'],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 240
    while not last.is_file() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    killed = proc.poll() is None
    if killed:
        os.kill(proc.pid, signal.SIGKILL)
    out = proc.communicate(timeout=30)[0].decode(errors='replace')
    assert last.is_file(), out
    return killed


def test_fit_kill_resume_eval_export_detect(tmp_path):
    data_root = write_synthetic_kitti(tmp_path / 'data', num_images=32, width=160, height=120, seed=3)
    cfg_path = _config(tmp_path, data_root)
    last = tmp_path / 'run/checkpoints/last.pt'

    _fit_and_kill(cfg_path, last)
    assert load_checkpoint(last)['epoch'] >= 1
    assert main(['fit', str(cfg_path), '--resume', '--quiet']) == 0
    ckpt = load_checkpoint(last)
    assert ckpt['epoch'] == 3 and ckpt['iteration'] == 3 * 6
    history = ckpt['history']
    assert [h['epoch'] for h in history] == [1, 2, 3]
    assert history[-1]['train_loss'] < history[0]['train_loss']          # loss falls
    assert (tmp_path / 'run/checkpoints/best.pt').is_file()
    assert list((tmp_path / 'run/tensorboard').glob('events.out.tfevents.*'))

    # eval: checkpoint -> bundle -> Detector (ONNX Runtime) -> pycocotools
    eval_dir = tmp_path / 'eval'
    assert main(['eval', '--checkpoint', str(last), '--config', str(cfg_path), '--split', 'val',
                 '--out', str(eval_dir)]) == 0
    metrics = json.loads((eval_dir / 'metrics.json').read_text())
    assert metrics['images'] == 8 and metrics['mAP50'] > 0.05
    assert set(metrics['per_class']) == {'car', 'person'}
    assert (eval_dir / 'pr_curves.png').is_file() and (eval_dir / 'confusion.png').is_file()
    assert 0 < metrics['operating_point']['mean_iou_of_matches'] <= 1

    # export with the ONNX Runtime vs PyTorch check; the bundle detects in the inference core
    bundle_dir = tmp_path / 'bundle'
    assert main(['export', str(tmp_path / 'run/checkpoints/best.pt'), '--out', str(bundle_dir)]) == 0
    check = json.loads((bundle_dir / 'export_check.json').read_text())
    assert check['passed'] and check['onnxruntime_vs_torch']['scores_max_abs_diff'] < 1e-3
    detector = Detector(bundle_dir, score_threshold=0.2)
    assert list(detector.classes) == ['car', 'person']
    import cv2
    hits = 0
    for label in sorted((data_root / 'label_2').glob('*.txt'))[:8]:
        image = cv2.imread(str(data_root / 'image_2' / f'{label.stem}.png'))
        gt = np.array([[float(v) for v in line.split()[4:8]] for line in label.read_text().splitlines()])
        det = detector.detect_one(image)
        if len(det) and iou_matrix(det.boxes, gt).max() > 0.5:
            hits += 1
    assert hits >= 4, hits
