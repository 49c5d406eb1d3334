"""Fine-tuned bundles are flexible: a short fine-tuning run at 96x96, exported by `aiat-train export`,
gives a bundle with dynamic height and width (size_multiple = the largest stride, resize keep_aspect
by default), and PyTorch and ONNX Runtime agree through the vehicle's Detector for every resize mode
and for an input size other than the trained one (96x160). A model that cannot be flexible, or an
export asked to be fixed, gives a fixed bundle with a note."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from aiat_perception.assets import darknet_image
from aiat_perception.inference import Detector
from aiat_perception.inference.bundle import load_bundle
from aiat_training.cli.train import main
from aiat_training.config import ConfigError
from aiat_training.data.synthetic import write_synthetic_kitti
from aiat_training.nanodet.export import inference_module
from aiat_training.train.checkpoint import load_checkpoint
from aiat_training.train.export import export_settings, flexible_problem, other_size
from aiat_training.train.trainer import model_from_checkpoint
from tests.helpers import write_kitti_fit_config

MODES = ('stretch', 'letterbox', 'keep_aspect')
TRAINED = (96, 96)


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    """A fine-tuned checkpoint (COCO start, two iterations at 96x96) and its default export."""
    tmp = tmp_path_factory.mktemp('flex-train')
    data_root = write_synthetic_kitti(tmp / 'data', num_images=12, width=200, height=120, seed=5)
    cfg = write_kitti_fit_config(
        tmp, data_root, input={'height': TRAINED[0], 'width': TRAINED[1]},
        schedule={'epochs': 1, 'warmup_iters': 1},
        train={'batch_size': 4, 'num_workers': 0, 'max_iters_per_epoch': 2, 'eval_every': 0,
               'log_images': 0}, output={'dir': str(tmp / 'run')})
    assert main(['fit', str(cfg), '--quiet']) == 0
    checkpoint = tmp / 'run/checkpoints/last.pt'
    bundle_dir = tmp / 'bundle'
    assert main(['export', str(checkpoint), '--out', str(bundle_dir)]) == 0
    model = model_from_checkpoint(load_checkpoint(checkpoint), prefer_ema=True)
    images = [np.ascontiguousarray(__import__('cv2').imread(str(p)))
              for p in sorted((data_root / 'image_2').glob('*.png'))[:4]]
    images.append(__import__('cv2').imread(str(darknet_image('dog.jpg'))))
    return {'tmp': tmp, 'checkpoint': checkpoint, 'bundle': load_bundle(bundle_dir),
            'module': inference_module(model.eval()), 'model': model, 'images': images}


def test_default_export_is_flexible_keep_aspect_and_checked_at_two_sizes(run):
    bundle = run['bundle']
    spec = bundle.input
    assert (spec.height, spec.width) == TRAINED
    assert spec.flexible and spec.size_multiple == 32 and spec.resize == 'keep_aspect'
    assert bundle.outputs['scores'].shape[1] == 'cells'
    check = json.loads((bundle.path / 'export_check.json').read_text())
    assert check['passed'] and check['notes'] == []
    assert check['input'] == {'height': 96, 'width': 96, 'flexible': True, 'size_multiple': 32,
                              'resize': 'keep_aspect'}
    sizes = [c['size'] for c in check['onnxruntime_vs_torch_per_size']]
    assert sizes == [[96, 96], list(other_size(96, 96, 32))] == [[96, 96], [128, 160]]
    assert all(c['scores_max_abs_diff'] < 1e-3 for c in check['onnxruntime_vs_torch_per_size'])
    assert bundle.provenance['trained_resize'] == 'stretch'


@pytest.mark.parametrize('mode', MODES)
def test_torch_and_onnxruntime_agree_through_the_detector(run, mode):
    bundle, module = run['bundle'], run['module']
    options = dict(resize=mode, score_threshold=0.05, pixel_budget=96 * 160)
    via_ort = Detector(bundle, **options)
    via_torch = Detector(bundle, backend='torch', module=module, device='cpu', **options)
    found = 0
    for image in run['images']:
        batch, _ = via_ort.preprocessor(image)
        h, w = image.shape[:2]
        if mode != 'keep_aspect':
            assert batch.shape[2:] == TRAINED
        elif (w, h) == (200, 120):
            assert batch.shape[2:] == (96, 160)         # a flexible size other than the trained one
        a, b = via_torch.backend.run(batch), via_ort.backend.run(batch)
        for key in a:
            np.testing.assert_allclose(a[key], b[key], atol=1e-4)
        d_torch, d_ort = via_torch.detect_one(image), via_ort.detect_one(image)
        assert d_torch.labels == d_ort.labels
        np.testing.assert_allclose(d_torch.scores, d_ort.scores, atol=1e-3)
        np.testing.assert_allclose(d_torch.boxes, d_ort.boxes, atol=0.5)
        found += len(d_ort)
    assert found >= 3, f'{mode}: too few detections ({found}) for the comparison to mean anything'


def test_raw_outputs_agree_at_a_size_the_model_was_not_trained_at(run):
    detector = Detector(run['bundle'])
    batch = np.random.default_rng(1).normal(0, 1, (2, 3, 96, 160)).astype(np.float32)
    got = detector.backend.run(batch)
    with torch.no_grad():
        scores, boxes = run['module'](torch.from_numpy(batch))
    assert got['scores'].shape == (2, detector.decoder_for(96, 160).num_cells, 2)
    np.testing.assert_allclose(got['scores'], scores.numpy(), atol=1e-4)
    np.testing.assert_allclose(got['box_dist'], boxes.numpy(), atol=1e-4)


def test_fixed_export_on_request_letterboxes_with_a_note(run):
    out = run['tmp'] / 'fixed'
    assert main(['export', str(run['checkpoint']), '--out', str(out), '--fixed']) == 0
    spec = load_bundle(out).input
    assert not spec.flexible and spec.resize == 'letterbox' and (spec.height, spec.width) == TRAINED
    check = json.loads((out / 'export_check.json').read_text())
    assert check['passed'] and len(check['onnxruntime_vs_torch_per_size']) == 1
    assert any('keep_aspect needs a flexible bundle' in n for n in check['notes'])
    out = run['tmp'] / 'stretch'
    assert main(['export', str(run['checkpoint']), '--out', str(out), '--resize', 'stretch']) == 0
    spec = load_bundle(out).input
    assert spec.flexible and spec.resize == 'stretch'


class FixedHead(nn.Module):
    """Not fully convolutional: a Linear layer over the whole trained feature map."""
    strides = (8, 16, 32)

    def __init__(self, height=96, width=96):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=32, padding=1)
        self.cells = sum((height // s) * (width // s) for s in self.strides)
        self.fc = nn.Linear(4 * (height // 32) * (width // 32), self.cells * 2)

    def forward(self, x):
        y = self.fc(self.conv(x).flatten(1)).view(len(x), self.cells, 2)
        return y, y


def test_a_model_that_cannot_take_other_sizes_is_not_flexible(run):
    assert flexible_problem(run['model'], 96, 96) is None
    problem = flexible_problem(FixedHead(), 96, 96)
    assert problem.startswith('it does not run at 128x160 (RuntimeError: ')
    assert flexible_problem(FixedHead(), 80, 96) == \
        'the trained size 80x96 is not a multiple of the largest stride 32'


def test_export_settings_come_from_the_run_config_and_are_validated():
    assert export_settings({}) == ('keep_aspect', 'auto')
    assert export_settings({'export': {'resize': 'stretch', 'flexible': False}}) == ('stretch', False)
    assert export_settings({'export': {'resize': 'stretch'}}, resize='letterbox', flexible=True) == \
        ('letterbox', True)
    with pytest.raises(ConfigError, match='resize'):
        export_settings({'export': {'resize': 'squash'}})
    with pytest.raises(ConfigError, match='flexible'):
        export_settings({'export': {'flexible': 'sometimes'}})
