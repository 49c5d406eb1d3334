"""The DistributedDataParallel path, run for real with torchrun on CPU (gloo, 2 processes)."""
import os
import subprocess
import sys
from pathlib import Path

import yaml

from aiat_training.train.checkpoint import load_checkpoint
from aiat_training.data.synthetic import write_synthetic_kitti

REPO = Path(__file__).resolve().parents[2]
TORCHRUN = Path(sys.executable).with_name('torchrun')


def test_torchrun_two_processes_on_cpu(tmp_path):
    root = write_synthetic_kitti(tmp_path / 'data', num_images=20, width=96, height=64)
    cfg = {'data': {'format': 'kitti', 'path': str(root)},
           'class_mapping': {'classes': ['Car', 'Pedestrian'], 'unmapped': 'drop'},
           'split': {'train': 0.8, 'val': 0.2, 'test': 0.0, 'stratify': False},
           'input': {'height': 64, 'width': 96}, 'augmentation': {'enabled': False},
           'model': {'strategy': 'scratch'}, 'schedule': {'epochs': 2, 'warmup_iters': 1},
           'train': {'batch_size': 4, 'num_workers': 0, 'device': 'cpu', 'log_images': 0},
           'output': {'dir': str(tmp_path / 'run')}}
    (tmp_path / 'fit.yaml').write_text(yaml.safe_dump(cfg))
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run([str(TORCHRUN), '--nproc_per_node=2', '-m', 'aiat_training.cli.train', 'fit',
                           str(tmp_path / 'fit.yaml'), '--quiet'], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ckpt = load_checkpoint(tmp_path / 'run/checkpoints/last.pt')
    # 16 training images over 2 ranks of batch 4: 2 steps per epoch
    assert ckpt['epoch'] == 2 and ckpt['iteration'] == 4
    assert 'val_mAP' in ckpt['history'][-1]
    assert not any(k.startswith('module.') for k in ckpt['model'])       # saved unwrapped
