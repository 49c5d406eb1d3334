"""Greedy detection-to-ground-truth matching, the rule pycocotools uses for one image and class.

Detections are taken by descending score; each takes the unmatched ground-truth box with the
highest IoU at or above the threshold (ties go to the later ground truth, as in pycocotools).
"""
from __future__ import annotations

import numpy as np

from aiat_perception.inference.decode import box_iou


def greedy_match(det_boxes: np.ndarray, det_scores: np.ndarray, gt_boxes: np.ndarray,
                 iou_threshold: float = 0.5):
    """Returns (gt index per detection or -1, IoU of each match or 0), in the input order."""
    det_boxes = np.asarray(det_boxes, np.float64).reshape(-1, 4)
    gt_boxes = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    match = np.full(len(det_boxes), -1, np.int64)
    match_iou = np.zeros(len(det_boxes), np.float64)
    if len(det_boxes) == 0 or len(gt_boxes) == 0:
        return match, match_iou
    iou = box_iou(det_boxes, gt_boxes)
    taken = np.zeros(len(gt_boxes), bool)
    for d in np.argsort(-np.asarray(det_scores), kind='stable'):
        best, best_iou = -1, min(iou_threshold, 1 - 1e-10)
        for g in range(len(gt_boxes)):
            if not taken[g] and iou[d, g] >= best_iou:
                best, best_iou = g, iou[d, g]
        if best >= 0:
            taken[best] = True
            match[d], match_iou[d] = best, iou[d, best]
    return match, match_iou


def confusion_matrix(per_image, num_classes: int, iou_threshold: float = 0.5) -> np.ndarray:
    """[C+1, C+1] counts, rows = ground-truth class, columns = predicted class; the last row and
    column are 'background' (false positive / missed). Class-agnostic matching, so a box found
    with the wrong class shows up off the diagonal.

    ``per_image``: iterable of (det_boxes, det_scores, det_classes, gt_boxes, gt_classes).
    """
    m = np.zeros((num_classes + 1, num_classes + 1), np.int64)
    for det_boxes, det_scores, det_classes, gt_boxes, gt_classes in per_image:
        match, _ = greedy_match(det_boxes, det_scores, gt_boxes, iou_threshold)
        matched_gt = set()
        for d, g in enumerate(match):
            if g >= 0:
                m[gt_classes[g], det_classes[d]] += 1
                matched_gt.add(int(g))
            else:
                m[num_classes, det_classes[d]] += 1
        for g in range(len(gt_boxes)):
            if g not in matched_gt:
                m[gt_classes[g], num_classes] += 1
    return m
