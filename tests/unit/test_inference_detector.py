"""Detector: batching, encodings, timing; the real pretrained NanoDet bundle end to end."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from aiat_perception.assets import darknet_image
from aiat_perception.inference.bundle import load_bundle
from aiat_perception.inference.detector import Detector, StageTimes
from aiat_perception.inference.synthetic import make_synthetic_bundle

from .test_inference_decode import check_dog_photo


@pytest.fixture(scope='module')
def synthetic(tmp_path_factory):
    return make_synthetic_bundle(tmp_path_factory.mktemp('d') / 'synthetic', resize='letterbox',
                                 height=96, width=128)


@pytest.fixture(scope='module')
def coco_bundle():
    """The pretrained COCO bundle (cached by `python -m aiat_perception.prepare_data`)."""
    from aiat_perception.cli.detect import ensure_default_bundle
    return load_bundle(ensure_default_bundle(quiet=True))


def test_detector_batch_matches_single_images(synthetic):
    detector = Detector(synthetic, score_threshold=0.05, intra_op_threads=1)
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for h, w in ((120, 160), (300, 200), (96, 128))]
    batch = detector.detect(images)
    assert detector.last_times.batch == 3
    times = detector.last_times
    assert isinstance(times, StageTimes) and times.preprocess > 0 and times.inference > 0 and times.decode > 0
    assert times.as_ms()['total_ms'] == pytest.approx(times.total * 1e3)
    for image, dets in zip(images, batch):
        single = detector.detect_one(image)
        np.testing.assert_allclose(dets.boxes, single.boxes, atol=1e-3)
        np.testing.assert_allclose(dets.scores, single.scores, atol=1e-6)
        assert len(dets) > 0
        h, w = image.shape[:2]
        assert dets.boxes[:, [0, 2]].max() <= w and dets.boxes[:, [1, 3]].max() <= h
        assert set(dets.labels) <= set(detector.classes)


def test_detector_accepts_encodings_and_4d_batches(synthetic):
    detector = Detector(synthetic, score_threshold=0.05)
    rng = np.random.default_rng(2)
    bgr = rng.integers(0, 255, (2, 96, 128, 3), dtype=np.uint8)
    from_bgr = detector.detect(bgr)
    assert len(from_bgr) == 2
    from_rgb = detector.detect([np.ascontiguousarray(i[:, :, ::-1]) for i in bgr], 'rgb8')
    for a, b in zip(from_bgr, from_rgb):
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-6)
    assert len(detector.detect(bgr[0])) == 1        # one HxWxC image -> a list of one
    gray = cv2.cvtColor(bgr[0], cv2.COLOR_BGR2GRAY)
    assert len(detector.detect(gray, 'mono8')) == 1


def test_detector_overrides_and_repr(synthetic):
    detector = Detector(synthetic, score_threshold=0.99, nms_iou_threshold=0.3, max_detections=2)
    assert (detector.score_threshold, detector.nms_iou_threshold, detector.max_detections) == (0.99, 0.3, 2)
    assert 'synthetic' in repr(detector) and "'onnxruntime'" in repr(detector)
    many = Detector(synthetic, score_threshold=0.01, max_detections=2)
    assert len(many.detect_one(np.full((96, 128, 3), 128, np.uint8))) <= 2


def test_pretrained_bundle_finds_dog_bicycle_truck(coco_bundle):
    # the golden scores are those of the 416x416 input (the TF.js reference stretches); the bundle's
    # default keep_aspect with max_stretch 4:3 gives a 4:3 photo exactly that input
    detector = Detector(coco_bundle, score_threshold=0.35)
    assert detector.bundle.input.resize == 'keep_aspect'
    image = cv2.imread(str(darknet_image('dog.jpg')))
    check_dog_photo(detector.detect_one(image, 'bgr8'))
    # the same photo as RGB, and inside a batch of 4, gives the same detections
    rgb = np.ascontiguousarray(image[:, :, ::-1])
    results = detector.detect([rgb, image, rgb, image], ['rgb8', 'bgr8', 'rgb8', 'bgr8'])
    for dets in results:
        check_dog_photo(dets)


@pytest.mark.training  # compares with torch; the full environment runs it
def test_torch_backend_with_pretrained_module_matches_onnxruntime(coco_bundle):
    import torch
    from aiat_training.nanodet.importer import load_pretrained

    model = load_pretrained(frozen_bn=True)

    class Probabilities(torch.nn.Module):   # the exported computation: sigmoid on the class logits
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            cls_logits, box_logits = self.net(x)
            return torch.sigmoid(cls_logits), box_logits

    image = cv2.imread(str(darknet_image('dog.jpg')))
    via_torch = Detector(coco_bundle, backend='torch', module=Probabilities(model), device='cpu',
                         resize='stretch')
    via_ort = Detector(coco_bundle, resize='stretch')
    batch, _ = via_ort.preprocessor([image, image[:, ::-1].copy()])
    a = via_torch.backend.run(batch)
    b = via_ort.backend.run(batch)
    for key in a:
        np.testing.assert_allclose(a[key], b[key], atol=1e-4)   # float32 summation order
    check_dog_photo(via_torch.detect_one(image))
