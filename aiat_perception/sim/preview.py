"""Render one simulator frame with its ground truth (and optionally a detector's boxes) drawn.

    python -m aiat_perception.sim.preview --scenario photo_actors --time 1.0 --out frame.png \
        [--bundle ~/.cache/aiat/bundles/nanodet-coco-416] [--seed 0] [--no-3d]

Ground truth: white 2D boxes from the segmentation mask with class and visibility, yellow
wireframes of the 3D boxes. Detections: coloured boxes with class and score. Prints JSON with the
frame's matching result (IoU >= 0.5, per class).
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Iterable, Optional

import cv2
import numpy as np

from aiat_perception.sim.ground_truth import project
from aiat_perception.sim.scenario import ScenarioError, load_scenario, resolve_scenario
from aiat_perception.sim.world import SimWorld

_EDGES = [(i, j) for i in range(8) for j in range(i + 1, 8) if bin(i ^ j).count('1') == 1]


def annotate(world: SimWorld, frame, detections=None, draw_3d: bool = True) -> np.ndarray:
    """BGR image of ``frame`` with ground truth (and ``Detections``) drawn."""
    from aiat_perception.draw import draw_boxes, draw_detections

    image = cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR)
    if draw_3d:
        cam = world.scenario.ego.camera
        for box in world.ground_truth_3d(cam.optical_frame_id):
            corners = box.corners()
            if (corners[:, 2] <= cam.near).any():
                continue
            uv = np.round(project(frame.K, corners)).astype(int)
            for i, j in _EDGES:
                cv2.line(image, tuple(uv[i]), tuple(uv[j]), (0, 220, 255), 1, cv2.LINE_AA)
    truth = world.ground_truth_2d(frame)
    image = draw_boxes(image, np.array([b.bbox for b in truth], np.float64).reshape(-1, 4) - [0, 0, 1, 1],
                       [f'GT {b.class_name} v{b.visibility:.2f}' for b in truth], color=(255, 255, 255),
                       thickness=1, copy=False)
    if detections is not None:
        image = draw_detections(image, detections, 'bgr', thickness=1, copy=False)
    return image


def main(argv: Optional[Iterable[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--scenario', required=True)
    parser.add_argument('--out', required=True)
    parser.add_argument('--time', type=float, default=0.0, help='simulation time of the frame (s)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--bundle', help='detector bundle directory (runs ONNX Runtime)')
    parser.add_argument('--no-3d', action='store_true', help='do not draw 3D boxes')
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        scenario = load_scenario(resolve_scenario(args.scenario))
    except ScenarioError as exc:
        print(f'preview: {exc}', file=sys.stderr)
        return 2
    with SimWorld(scenario, seed=args.seed) as world:
        world.step(args.time)
        frame = world.render_camera()
        detections, summary = None, {'scenario': scenario.name, 'time': args.time}
        if args.bundle:
            from aiat_perception.inference.detector import Detector
            from aiat_perception.metrics.matching import LabeledBox, match_frame

            detector = Detector(args.bundle)
            detections = detector.detect_one(frame.rgb, 'rgb8')
            truth = [LabeledBox(b.bbox, b.class_name) for b in world.ground_truth_2d(frame)
                     if b.class_name in detector.classes]
            found = [LabeledBox(tuple(float(v) for v in box), label, float(score))
                     for box, label, score in zip(detections.boxes, detections.labels, detections.scores)]
            result = match_frame(found, truth, 0.5)
            summary.update({'ground_truth': len(truth), 'detections': len(found), 'tp': result.tp,
                            'recall': round(result.recall, 3), 'precision': round(result.precision, 3),
                            'mean_iou': None if not result.matches else round(result.mean_iou, 3)})
            detector.close()
        if not cv2.imwrite(args.out, annotate(world, frame, detections, not args.no_3d)):
            print(f'preview: cannot write {args.out}', file=sys.stderr)
            return 2
    summary['out'] = args.out
    print(json.dumps(summary))
    return 0


if __name__ == '__main__':
    sys.exit(main())
