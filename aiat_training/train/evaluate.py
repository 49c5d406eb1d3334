"""COCO-style evaluation (pycocotools) of detections against a dataset, plus the extras the
vehicle team asks for: per-class AP, precision-recall curves, class confusion, mean IoU of matches,
precision/recall at the bundle's operating score threshold.

Detections come from the inference core's decoder (``GflDecoder``, the vehicle's code), either
fed by the torch model during training or by :class:`aiat_perception.inference.Detector` on an
exported bundle (``aiat-train eval``).
"""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import List, Sequence

import numpy as np

from aiat_perception.metrics.matching import confusion_matrix, match_boxes

EVAL_SCORE_THRESHOLD = 0.01   # mAP needs the low-score tail; the operating threshold is reported separately


def _xywh(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)


def build_coco(samples, class_names: Sequence[str], detections=None):
    """pycocotools ground truth (and results) from samples and per-image Detections."""
    from pycocotools.coco import COCO

    images, annotations = [], []
    for i, s in enumerate(samples):
        images.append({'id': i, 'width': int(s.width), 'height': int(s.height)})
        for box, label in zip(_xywh(s.boxes), np.asarray(s.labels).reshape(-1)):
            annotations.append({'id': len(annotations) + 1, 'image_id': i, 'category_id': int(label),
                                'bbox': [float(v) for v in box], 'area': float(box[2] * box[3]),
                                'iscrowd': 0})
    gt = COCO()
    gt.dataset = {'images': images, 'annotations': annotations,
                  'categories': [{'id': k, 'name': n} for k, n in enumerate(class_names)]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    results = []
    for i, det in enumerate(detections or []):
        for box, score, cls in zip(_xywh(det.boxes), det.scores, det.class_ids):
            results.append({'image_id': i, 'category_id': int(cls), 'bbox': [float(v) for v in box],
                            'score': float(score)})
    return gt, results


def coco_metrics(samples, detections, class_names: Sequence[str],
                 operating_threshold: float = 0.35) -> dict:
    """Metrics dict (JSON-friendly; PR curves as lists)."""
    from pycocotools.cocoeval import COCOeval

    samples = list(samples)
    if len(detections) != len(samples):
        raise ValueError(f'{len(detections)} detection lists for {len(samples)} images')
    num_classes = len(class_names)
    gt, results = build_coco(samples, class_names, detections)
    out = {'images': len(samples), 'ground_truth_boxes': len(gt.dataset['annotations']),
           'detections': len(results), 'classes': list(class_names)}
    if not results or not gt.dataset['annotations']:
        out.update({'mAP': 0.0, 'mAP50': 0.0, 'per_class': {n: {'AP': 0.0, 'AP50': 0.0}
                                                               for n in class_names}})
        precision = None
    else:
        with contextlib.redirect_stdout(io.StringIO()):
            dt = gt.loadRes(results)
            ev = COCOeval(gt, dt, 'bbox')
            ev.params.catIds = list(range(num_classes))
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        stats = ev.stats
        out['mAP'], out['mAP50'], out['mAP75'] = float(stats[0]), float(stats[1]), float(stats[2])
        out['AR100'] = float(stats[8])
        precision = ev.eval['precision']        # [T iou, R recall points, K classes, A areas, M maxdets]
        per_class = {}
        for k, name in enumerate(class_names):
            p_all = precision[:, :, k, 0, -1]
            p_50 = precision[0, :, k, 0, -1]
            has_gt = len(gt.getAnnIds(catIds=[k])) > 0
            per_class[name] = {
                'AP': float(p_all[p_all > -1].mean()) if has_gt and (p_all > -1).any() else None,
                'AP50': float(p_50[p_50 > -1].mean()) if has_gt and (p_50 > -1).any() else None,
                'ground_truth': len(gt.getAnnIds(catIds=[k]))}
        out['per_class'] = per_class
        out['pr_curve_recall'] = [float(r) for r in ev.params.recThrs]
        out['pr_curves_iou50'] = {name: [float(v) for v in precision[0, :, k, 0, -1]]
                                  for k, name in enumerate(class_names)}

    # Matches of our own (same rule as pycocotools, class-aware) for mean IoU and operating-point P/R.
    ious, tp, n_det, n_gt = [], 0, 0, 0
    per_image_conf = []
    for s, det in zip(samples, detections):
        keep = det.scores >= operating_threshold
        boxes, scores, classes = det.boxes[keep], det.scores[keep], det.class_ids[keep]
        gt_boxes, gt_labels = np.asarray(s.boxes).reshape(-1, 4), np.asarray(s.labels).reshape(-1)
        n_det += len(boxes)
        n_gt += len(gt_boxes)
        match = match_boxes(boxes, scores, gt_boxes, 0.5, classes, gt_labels)
        tp += int(match.matched.sum())
        ious += match.affinity[match.matched].tolist()
        per_image_conf.append((boxes, scores, classes, gt_boxes, gt_labels))
    out['operating_point'] = {
        'score_threshold': operating_threshold, 'iou_threshold': 0.5, 'true_positives': tp,
        'precision': tp / n_det if n_det else 0.0, 'recall': tp / n_gt if n_gt else 0.0,
        'mean_iou_of_matches': float(np.mean(ious)) if ious else 0.0}
    out['confusion'] = confusion_matrix(per_image_conf, num_classes).tolist()
    return out


def write_report(metrics: dict, out_dir: str | Path) -> List[Path]:
    """metrics.json, pr_curves.png and confusion.png in ``out_dir``."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / 'metrics.json']
    written[0].write_text(json.dumps(metrics, indent=2))
    if 'pr_curves_iou50' in metrics:
        fig, ax = plt.subplots(figsize=(6, 5))
        recall = metrics['pr_curve_recall']
        for name, prec in metrics['pr_curves_iou50'].items():
            if max(prec) > -1:
                ap = metrics['per_class'][name]['AP50']
                ax.plot(recall, np.clip(prec, 0, None), label=f'{name} (AP50 {ap:.3f})')
        ax.set(xlabel='recall', ylabel='precision', xlim=(0, 1), ylim=(0, 1.02),
               title=f'Precision-recall at IoU 0.5 (mAP50 {metrics["mAP50"]:.3f})')
        ax.legend(fontsize=8, loc='lower left')
        fig.tight_layout()
        fig.savefig(out_dir / 'pr_curves.png', dpi=100)
        plt.close(fig)
        written.append(out_dir / 'pr_curves.png')
    conf = np.asarray(metrics['confusion'])
    names = list(metrics['classes']) + ['background']
    fig, ax = plt.subplots(figsize=(max(4.5, 1.2 + 0.6 * len(names)), max(4.0, 1 + 0.6 * len(names))))
    ax.imshow(conf, cmap='Blues')
    ax.set_xticks(range(len(names)), names, rotation=45, ha='right')
    ax.set_yticks(range(len(names)), names)
    ax.set(xlabel='predicted', ylabel='ground truth')
    ax.set_title(f'Confusion at score >= {metrics["operating_point"]["score_threshold"]}, IoU 0.5', fontsize=9)
    for (r, c), v in np.ndenumerate(conf):
        ax.text(c, r, str(v), ha='center', va='center', fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / 'confusion.png', dpi=100)
    plt.close(fig)
    written.append(out_dir / 'confusion.png')
    return written


def _align_classes(samples, dataset_classes: Sequence[str], model_classes: Sequence[str]):
    """Samples with labels re-indexed to the model's classes (by name); boxes of dataset classes
    the model does not have are left out. Returns (samples, shared class indices of the model)."""
    from dataclasses import replace

    if list(dataset_classes) == list(model_classes):
        return list(samples), list(range(len(model_classes)))
    index = {name: k for k, name in enumerate(model_classes)}
    remap = np.array([index.get(name, -1) for name in dataset_classes], np.int64)
    if (remap < 0).all():
        raise ValueError(f'no class in common between the dataset {list(dataset_classes)} and the '
                         f'model {list(model_classes)}')
    out = []
    for s in samples:
        labels = remap[np.asarray(s.labels, np.int64)] if len(s.labels) else np.zeros(0, np.int64)
        keep = labels >= 0
        out.append(replace(s, boxes=np.asarray(s.boxes)[keep], labels=labels[keep]))
    return out, sorted(int(k) for k in remap[remap >= 0])


def evaluate_bundle(bundle_dir, dataset, out_dir=None, batch_size: int = 8, backend: str = 'onnxruntime',
                    **backend_options) -> dict:
    """Evaluate a bundle exactly as the vehicle runs it (:class:`Detector`: preprocessing, ONNX
    Runtime, GFL decoding, NMS) on a :class:`DetectionDataset`; classes are matched by name, and
    only the classes both have are scored."""
    from aiat_perception.inference.detector import Detector
    from aiat_perception.inference.decode import Detections

    detector = Detector(bundle_dir, backend=backend, score_threshold=EVAL_SCORE_THRESHOLD, **backend_options)
    model_classes = list(detector.classes)
    samples, shared = _align_classes(dataset.samples, dataset.class_names, model_classes)
    detections = []
    for start in range(0, len(samples), batch_size):
        images = [s.load_image() for s in samples[start:start + batch_size]]
        detections += detector.detect(images, 'bgr8')
    detector.close()
    # Score only the shared classes, re-indexed compactly.
    compact = {k: i for i, k in enumerate(shared)}
    names = [model_classes[k] for k in shared]
    lookup = np.full(len(model_classes), -1, np.int64)
    for k, i in compact.items():
        lookup[k] = i
    from dataclasses import replace
    samples = [replace(s, labels=lookup[np.asarray(s.labels, np.int64)]) for s in samples]
    kept = []
    for d in detections:
        cls = lookup[d.class_ids] if len(d) else d.class_ids
        m = cls >= 0
        kept.append(Detections(d.boxes[m], d.scores[m], cls[m], tuple(names)))
    metrics = coco_metrics(samples, kept, names, detector.bundle.postprocess.score_threshold)
    metrics['bundle'] = str(detector.bundle.path)
    metrics['bundle_classes_not_scored'] = [c for c in model_classes if c not in names]
    metrics['dataset_classes_not_scored'] = [c for c in dataset.class_names if c not in names]
    if out_dir is not None:
        write_report(metrics, out_dir)
    return metrics
