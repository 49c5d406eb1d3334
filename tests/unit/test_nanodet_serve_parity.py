"""Train/serve parity per resize mode: the PyTorch model and ONNX Runtime through the vehicle
Detector give the same outputs and detections, for stretch, letterbox and keep_aspect inputs (a
flexible size per camera resolution), and the training path (resize, then fill) builds the same
tensor as the vehicle's one-step preprocessing."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from aiat_perception.assets import darknet_image, shared_data
from aiat_perception.inference import Detector
from aiat_perception.inference.bundle import load_bundle
from aiat_perception.inference.preprocess import Preprocessor
from aiat_training.nanodet.export import inference_module
from aiat_training.nanodet.importer import load_pretrained

MODES = ('stretch', 'letterbox', 'keep_aspect')


@pytest.fixture(scope='module')
def coco():
    from aiat_perception.cli.detect import ensure_default_bundle
    bundle = load_bundle(ensure_default_bundle(quiet=True))
    assert bundle.input.flexible and bundle.input.resize == 'keep_aspect'
    return bundle, inference_module(load_pretrained(frozen_bn=True).eval())


@pytest.fixture(scope='module')
def images():
    kitti = cv2.imread(str(shared_data('kitti_object', 'training', 'image_2', '000134.png')))
    return {'kitti': kitti, 'dog': cv2.imread(str(darknet_image('dog.jpg')))}


# keep_aspect input sizes (height, width) of KITTI's 1242x375 and dog.jpg's 768x576 frames: with the
# pretrained bundle's max_stretch 4:3 (the 4:3 photo gets the trained square), and without stretch
INPUT_SIZES = {('keep_aspect', 4.0 / 3.0): {'kitti': (256, 640), 'dog': (416, 416)},
               ('keep_aspect', 1.0): {'kitti': (224, 768), 'dog': (352, 480)}}


@pytest.mark.parametrize('mode,max_stretch', [('stretch', None), ('letterbox', None),
                                              ('keep_aspect', 4.0 / 3.0), ('keep_aspect', 1.0)])
def test_torch_model_and_onnxruntime_agree_through_the_detector(coco, images, mode, max_stretch):
    import dataclasses
    bundle, module = coco
    if max_stretch is not None:
        assert bundle.input.max_stretch == pytest.approx(4.0 / 3.0)
        bundle = dataclasses.replace(bundle, input=dataclasses.replace(bundle.input,
                                                                       max_stretch=max_stretch))
    via_ort = Detector(bundle, resize=mode, score_threshold=0.3)
    via_torch = Detector(bundle, backend='torch', module=module, device='cpu', resize=mode,
                         score_threshold=0.3)
    for name, image in images.items():
        batch, _ = via_ort.preprocessor(image)
        sizes = INPUT_SIZES.get((mode, max_stretch), {'kitti': (416, 416), 'dog': (416, 416)})
        assert batch.shape[2:] == sizes[name]
        a, b = via_torch.backend.run(batch), via_ort.backend.run(batch)
        for key in a:
            np.testing.assert_allclose(a[key], b[key], atol=2e-4)     # float32 summation order
        d_torch, d_ort = via_torch.detect_one(image), via_ort.detect_one(image)
        assert d_torch.labels == d_ort.labels, name
        np.testing.assert_allclose(d_torch.boxes, d_ort.boxes, atol=0.05)
        np.testing.assert_allclose(d_torch.scores, d_ort.scores, atol=1e-4)


@pytest.mark.parametrize('mode', MODES)
def test_training_resize_then_fill_is_the_vehicle_preprocessing(coco, images, mode):
    import dataclasses
    spec = dataclasses.replace(coco[0].input, resize=mode)
    pre = Preprocessor(spec)
    for image in images.values():
        tensor, (transform,) = pre(image)
        resized, train_transform = pre.resize(image)
        assert train_transform == transform and resized.shape[:2] == tensor.shape[2:]
        out = np.empty_like(tensor[0])
        pre.fill(out, resized)
        np.testing.assert_array_equal(out, tensor[0])


def test_flexible_model_runs_any_multiple_of_the_stride(coco):
    bundle, module = coco
    via_ort = Detector(bundle)
    rng = np.random.default_rng(0)
    for h, w in ((96, 640), (320, 192)):
        batch = rng.normal(0, 1, (1, 3, h, w)).astype(np.float32)
        out = via_ort.backend.run(batch)
        with torch.no_grad():
            ref = module(torch.from_numpy(batch))
        cells = via_ort.decoder_for(h, w).num_cells
        assert out['scores'].shape == (1, cells, 80)
        np.testing.assert_allclose(out['scores'], ref[0].numpy(), atol=2e-4)
        np.testing.assert_allclose(out['box_dist'], ref[1].numpy(), atol=2e-4)
