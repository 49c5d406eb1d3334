"""Evaluation: the one matcher (aiat_perception.metrics.matching) agrees with pycocotools, ties
included, through both its users (offline evaluation's arrays, the IoU monitor's labelled boxes);
COCO metrics on hand-made cases."""
import contextlib
import io

import numpy as np
import pytest

from aiat_perception.inference.decode import Detections
from aiat_perception.metrics.matching import LabeledBox, confusion_matrix, match_boxes, match_frame
from aiat_training.data.dataset import Sample
from aiat_training.train.evaluate import build_coco, coco_metrics


def _random_case(seed, n_images=12, n_classes=3):
    rng = np.random.default_rng(seed)
    samples, dets = [], []
    for i in range(n_images):
        n = int(rng.integers(0, 6))
        xy = rng.uniform(0, 150, (n, 2))
        wh = rng.uniform(8, 60, (n, 2))
        gt = np.concatenate([xy, xy + wh], 1).astype(np.float32)
        labels = rng.integers(0, n_classes, n)
        samples.append(Sample(f'/nonexistent/{i}.png', 220, 220, gt, labels))
        # detections: jittered copies (some with IoU near 0.5), duplicates, false positives
        boxes, scores, classes = [], [], []
        for b, l in zip(gt, labels):
            for _ in range(int(rng.integers(0, 3))):
                boxes.append(b + rng.normal(0, rng.choice([1.0, 6.0, 12.0]), 4))
                scores.append(rng.uniform(0.05, 1))
                classes.append(l if rng.uniform() < 0.85 else rng.integers(0, n_classes))
        for _ in range(int(rng.integers(0, 3))):
            p = rng.uniform(0, 150, 2)
            boxes.append(np.concatenate([p, p + rng.uniform(8, 60, 2)]))
            scores.append(rng.uniform(0.05, 1))
            classes.append(rng.integers(0, n_classes))
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
        dets.append(Detections(boxes, np.asarray(scores, np.float32), np.asarray(classes, np.int64)))
    return samples, dets


def _tied_case(seed, n_images=12, n_classes=2):
    """Frames full of ties: boxes on a coarse integer grid (exact IoUs, duplicated ground truth,
    detections equally far from two boxes) and scores from three values."""
    rng = np.random.default_rng(seed)
    samples, dets = [], []
    for i in range(n_images):
        cells = rng.integers(0, 6, (int(rng.integers(1, 6)), 2)) * 10
        gt = np.concatenate([cells, cells + 10], 1).astype(np.float32)
        gt = np.concatenate([gt, gt[rng.uniform(size=len(gt)) < 0.4]])         # exact duplicates
        labels = rng.integers(0, n_classes, len(gt))
        shifts = rng.choice([0, 5, -5], (int(rng.integers(1, 9)), 2))
        anchors = gt[rng.integers(0, len(gt), len(shifts))]
        boxes = anchors + np.concatenate([shifts, shifts], 1)
        boxes = np.concatenate([boxes, gt[:, :2].repeat(2, 1) + [0, 0, 20, 10]])  # spanning two cells
        scores = rng.choice([0.3, 0.6, 0.9], len(boxes)).astype(np.float32)
        classes = rng.integers(0, n_classes, len(boxes))
        samples.append(Sample(f'/nonexistent/{i}.png', 100, 100, gt, labels))
        dets.append(Detections(boxes.astype(np.float32), scores, classes.astype(np.int64)))
    return samples, dets


def _coco_pairs(samples, dets, classes, iou_threshold):
    """(detection id, ground-truth id) pairs pycocotools matches; ids count from 1 in input order."""
    from pycocotools.cocoeval import COCOeval

    gt, results = build_coco(samples, classes, dets)
    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(gt, gt.loadRes(results), 'bbox')
        ev.params.iouThrs = np.array([iou_threshold])
        ev.params.areaRng, ev.params.areaRngLbl = [[0, 1e10]], ['all']
        ev.params.maxDets = [100]
        ev.evaluate()
    return {(int(d), int(g)) for e in ev.evalImgs if e is not None
            for d, g in zip(e['dtIds'], e['dtMatches'][0]) if g > 0}


def _evaluation_pairs(samples, dets, iou_threshold):
    """Pairs as offline evaluation matches them (arrays, per class)."""
    pairs, dt_base, gt_base = set(), 0, 0
    for s, d in zip(samples, dets):
        m = match_boxes(d.boxes, d.scores, s.boxes, iou_threshold, d.class_ids, s.labels)
        pairs |= {(dt_base + i + 1, gt_base + j + 1) for i, j, _ in m.pairs()}
        dt_base, gt_base = dt_base + len(d), gt_base + len(s.boxes)
    return pairs


def _monitor_pairs(samples, dets, classes, iou_threshold):
    """Pairs as the live IoU monitor matches them (labelled boxes with class names)."""
    pairs, dt_base, gt_base = set(), 0, 0
    for s, d in zip(samples, dets):
        result = match_frame(
            [LabeledBox(tuple(b), classes[c], float(p)) for b, c, p in zip(d.boxes, d.class_ids, d.scores)],
            [LabeledBox(tuple(b), classes[c]) for b, c in zip(s.boxes, s.labels)], iou_threshold)
        pairs |= {(dt_base + i + 1, gt_base + j + 1) for i, j, _ in result.matches}
        dt_base, gt_base = dt_base + len(d), gt_base + len(s.boxes)
    return pairs


@pytest.mark.parametrize('seed', [0, 1, 2])
@pytest.mark.parametrize('iou_threshold', [0.5, 0.75])
def test_matching_agrees_with_pycocotools(seed, iou_threshold):
    classes = ['a', 'b', 'c']
    samples, dets = _random_case(seed)
    coco = _coco_pairs(samples, dets, classes, iou_threshold)
    assert len(coco) > 5
    assert _evaluation_pairs(samples, dets, iou_threshold) == coco
    assert _monitor_pairs(samples, dets, classes, iou_threshold) == coco


@pytest.mark.parametrize('seed', range(4))
@pytest.mark.parametrize('iou_threshold', [1 / 3, 0.5, 1.0])
def test_ties_are_broken_as_pycocotools_breaks_them(seed, iou_threshold):
    """Equal IoUs go to the later ground truth, equal scores keep input order, an IoU equal to
    the threshold matches; the monitor and offline evaluation pick the same pairs as pycocotools."""
    classes = ['a', 'b']
    samples, dets = _tied_case(seed)
    coco = _coco_pairs(samples, dets, classes, iou_threshold)
    assert len(coco) > 2
    assert _evaluation_pairs(samples, dets, iou_threshold) == coco
    assert _monitor_pairs(samples, dets, classes, iou_threshold) == coco


def test_duplicate_ground_truth_goes_to_the_later_box_as_in_pycocotools():
    box = np.array([[10, 10, 30, 30]], np.float32)
    samples = [Sample('/nonexistent/a.png', 50, 50, np.concatenate([box, box]), np.array([0, 0]))]
    dets = [Detections(box, np.array([0.9], np.float32), np.array([0]))]
    assert _coco_pairs(samples, dets, ['a'], 0.5) == {(1, 2)}
    assert _evaluation_pairs(samples, dets, 0.5) == {(1, 2)}


def test_greedy_match_hand_case():
    gt = np.array([[0, 0, 10, 10], [20, 0, 30, 10]], np.float32)
    det = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 0, 30, 10], [50, 50, 60, 60]], np.float32)
    # the higher-scoring duplicate wins the first box, the other is a false positive
    match, iou = match_boxes(det, np.array([0.5, 0.9, 0.8, 0.7]), gt, 0.5)
    assert match.tolist() == [-1, 0, 1, -1]
    assert iou[1] == pytest.approx(9 * 10 / (11 * 10)) and iou[2] == pytest.approx(1.0)


def test_coco_metrics_perfect_and_confused():
    classes = ['car', 'person']
    boxes = np.array([[10, 10, 50, 40], [60, 20, 80, 70]], np.float32)
    labels = np.array([0, 1])
    samples = [Sample('/nonexistent/a.png', 100, 100, boxes, labels)]
    perfect = [Detections(boxes, np.array([0.9, 0.8], np.float32), labels)]
    m = coco_metrics(samples, perfect, classes)
    assert m['mAP'] == pytest.approx(1.0) and m['mAP50'] == pytest.approx(1.0)
    assert m['per_class']['car']['AP50'] == pytest.approx(1.0)
    assert m['operating_point']['mean_iou_of_matches'] == pytest.approx(1.0)
    assert m['operating_point']['recall'] == 1.0 and m['confusion'] == [[1, 0, 0], [0, 1, 0], [0, 0, 0]]

    swapped = [Detections(boxes, np.array([0.9, 0.8], np.float32), labels[::-1].copy())]
    m = coco_metrics(samples, swapped, classes)
    assert m['mAP'] == 0.0 and m['operating_point']['recall'] == 0.0
    assert m['confusion'] == [[0, 1, 0], [1, 0, 0], [0, 0, 0]]


def test_confusion_counts_misses_and_false_positives():
    gt = np.array([[0, 0, 10, 10]], np.float32)
    det = np.array([[50, 50, 60, 60]], np.float32)
    m = confusion_matrix([(det, np.array([0.9]), np.array([1]), gt, np.array([0]))], 2)
    assert m.tolist() == [[0, 0, 1], [0, 0, 0], [0, 1, 0]]


def test_evaluate_bundle_runs_the_detector_and_scores_shared_classes(tmp_path):
    """Through the inference core on a real (synthetic-weight) ONNX bundle; classes matched by name."""
    import cv2

    from aiat_perception.inference.synthetic import make_synthetic_bundle
    from aiat_training.data.dataset import DetectionDataset
    from aiat_training.train.evaluate import evaluate_bundle

    bundle = make_synthetic_bundle(tmp_path / 'bundle', height=64, width=64, num_classes=3)
    rng = np.random.default_rng(0)
    samples = []
    for i in range(3):
        path = tmp_path / f'{i}.png'
        cv2.imwrite(str(path), rng.integers(0, 255, (48, 80, 3), dtype=np.uint8))
        samples.append(Sample(path, 80, 48, np.array([[5, 5, 40, 30], [50, 10, 70, 40]], np.float32),
                              np.array([0, 1])))
    dataset = DetectionDataset(samples, ['class1', 'truck'])
    m = evaluate_bundle(bundle, dataset, tmp_path / 'report')
    assert m['classes'] == ['class1'] and m['ground_truth_boxes'] == 3
    assert m['bundle_classes_not_scored'] == ['class0', 'class2'] and m['dataset_classes_not_scored'] == ['truck']
    assert 0.0 <= m['mAP'] <= 1.0 and (tmp_path / 'report' / 'metrics.json').is_file()
