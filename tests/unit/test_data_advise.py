"""Transfer-strategy advisor: the size x similarity table, and similarity measured from features."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from aiat_training.advise import STRATEGIES, advise, recommend
from aiat_training.config import InputSection
from aiat_training.data import DetectionDataset, Sample


@pytest.mark.parametrize('n, deep, early, conf, expected', [
    (200, 1.0, 1.0, 1.0, 'head_only'),
    (200, 6.0, 8.0, 0.9, 'early_layers'),
    (200, 1.0, 1.0, 0.2, 'early_layers'),          # detector finds nothing it knows
    (5000, 1.0, 1.0, 1.0, 'finetune_all'),
    (5000, 6.0, 8.0, 0.3, 'finetune_all'),  # different, but too few to train from scratch
    (50000, 6.0, 8.0, 0.3, 'scratch'),
])
def test_strategy_table(n, deep, early, conf, expected):
    strategy, reasons = recommend(n, deep, early, conf)
    assert strategy == expected
    assert str(n) in reasons[0] and f'{deep:.2f}x' in reasons[1]


def smooth_scene(rng):
    image = np.zeros((96, 128, 3), np.uint8)
    image[:] = rng.integers(60, 200, 3)
    cv2.circle(image, (int(rng.integers(20, 108)), int(rng.integers(20, 76))), 15,
               tuple(int(v) for v in rng.integers(0, 255, 3)), -1)
    return cv2.GaussianBlur(image, (9, 9), 3)


@pytest.fixture(scope='module')
def model():
    from aiat_training.nanodet import build_model
    torch.manual_seed(0)
    net = build_model(num_classes=3)
    net.init_weights()
    # one image at a time through a small net: intra-op threads only contend on a shared 2-core box
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield net.eval()
    torch.set_num_threads(threads)


def dataset_of(images, tmp_path):
    samples = []
    for i, image in enumerate(images):
        path = tmp_path / f'{i}.png'
        cv2.imwrite(str(path), image)
        samples.append(Sample(path, image.shape[1], image.shape[0], boxes=[[1, 1, 20, 20]], labels=[0]))
    return DetectionDataset(samples, ['a', 'b', 'c'])


def test_advise_reports_numbers_and_tells_domains_apart(model, tmp_path):
    rng = np.random.default_rng(0)
    reference = [smooth_scene(rng) for _ in range(12)]
    cfg = InputSection(height=96, width=128)
    same = advise(dataset_of([smooth_scene(rng) for _ in range(10)], tmp_path), model, cfg, reference=reference)
    noise = [rng.integers(0, 256, (96, 128, 3), dtype=np.uint8) for _ in range(10)]
    (tmp_path / 'n').mkdir()
    other = advise(dataset_of(noise, tmp_path / 'n'), model, cfg, reference=reference)
    for advice in (same, other):
        assert advice.strategy in STRATEGIES
        for key in ('images', 'feature_ratio_deep', 'feature_ratio_early', 'confidence_ratio',
                    'class_entropy_dataset', 'reference_images'):
            assert key in advice.numbers
        text = advice.format()
        assert 'recommended: ' in text and 'feature_ratio_deep' in text
    assert same.numbers['feature_ratio_deep'] < other.numbers['feature_ratio_deep']
    assert same.numbers['feature_ratio_early'] < 3 < other.numbers['feature_ratio_early']
    assert other.strategy == 'early_layers'


def test_aiat_train_advise_command(tmp_path):
    """`aiat-train advise` end to end: dataset flags in, strategy and numbers out (and JSON)."""
    import json
    import subprocess
    import sys

    from aiat_training.data.synthetic import render_kitti_dataset
    render_kitti_dataset(tmp_path / 'kitti', frames=6, size=(320, 128))
    out = subprocess.run([sys.executable, '-m', 'aiat_training.cli.train', 'advise', '--format', 'kitti',
                          '--path', str(tmp_path / 'kitti'), '--max-images', '6', '--json',
                          str(tmp_path / 'advice.json')], capture_output=True, text=True,
                         env={**__import__('os').environ, 'OMP_NUM_THREADS': '1'}, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith('recommended: ') and 'feature_ratio_deep' in out.stdout
    advice = json.loads((tmp_path / 'advice.json').read_text())
    from aiat_training.advise import STRATEGIES
    assert advice['strategy'] in STRATEGIES
