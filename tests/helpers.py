"""Small helpers shared by test modules (no fixtures: those live in conftest.py)."""
from __future__ import annotations

from pathlib import Path

import yaml


def write_kitti_fit_config(tmp_path: Path, data_root: Path, **sections) -> Path:
    """``tmp_path/fit.yaml`` training on a synthetic KITTI set: car and person, a 75/25 split, a
    96x128 input, light augmentation, all layers fine-tuned; ``sections`` add or replace whole sections."""
    cfg = {
        'data': {'format': 'kitti', 'path': str(data_root)},
        'class_mapping': {'classes': ['car', 'person'], 'map': {'Car': 'car', 'Pedestrian': 'person'},
                          'unmapped': 'drop'},
        'split': {'train': 0.75, 'val': 0.25, 'test': 0.0, 'stratify': False},
        'input': {'height': 96, 'width': 128},
        'augmentation': {'enabled': True, 'crop': {'p': 0.0}, 'cutout': {'p': 0.0}},
        'model': {'strategy': 'finetune_all'},
        **sections,
    }
    path = tmp_path / 'fit.yaml'
    path.write_text(yaml.safe_dump(cfg))
    return path
