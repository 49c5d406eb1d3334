"""GFL decoding on the golden NanoDet outputs, and numpy NMS against torchvision."""
from __future__ import annotations

import numpy as np
import pytest

from aiat_perception.assets import reference_file
from aiat_perception.inference.decode import Detections, GflDecoder, batched_nms, nms
from aiat_perception.metrics.matching import iou_matrix
from aiat_perception.inference.preprocess import Transform

COCO_FIRST = ['person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat',
              'traffic light', 'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird', 'cat',
              'dog']
NAMES = COCO_FIRST + [f'coco{i}' for i in range(len(COCO_FIRST), 80)]

# Where the objects are in darknet's dog.jpg (768x576), judged by eye on the photo:
# (x1 range, y1 range, x2 range, y2 range) in original pixels.
DOG_PHOTO_BOXES = {
    'bicycle': ((100, 150), (110, 150), (540, 590), (400, 460)),
    'dog': ((110, 160), (200, 250), (290, 380), (500, 576)),
    'truck': ((450, 490), (65, 105), (670, 710), (150, 185)),
}


def golden_outputs(photo: str):
    data = np.load(reference_file('nanodet', 'nanodet_tf_golden.npz'))
    scores = np.concatenate([data[f'{photo}_out_Identity{s}:0'] for s in ('', '_1', '_2')], axis=1)
    boxes = np.concatenate([data[f'{photo}_out_Identity_{i}:0'] for i in (3, 4, 5)], axis=1)
    return scores, boxes


def check_dog_photo(dets: Detections) -> None:
    """The acceptance check shared with the end-to-end tests."""
    found = {}
    for label, score, box in zip(dets.labels, dets.scores, dets.boxes):
        found.setdefault(label, (float(score), box))   # highest score per class
    for label, expected_score in (('bicycle', 0.68), ('dog', 0.42), ('truck', 0.36)):
        assert label in found, f'{label} not found; got {dets.to_list()}'
        score, box = found[label]
        assert score == pytest.approx(expected_score, abs=0.01), (label, score)
        for value, (low, high), what in zip(box, DOG_PHOTO_BOXES[label], ('x1', 'y1', 'x2', 'y2')):
            assert low <= value <= high, f'{label} {what}={value:.1f} not in [{low}, {high}]'


def test_golden_dog_decodes_to_bicycle_dog_truck():
    scores, boxes = golden_outputs('dog')
    decoder = GflDecoder((8, 16, 32), 10, 416, 416, NAMES)
    assert decoder.num_cells == scores.shape[1] == 3549
    transform = Transform(416 / 768, 416 / 576, 0, 0, 768, 576)   # stretch 768x576 -> 416x416
    dets = decoder.decode(scores, boxes, [transform], score_threshold=0.35)[0]
    check_dog_photo(dets)
    assert dets.boxes.dtype == np.float32 and dets.class_ids.dtype == np.int64
    assert np.all(np.diff(dets.scores) <= 0)


def test_cell_centre_convention_is_half_cell():
    # With centres at col*stride instead of (col+0.5)*stride every box moves ~4-16 px up-left in
    # network space; the bicycle's right edge then falls short of its front wheel (~x 570).
    scores, boxes = golden_outputs('dog')
    transform = Transform(416 / 768, 416 / 576, 0, 0, 768, 576)
    shifted = GflDecoder((8, 16, 32), 10, 416, 416, NAMES, cell_offset=0.0)
    dets = shifted.decode(scores, boxes, [transform], score_threshold=0.35)[0]
    bicycle = dets.boxes[dets.labels.index('bicycle')]
    assert bicycle[2] < 545


def test_golden_horses_finds_horses():
    scores, boxes = golden_outputs('horses')
    decoder = GflDecoder((8, 16, 32), 10, 416, 416, NAMES)
    dets = decoder.decode(scores, boxes, [Transform(416 / 773, 416 / 512, 0, 0, 773, 512)],
                          score_threshold=0.35)[0]
    assert 'coco17' in dets.labels    # COCO class 17 = horse
    assert np.all(dets.boxes[:, 2] <= 773) and np.all(dets.boxes[:, 3] <= 512)


def test_decode_limits_and_empty():
    scores, boxes = golden_outputs('dog')
    decoder = GflDecoder((8, 16, 32), 10, 416, 416, NAMES)
    assert len(decoder.decode_one(scores[0], boxes[0], score_threshold=0.99)) == 0
    many = decoder.decode_one(scores[0], boxes[0], score_threshold=0.01, max_detections=7)
    assert len(many) == 7
    top = decoder.decode_one(scores[0], boxes[0], score_threshold=0.01, pre_nms_top_k=3)
    assert len(top) <= 3
    agnostic = decoder.decode_one(scores[0], boxes[0], score_threshold=0.3, class_agnostic=True)
    assert np.all(iou_matrix(agnostic.boxes, agnostic.boxes)[np.triu_indices(len(agnostic), 1)] <= 0.6)
    # without a transform boxes stay in network pixels, clipped to the input
    net = decoder.decode_one(scores[0], boxes[0], score_threshold=0.01)
    assert net.boxes.min() >= 0 and net.boxes.max() <= 416
    with pytest.raises(ValueError, match='expects 3549 cells'):
        decoder.decode_one(scores[0, :100], boxes[0, :100])


def test_distance_decode_by_hand():
    # 64x64 input, stride 8: cell 19 is col 3, row 2, centre (28, 20); all bin mass on bin 2
    decoder = GflDecoder((8,), 3, 64, 64, ['a'])
    box_dist = np.full((64, 16), -30.0, np.float32)
    box_dist[19].reshape(4, 4)[:, 2] = 30.0
    np.testing.assert_allclose(decoder.boxes(box_dist, np.array([19])),
                               [[28 - 16, 20 - 16, 28 + 16, 20 + 16]], atol=1e-4)
    # cell 0 (centre 4, 4) is clipped to the input
    box_dist[0].reshape(4, 4)[:, 2] = 30.0
    np.testing.assert_allclose(decoder.boxes(box_dist, np.array([0])), [[0, 0, 20, 20]], atol=1e-4)


def _random_boxes(rng, n, span=200.0):
    xy = rng.uniform(0, span, (n, 2))
    wh = rng.uniform(5, 80, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1).astype(np.float32)


@pytest.mark.training  # compares with torch; the full environment runs it
@pytest.mark.parametrize('seed', range(5))
def test_nms_agrees_with_torchvision(seed):
    import torch
    import torchvision.ops as ops
    rng = np.random.default_rng(seed)
    n = 400
    boxes = _random_boxes(rng, n)
    scores = rng.permutation(n).astype(np.float32) / n + 0.001   # distinct scores: no tie ambiguity
    classes = rng.integers(0, 5, n)
    for threshold in (0.3, 0.5, 0.7):
        ours = batched_nms(boxes, scores, classes, threshold)
        ref = ops.batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores),
                              torch.from_numpy(classes), threshold).numpy()
        np.testing.assert_array_equal(ours, ref)
        np.testing.assert_array_equal(nms(boxes, scores, threshold),
                                      ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores),
                                              threshold).numpy())
        # stopping early keeps exactly the first boxes of the full result
        np.testing.assert_array_equal(batched_nms(boxes, scores, classes, threshold, max_keep=10),
                                      ref[:10])


@pytest.mark.parametrize('seed', range(3))
def test_nms_keeps_what_the_matching_iou_allows(seed):
    """NMS against a brute force on the one IoU definition (aiat_perception.metrics.matching)."""
    rng = np.random.default_rng(seed)
    boxes = _random_boxes(rng, 150)
    scores = rng.permutation(150).astype(np.float32) / 150 + 0.001
    classes = rng.integers(0, 3, 150)
    iou = iou_matrix(boxes, boxes)
    for threshold in (0.3, 0.6):
        kept = []
        for i in np.argsort(-scores, kind='stable'):
            if not any(classes[k] == classes[i] and iou[i, k] > threshold for k in kept):
                kept.append(int(i))
        assert batched_nms(boxes, scores, classes, threshold).tolist() == kept


def test_nms_edge_cases():
    empty = np.zeros((0, 4), np.float32)
    assert nms(empty, np.zeros(0, np.float32), 0.5).shape == (0,)
    same = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
    keep = batched_nms(same, np.array([0.9, 0.8, 0.7], np.float32), np.array([0, 1, 0]), 0.5)
    assert keep.tolist() == [0, 1, 2]          # identical boxes of different classes both stay
    keep = nms(same, np.array([0.9, 0.8, 0.7], np.float32), 0.5)
    assert keep.tolist() == [0, 2]
    # degenerate (zero-area) boxes never divide by zero
    flat = np.array([[0, 0, 0, 0], [0, 0, 0, 0]], np.float32)
    assert nms(flat, np.array([0.5, 0.4], np.float32), 0.5).tolist() == [0, 1]


def test_detections_helpers():
    d = Detections(np.array([[1, 2, 3, 4]], np.float32), np.array([0.5], np.float32),
                   np.array([1]), ('a', 'b'))
    assert d.labels == ['b'] and len(d) == 1
    assert d.to_list() == [{'class_id': 1, 'class': 'b', 'score': 0.5, 'box': [1.0, 2.0, 3.0, 4.0]}]
    assert len(Detections.empty(('a',))) == 0
