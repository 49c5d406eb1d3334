"""Torch training dataset: network-input tensors, boxes in network pixels, collate, workers."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from aiat_training.config import AugmentationSection, InputSection
from aiat_training.data import DetectionDataset, Sample
from aiat_training.data.loader import TrainingDataset, collate, make_loader


@pytest.fixture
def dataset(tmp_path):
    samples = []
    for i in range(4):
        image = np.full((100, 200, 3), (10 * i, 100, 200), np.uint8)
        image[20:60, 40:120] = (0, 0, 255)
        path = tmp_path / f'{i}.png'
        cv2.imwrite(str(path), image)
        samples.append(Sample(path, 200, 100, boxes=[[40, 20, 120, 60]], labels=[1],
                              ignore=[[0, 0, 10, 10]]))
    return DetectionDataset(samples, ['a', 'b'])


def test_without_augmentation_stretches_and_normalises(dataset):
    cfg = InputSection(height=64, width=96)
    item = TrainingDataset(dataset, cfg, augment=False)[2]
    assert item['image'].shape == (3, 64, 96) and item['image'].dtype == torch.float32
    sx, sy = 96 / 200, 64 / 100
    assert item['scale'] == pytest.approx((sx, sy)) and item['orig_size'] == (100, 200)
    np.testing.assert_allclose(item['boxes'].numpy(), [[40 * sx, 20 * sy, 120 * sx, 60 * sy]], rtol=1e-6)
    np.testing.assert_allclose(item['ignore'].numpy(), [[0, 0, 10 * sx, 10 * sy]], rtol=1e-6)
    assert item['labels'].tolist() == [1]
    # BGR channel order, (pixel - mean) / std, at a background pixel
    expected = (np.array([20, 100, 200]) - np.array(cfg.mean)) / np.array(cfg.std)
    np.testing.assert_allclose(item['image'][:, 2, 2].numpy(), expected, rtol=1e-5)
    # inside the red object
    red = (np.array([0, 0, 255]) - np.array(cfg.mean)) / np.array(cfg.std)
    np.testing.assert_allclose(item['image'][:, 25, 48].numpy(), red, rtol=1e-5)


def test_rgb_order(dataset):
    cfg = InputSection(height=64, width=96, color_order='RGB', mean=[0, 0, 0], std=[1, 1, 1])
    item = TrainingDataset(dataset, cfg, augment=False)[1]
    np.testing.assert_allclose(item['image'][:, 2, 2].numpy(), [200, 100, 10])


def test_augmented_boxes_stay_in_the_input_and_collate(dataset):
    aug = AugmentationSection.model_validate({'rotation': {'p': 1.0, 'degrees': 10}, 'crop': {'p': 1.0}})
    train = TrainingDataset(dataset, InputSection(height=64, width=96), aug, seed=0)
    batch = collate([train[i] for i in range(4)])
    assert batch['image'].shape == (4, 3, 64, 96)
    for boxes, labels in zip(batch['boxes'], batch['labels']):
        assert boxes.shape[1] == 4 and len(boxes) == len(labels)
        if len(boxes):
            assert boxes[:, [0, 2]].min() >= 0 and boxes[:, [0, 2]].max() <= 96
            assert boxes[:, [1, 3]].min() >= 0 and boxes[:, [1, 3]].max() <= 64


@pytest.mark.timeout(60)
def test_loader_with_two_workers_after_opencv_ran_in_the_parent(dataset):
    TrainingDataset(dataset, InputSection(height=64, width=64), AugmentationSection())[0]
    train = TrainingDataset(dataset, InputSection(height=64, width=64), AugmentationSection())
    loader = make_loader(train, batch_size=2, num_workers=2, seed=0, timeout=30)
    batches = list(loader)
    assert len(batches) == 2 and batches[0]['image'].shape == (2, 3, 64, 64)
    assert sorted(i for b in batches for i in b['index']) == [0, 1, 2, 3]
