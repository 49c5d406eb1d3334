"""The imported PyTorch NanoDet reproduces the original TF.js graph's outputs (TensorFlow reference)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from aiat_perception.assets import reference_file
from aiat_training.nanodet.importer import load_pretrained

CELLS = (2704, 676, 169)            # strides 8, 16, 32 at 416x416
SCORE_NAMES = ('Identity:0', 'Identity_1:0', 'Identity_2:0')
BOX_NAMES = ('Identity_3:0', 'Identity_4:0', 'Identity_5:0')
# float16 weights and a different summation order; a wrong layer gives ~1e-2 and more.
TOLERANCE = 1e-4


@pytest.fixture(scope='module')
def golden():
    return np.load(reference_file('nanodet', 'nanodet_tf_golden.npz'))


@pytest.fixture(scope='module')
def model():
    return load_pretrained(frozen_bn=True)


@pytest.mark.parametrize('photo', ['dog', 'horses'])
def test_outputs_match_tensorflow_reference(model, golden, photo):
    with torch.no_grad():
        cls_logits, box_logits = model(torch.from_numpy(golden[f'{photo}_input']))
    scores = torch.sigmoid(cls_logits).numpy()
    boxes = box_logits.numpy()
    assert scores.shape == (1, sum(CELLS), 80) and boxes.shape == (1, sum(CELLS), 44)
    start = 0
    worst = 0.0
    for cells, score_name, box_name in zip(CELLS, SCORE_NAMES, BOX_NAMES):
        for name, ours in ((score_name, scores), (box_name, boxes)):
            ref = golden[f'{photo}_out_{name}']
            part = ours[:, start:start + cells]
            assert part.shape == ref.shape, name
            diff = float(np.abs(part - ref).max())
            print(f'{photo} {name} {ref.shape}: max abs diff {diff:.3g}')
            worst = max(worst, diff)
            assert diff <= TOLERANCE, f'{photo} {name}: max abs diff {diff}'
        start += cells
    print(f'{photo}: worst max abs diff over all six outputs {worst:.3g}')


def test_dog_photo_top_classes(model, golden):
    with torch.no_grad():
        scores = torch.sigmoid(model(torch.from_numpy(golden['dog_input']))[0])[0]
    best = scores.max(dim=0).values
    names = dict(enumerate(model.class_names))
    found = {names[i]: float(best[i]) for i in torch.nonzero(best > 0.35).flatten().tolist()}
    assert {'bicycle', 'dog', 'truck'} <= set(found), found
