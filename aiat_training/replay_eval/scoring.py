"""Scores of a collected run.

Camera: COCO mAP@[.5:.95] and mAP@0.5 with pycocotools (overall, per class, per object size), plus
per-frame TP/FP/FN and the IoU of every matched pair at IoU 0.5 (metrics.matching.match_frame).
Lidar: BEV AP per class, KITTI's definition: detections of all frames by decreasing score, each a
true positive if it takes an unmatched ground-truth box of its class at BEV rotated IoU >= 0.7 (car)
or 0.5 (pedestrian, cyclist); AP = mean over the 40 recall points 1/40..1 of the highest precision
at that recall or above (KITTI's AP|R40; all difficulty levels pooled, no height/occlusion filter).
Detections outside the camera's image (KITTI labels exist only there) or in a DontCare box are not
counted. Also centre-distance recall (1 m) per class and range band (metrics.matching_3d.Evaluation3D).
Scan: leg-labelled bags with lidar.evaluate.LegScore; person ground truth (simulator) with
Evaluation3D at 0.5 m.
"""
from __future__ import annotations

import contextlib
import io
import math
from typing import Dict, List, Optional, Sequence

import numpy as np

from aiat_perception.replay.pairing import DEFAULT_TOLERANCE_NS, nearest_within
from aiat_training.replay_eval.classes import BEV_IOU, CAMERA_CLASSES, LIDAR_CLASSES, camera_gt_class
from aiat_training.replay_eval.frames import Collected, SensorFrame

CENTER_DISTANCE_M = 1.0
SCAN_PERSON_DISTANCE_M = 0.5
R40 = np.linspace(1.0 / 40, 1.0, 40)


def _num(v) -> Optional[float]:
    v = float(v)
    return round(v, 6) if math.isfinite(v) else None


def percentiles(values: Sequence[float]) -> Dict[str, Optional[float]]:
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    if not len(v):
        return {'count': 0, 'p50': None, 'p95': None, 'p99': None, 'max': None, 'mean': None}
    return {'count': int(len(v)), 'p50': _num(np.percentile(v, 50)), 'p95': _num(np.percentile(v, 95)),
            'p99': _num(np.percentile(v, 99)), 'max': _num(v.max()), 'mean': _num(v.mean())}


def pair(collected: Collected, sensor: str, tolerance_ns: int = DEFAULT_TOLERANCE_NS):
    """(frame, ground truth or None) per frame of a sensor."""
    frames = collected.of(sensor)
    truth = collected.truth.get('lidar' if sensor == 'fusion' else sensor, {})   # fusion: the 3D ground truth
    if sensor == 'scan' and any(f.gt_inline is not None for f in frames):
        return [(f, f.gt_inline) for f in frames]
    stamps = list(truth)
    picks = nearest_within([f.stamp_ns for f in frames], stamps, tolerance_ns)
    return [(f, truth[stamps[p]] if p is not None else None) for f, p in zip(frames, picks)]


def _status(frame: SensorFrame, gt) -> str:
    if frame.malformed:
        return 'malformed'
    if gt is None:
        return 'skipped_no_gt'
    if frame.detections is None:
        return 'dropped'
    return 'evaluated'


def _frame_record(sensor: str, frame: SensorFrame, gt) -> dict:
    """The per-frame record every sensor starts with: where the frame is, its status and latency."""
    return {'sensor': sensor, 'index': frame.index, 'stamp_ns': frame.stamp_ns, 'status': _status(frame, gt),
            'latency_ms': _num(frame.processing_ms) if math.isfinite(frame.processing_ms) else None}


def _frames_to_score(sensor: str, pairs, records: List[dict]):
    """(frame, ground truth, record) of each frame that is scored (evaluated or dropped); every
    frame's record is appended to ``records``."""
    for frame, gt in pairs:
        rec = _frame_record(sensor, frame, gt)
        records.append(rec)
        if rec['status'] in ('evaluated', 'dropped'):
            yield frame, gt, rec


def _frame_counts(records: List[dict]) -> dict:
    """How many frames there were and how many of each status (a dropped frame counts as evaluated)."""
    return {'frames': len(records), 'evaluated': sum(r['status'] in ('evaluated', 'dropped') for r in records),
            'skipped_no_gt': sum(r['status'] == 'skipped_no_gt' for r in records),
            'malformed': sum(r['status'] == 'malformed' for r in records),
            'dropped': sum(r['status'] == 'dropped' for r in records)}


# ---------------------------------------------------------------- camera


def score_camera(pairs, classes: Sequence[str] = CAMERA_CLASSES, keep_dropped: bool = True):
    """Summary and per-frame records. A dropped frame (live mode: no output) counts with no detections."""
    from aiat_perception.metrics.matching import LabeledBox, match_frame
    records, images, anns, dets = [], [], [], []
    ious: List[float] = []
    ann_id = 0
    for frame, gt in pairs:
        rec = _frame_record('camera', frame, gt)
        status = rec['status']
        records.append(rec)
        if frame.malformed:
            rec['problem'] = frame.malformed
        if status not in ('evaluated', 'dropped') or (status == 'dropped' and not keep_dropped):
            continue
        image_id = len(images) + 1
        w, h = frame.image_size or (0, 0)
        images.append({'id': image_id, 'width': w, 'height': h})
        gt_boxes, gt_names, _ = gt
        scored, ignore = [], []
        for box, name in zip(gt_boxes, gt_names):
            cls = camera_gt_class(name, classes)
            (scored if cls else ignore).append((box, cls))
        for box, cls in scored:
            ann_id += 1
            anns.append(_ann(ann_id, image_id, box, classes.index(cls) + 1, 0))
        for box, _ in ignore:       # an ignore region: one crowd box per class
            for k in range(len(classes)):
                ann_id += 1
                anns.append(_ann(ann_id, image_id, box, k + 1, 1))
        boxes, labels, scores = frame.detections if frame.detections is not None else (np.zeros((0, 4)), [], [])
        det_boxes = [LabeledBox(tuple(b), c, float(s)) for b, c, s in zip(boxes, labels, scores) if c in classes]
        for d in det_boxes:
            x0, y0, x1, y1 = d.box
            dets.append({'image_id': image_id, 'category_id': classes.index(d.class_id) + 1,
                         'bbox': [x0, y0, x1 - x0, y1 - y0], 'score': d.score})
        gt_labeled = [LabeledBox(tuple(b), c) for b, c in scored]
        result = match_frame(det_boxes, gt_labeled, 0.5)
        counted_fp = [i for i in range(len(det_boxes)) if i not in {a for a, _, _ in result.matches}
                      and not _inside_any(det_boxes[i].box, [b for b, _ in ignore])]
        ious.extend(iou for _, _, iou in result.matches)
        rec.update(tp=result.tp, fp=len(counted_fp), fn=result.fn, ground_truth=len(gt_labeled),
                   ious=[round(i, 4) for _, _, i in result.matches],
                   detections=[{'class': d.class_id, 'score': round(d.score, 4), 'box': [round(v, 1) for v in d.box]}
                               for d in det_boxes],
                   gt=[{'class': c, 'box': [round(float(v), 1) for v in b]} for b, c in scored],
                   ignore=[[round(float(v), 1) for v in b] for b, _ in ignore])
    summary = _coco(images, anns, dets, classes)
    evaluated = [r for r in records if r['status'] in ('evaluated', 'dropped')]
    summary.update(_frame_counts(records),
                   tp=sum(r.get('tp', 0) for r in evaluated), fp=sum(r.get('fp', 0) for r in evaluated),
                   fn=sum(r.get('fn', 0) for r in evaluated),
                   iou=dict(percentiles(ious), histogram=np.histogram(ious, bins=10, range=(0, 1))[0].tolist()))
    return summary, records


def _ann(ann_id, image_id, box, category, crowd):
    x0, y0, x1, y1 = (float(v) for v in box)
    return {'id': ann_id, 'image_id': image_id, 'category_id': category, 'bbox': [x0, y0, x1 - x0, y1 - y0],
            'area': max(x1 - x0, 0.0) * max(y1 - y0, 0.0), 'iscrowd': crowd}


def _inside_any(box, regions, fraction: float = 0.5) -> bool:
    x0, y0, x1, y1 = box
    area = max(x1 - x0, 0) * max(y1 - y0, 0)
    for a0, b0, a1, b1 in regions:
        inter = max(min(x1, a1) - max(x0, a0), 0) * max(min(y1, b1) - max(y0, b0), 0)
        if area > 0 and inter / area >= fraction:
            return True
    return False


def _coco(images, anns, dets, classes) -> Dict[str, object]:
    out: Dict[str, object] = {'classes': list(classes), 'map_50_95': None, 'map_50': None, 'per_class': {},
                              'per_size': {}, 'pr_curves': {}}
    if not images or not any(a['iscrowd'] == 0 for a in anns):
        return out
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    gt = COCO()
    gt.dataset = {'images': images, 'annotations': anns,
                  'categories': [{'id': k + 1, 'name': c} for k, c in enumerate(classes)]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        dt = gt.loadRes(dets) if dets else None
        if dt is None:
            return dict(out, map_50_95=0.0, map_50=0.0)
        ev = COCOeval(gt, dt, 'bbox')
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = ev.stats
    out['map_50_95'], out['map_50'] = _ap(stats[0]), _ap(stats[1])
    out['per_size'] = {'small': _ap(stats[3]), 'medium': _ap(stats[4]), 'large': _ap(stats[5])}
    precision = ev.eval['precision']          # [T iou, R recall, K class, A area, M maxdets]
    recall_points = ev.params.recThrs
    for k, cls in enumerate(classes):
        n_gt = sum(1 for a in anns if a['category_id'] == k + 1 and a['iscrowd'] == 0)
        if n_gt == 0:
            continue
        p = precision[:, :, k, 0, -1]
        ap_all = p[p > -1].mean() if (p > -1).any() else float('nan')
        p50 = precision[0, :, k, 0, -1]
        out['per_class'][cls] = {'ap_50_95': _ap(ap_all), 'ap_50': _ap(p50[p50 > -1].mean() if (p50 > -1).any() else -1),
                                 'ground_truth': n_gt,
                                 'detections': sum(1 for d in dets if d['category_id'] == k + 1)}
        out['pr_curves'][cls] = {'recall': [round(float(r), 3) for r in recall_points],
                                 'precision': [round(float(max(v, 0.0)), 4) for v in p50]}
    return out


def _ap(v) -> Optional[float]:
    v = float(v)
    return round(v, 6) if math.isfinite(v) and v >= 0 else None


# ---------------------------------------------------------------- lidar


def bev_ap_r40(entries, n_gt: int):
    """(AP|R40, recall list, precision list) from (score, is_tp) pairs of all frames."""
    if n_gt == 0:
        return None, [], []
    if not entries:
        return 0.0, [], []
    entries = sorted(entries, key=lambda e: -e[0])
    tp = np.cumsum([1 if t else 0 for _, t in entries])
    fp = np.cumsum([0 if t else 1 for _, t in entries])
    recall, precision = tp / n_gt, tp / np.maximum(tp + fp, 1)
    best = np.maximum.accumulate(precision[::-1])[::-1]     # highest precision at this recall or above
    ap = float(np.mean([best[recall >= r].max() if (recall >= r).any() else 0.0 for r in R40]))
    return round(ap, 6), [round(float(v), 4) for v in recall], [round(float(v), 4) for v in best]


def _not_counted(frame: SensorFrame, dets, dontcare) -> List[bool]:
    if frame.ignore_projection is None or not dets:
        return [False] * len(dets)
    centers = np.array([d.center for d in dets], dtype=np.float64)
    uvw = np.hstack([centers, np.ones((len(centers), 1))]) @ frame.ignore_projection.T
    with np.errstate(divide='ignore', invalid='ignore'):
        uv = uvw[:, :2] / uvw[:, 2:]
    w, h = frame.image_size
    inside = (uvw[:, 2] > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
    out = []
    for i in range(len(dets)):
        in_dc = any(x0 <= uv[i, 0] <= x1 and y0 <= uv[i, 1] <= y1 for x0, y0, x1, y1 in dontcare)
        out.append(bool(not inside[i] or in_dc))
    return out


def score_lidar(pairs, camera_truth: Optional[Dict[int, object]] = None, classes: Sequence[str] = LIDAR_CLASSES,
                sensor: str = 'lidar'):
    from aiat_perception.metrics.matching_3d import Evaluation3D, match_objects
    evaluation = Evaluation3D('distance', CENTER_DISTANCE_M, classes=tuple(classes))
    entries: Dict[str, list] = {c: [] for c in classes}
    n_gt = {c: 0 for c in classes}
    records = []
    camera_truth = camera_truth or {}
    cam_stamps = list(camera_truth)
    for frame, gt, rec in _frames_to_score(sensor, pairs, records):
        dets = [d for d in (frame.detections or []) if d.class_name in classes]
        dontcare = []
        pick = nearest_within([frame.stamp_ns], cam_stamps, 0)[0] if cam_stamps else None
        if pick is not None:
            boxes, names, _ = camera_truth[cam_stamps[pick]]
            dontcare = [tuple(b) for b, n in zip(boxes, names) if n == 'DontCare']
        ignore = _not_counted(frame, dets, dontcare)
        gts = [g for g in gt if g.class_name in classes]
        evaluation.add(dets, gts, ignore)
        tp = fp = 0
        for cls in classes:
            di = [i for i, d in enumerate(dets) if d.class_name == cls]
            gi = [g for g in gts if g.class_name == cls]
            n_gt[cls] += len(gi)
            match = match_objects([dets[i] for i in di], gi, 'iou', BEV_IOU.get(cls, 0.5), class_agnostic=True)
            matched = {a for a, _ in match.pairs}
            for k, i in enumerate(di):
                if k in matched or not ignore[i]:
                    entries[cls].append((dets[i].score, k in matched))
                    tp += k in matched
                    fp += k not in matched
        rec.update(tp=tp, fp=fp, fn=len(gts) - tp, ground_truth=len(gts), not_counted=int(sum(ignore)),
                   detections=[{'class': d.class_name, 'score': round(d.score, 3),
                                'center': [round(v, 2) for v in d.center]} for d in dets])
    per_class, curves = {}, {}
    for cls in classes:
        ap, rec_curve, prec_curve = bev_ap_r40(entries[cls], n_gt[cls])
        per_class[cls] = {'bev_ap_r40': ap, 'bev_iou_threshold': BEV_IOU.get(cls, 0.5), 'ground_truth': n_gt[cls],
                          'detections': len(entries[cls])}
        if rec_curve:
            curves[cls] = {'recall': rec_curve, 'precision': prec_curve}
    summary3d = evaluation.summary()
    distance = {k: {'recall': _num(v['recall']), 'ground_truth': v['ground_truth'], 'found': v['ground_truth'] - v['fn']}
                for k, v in summary3d['per_class'].items()}
    aps = [v['bev_ap_r40'] for v in per_class.values() if v['bev_ap_r40'] is not None]
    summary = {'classes': list(classes), 'bev_map_r40': round(float(np.mean(aps)), 6) if aps else None,
               'per_class': per_class, 'pr_curves': curves,
               'center_distance_m': CENTER_DISTANCE_M, 'center_distance_recall': distance,
               **_frame_counts(records)}
    return summary, records


# ---------------------------------------------------------------- fusion

FUSION_DISTANCE_IOU = 0.5
DISTANCE_BANDS = ((0.0, 20.0, '0-20'), (20.0, 40.0, '20-40'), (40.0, math.inf, '40+'))


def score_fusion(pairs, camera_truth: Optional[Dict[int, object]] = None, classes: Sequence[str] = LIDAR_CLASSES):
    """Fused objects (boxes in the lidar frame) against the 3D ground truth as the lidar's are (BEV
    AP|R40, centre-distance recall), plus the distance error of every matched object: a ground-truth
    box is matched through the camera, its 8 corners projected into the image (the bag's CameraInfo
    and /tf_static) and paired with the fused objects' camera boxes at IoU >= 0.5, same class,
    greedy by score (the project's one matcher); error = fused distance - distance of the box's
    centre, both from the camera frame's origin. The match does not look at distances, so a far-off
    estimate still counts."""
    summary, records = score_lidar(pairs, camera_truth, classes, sensor='fusion')
    by_index = {r['index']: r for r in records}
    errors: List[dict] = []
    for frame, gt in pairs:
        rec = by_index[frame.index]
        if rec['status'] != 'evaluated':
            continue
        found = fused_distance_errors(frame, [g for g in gt if g.class_name in classes])
        rec['distance_errors'] = found
        rec['fused'] = [{'class': f['camera_class'], 'box': [round(v, 1) for v in f['box']],
                         'distance': round(f['distance'], 3), 'center_source': f['center_source'],
                         'n_points': f['n_points']} for f in frame.extra.get('fused') or []]
        errors.extend(found)
    summary['distance_error'] = distance_summary(errors)
    return summary, records


def fused_distance_errors(frame: SensorFrame, gts) -> List[dict]:
    from aiat_perception.fusion.association import project_boxes
    from aiat_perception.metrics.matching import greedy_match, iou_matrix
    fused, dets = frame.extra.get('fused') or [], frame.detections or []
    if not gts or not fused:
        return []
    T, camera = frame.extra['cam_from_lidar'], frame.extra['camera']
    projected = project_boxes(gts, T, camera)
    iou = iou_matrix(np.array([f['box'] for f in fused], np.float64).reshape(-1, 4),
                     np.nan_to_num(projected.boxes, nan=0.0))
    iou[:, ~projected.in_view] = np.nan
    match = greedy_match(iou, np.array([d.score for d in dets], np.float64), FUSION_DISTANCE_IOU,
                         np.array([d.class_name for d in dets]), np.array([g.class_name for g in gts]))
    out = []
    for k, g in enumerate(match.gt_index.tolist()):
        if g < 0:
            continue
        true = float(np.linalg.norm(projected.centers_cam[g]))
        out.append({'class': gts[g].class_name, 'true_distance': round(true, 3),
                    'distance': round(fused[k]['distance'], 3), 'error': round(fused[k]['distance'] - true, 3),
                    'center_source': fused[k]['center_source']})
    return out


def distance_summary(errors: List[dict]) -> Dict[str, object]:
    def figures(items):
        if not items:
            return {'matched': 0, 'median_abs_m': None, 'p95_abs_m': None, 'max_abs_m': None, 'mean_m': None,
                    'median_relative': None}
        err = np.array([e['error'] for e in items], np.float64)
        true = np.array([e['true_distance'] for e in items], np.float64)
        return {'matched': len(items), 'median_abs_m': _num(np.median(np.abs(err))),
                'p95_abs_m': _num(np.percentile(np.abs(err), 95)), 'max_abs_m': _num(np.abs(err).max()),
                'mean_m': _num(err.mean()), 'median_relative': _num(np.median(np.abs(err) / np.maximum(true, 1e-9)))}
    out = figures(errors)
    out['per_class'] = {c: figures([e for e in errors if e['class'] == c]) for c in sorted({e['class'] for e in errors})}
    out['per_range'] = {name: figures([e for e in errors if lo <= e['true_distance'] < hi]) for lo, hi, name in DISTANCE_BANDS}
    out['definition'] = ('ground-truth boxes projected into the image matched to fused objects\' camera boxes at IoU >= '
                         f'{FUSION_DISTANCE_IOU}, same class; error = fused distance - distance of the box centre, '
                         'from the camera frame\'s origin (mean_m: the bias)')
    return out


# ---------------------------------------------------------------- scan


def score_scan(pairs):
    from aiat_perception.lidar.evaluate import LegScore
    from aiat_perception.metrics.matching_3d import Evaluation3D
    legs, persons = LegScore(), Evaluation3D('distance', SCAN_PERSON_DISTANCE_M, classes=('person',))
    records, used_legs = [], False
    for frame, gt, rec in _frames_to_score('scan', pairs, records):
        dets = frame.detections or []
        if isinstance(gt, np.ndarray):
            used_legs = True
            before = legs.legs_found
            legs.add(dets, gt)
            rec.update(labelled_legs=int(len(gt)), legs_found=legs.legs_found - before)
        else:
            gts = [g for g in gt if g.class_name == 'person']
            m = persons.add([d for d in dets if d.class_name == 'person'], gts)['person']
            rec.update(tp=len(m.pairs), fp=m.detections - len(m.pairs), fn=m.ground_truth - len(m.pairs),
                       ground_truth=m.ground_truth)
        rec['detections'] = [{'class': d.class_name, 'score': round(d.score, 3),
                              'center': [round(v, 2) for v in d.center[:2]]} for d in dets
                             if d.class_name in ('leg', 'person')]
    summary = _frame_counts(records)
    if used_legs:
        summary['legs'] = legs.summary()
        summary['legs']['definition'] = ('leg_recall: labelled legs with a leg detection within 0.25 m (one-to-one); '
                                         'person_found: labelled legs with a person output within 0.4 m')
    else:
        s = persons.summary()['per_class'].get('person/all', {})
        summary['persons'] = {'recall': _num(s.get('recall', float('nan'))), 'precision': _num(s.get('precision', float('nan'))),
                              'center_distance_m': SCAN_PERSON_DISTANCE_M, 'ground_truth': s.get('ground_truth', 0)}
    return summary, records
