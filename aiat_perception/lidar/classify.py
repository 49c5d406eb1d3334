"""Transparent rule-based classes for fitted boxes: car / pedestrian / cyclist / unknown.

Each class has one or more size templates (ranges of length, width and height in metres; a car seen
only from its back or front is a separate "end-on" template, a car seen only along one side another,
which also needs that side to face the sensor: a wall or fence seen at a grazing angle is a long
thin box too, but a car at such an angle would show its back or front as well, making an L).
A box's membership in a range is 1
inside it and falls linearly to 0 at ``margin`` metres outside; a template's score is the smallest of
its three memberships, a class's score its best template's, times a factor for sparse clusters
(1 - exp(-points / points_scale)). The box takes the best class when that score reaches
``min_score``, else ``unknown`` with the best score. Every number is in :data:`CLASS_TEMPLATES`.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

Range = Tuple[float, float]

import numpy as np


# Ranges of length (the longer horizontal side), width and height in metres; the smallest angle
# (deg) between the long side and the line of sight; the range of the top extent (how much of the box
# length the top 40 % of its height spans: a car's roof ~0.8-0.9, a rider's torso over a bicycle <= 0.6).
CLASS_TEMPLATES: Dict[str, List[Dict[str, object]]] = {
    'car': [dict(length=(2.6, 5.6), width=(1.3, 2.3), height=(1.1, 2.1), view_deg=0.0, top=(0.65, 1.0)),   # L
            dict(length=(3.0, 5.6), width=(0.0, 1.3), height=(1.1, 2.1), view_deg=35.0, top=(0.65, 1.0)),  # side
            dict(length=(1.4, 2.1), width=(0.0, 1.2), height=(1.1, 1.7), view_deg=0.0, top=(0.65, 1.0))],  # end
    'pedestrian': [dict(length=(0.15, 1.0), width=(0.1, 0.8), height=(1.0, 2.0), view_deg=0.0, top=(0.0, 1.0))],
    'cyclist': [dict(length=(1.3, 2.1), width=(0.2, 1.0), height=(1.3, 2.1), view_deg=0.0, top=(0.0, 0.65))],
}
TOP_EXTENT_MARGIN = 0.1
CLASSES: Sequence[str] = ('car', 'pedestrian', 'cyclist')


def _membership(value: np.ndarray, bounds: Range, margin: float) -> np.ndarray:
    lo, hi = bounds
    outside = np.maximum(lo - value, value - hi)
    return np.clip(1.0 - np.maximum(outside, 0.0) / margin, 0.0, 1.0)


def side_view_angle(center: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """Angle (deg, 0-90) between each box's long side and the sensor's line of sight to its centre."""
    center = np.asarray(center, dtype=np.float64).reshape(-1, 3)
    sight = np.arctan2(center[:, 1], center[:, 0])
    return np.degrees(np.arcsin(np.clip(np.abs(np.sin(np.asarray(yaw) - sight)), 0.0, 1.0)))


def class_scores(size: np.ndarray, n_points: np.ndarray, margin: float = 0.3, points_scale: float = 15.0,
                 view_angle: Optional[np.ndarray] = None, cut: Optional[np.ndarray] = None,
                 top_extent: Optional[np.ndarray] = None, height_slack: Optional[np.ndarray] = None) -> np.ndarray:
    """K x len(CLASSES) scores of boxes (size = length, width, height; view_angle from
    :func:`side_view_angle`, None = every side faces the sensor). ``cut`` marks boxes whose top
    reaches the sensor's highest beam: the object is at least that tall, so a height above a
    template's range rules the template out instead of lowering the score. ``height_slack`` (m, per
    box) lowers the templates' smallest heights: the beam above an object's top may pass over it,
    so a sparse sensor sees objects up to one ring spacing lower than they are."""
    size = np.asarray(size, dtype=np.float64).reshape(-1, 3)
    cut = np.zeros(len(size), bool) if cut is None else np.asarray(cut, dtype=bool)
    top = np.full(len(size), 0.5) if top_extent is None else np.asarray(top_extent, dtype=np.float64)
    slack = np.zeros(len(size)) if height_slack is None else np.asarray(height_slack, dtype=np.float64)
    density = 1.0 - np.exp(-np.asarray(n_points, dtype=np.float64) / points_scale)
    view = np.full(len(size), 90.0) if view_angle is None else np.asarray(view_angle, dtype=np.float64)
    out = np.zeros((len(size), len(CLASSES)))
    for j, name in enumerate(CLASSES):
        for template in CLASS_TEMPLATES[name]:
            score = np.min([_membership(size[:, 0], template['length'], margin),
                            _membership(size[:, 1], template['width'], margin),
                            _membership(size[:, 2] + np.minimum(slack, np.maximum(
                                template['height'][0] - size[:, 2], 0.0)), template['height'], margin),
                            _membership(top, template['top'], TOP_EXTENT_MARGIN)], axis=0)
            score = np.where(view >= template['view_deg'], score, 0.0)
            score = np.where(cut & (size[:, 2] > template['height'][1]), 0.0, score)
            out[:, j] = np.maximum(out[:, j], score)
    return out * density[:, None]


def classify(size: np.ndarray, n_points: np.ndarray, min_score: float = 0.3, margin: float = 0.3,
             points_scale: float = 15.0, view_angle: Optional[np.ndarray] = None,
             cut: Optional[np.ndarray] = None, top_extent: Optional[np.ndarray] = None,
             height_slack: Optional[np.ndarray] = None) -> Tuple[List[str], np.ndarray]:
    """Class name and score of every box."""
    scores = class_scores(size, n_points, margin, points_scale, view_angle, cut, top_extent, height_slack)
    if len(scores) == 0:
        return [], np.zeros(0)
    best = np.argmax(scores, axis=1)
    best_score = scores[np.arange(len(scores)), best]
    names = [CLASSES[b] if s >= min_score else 'unknown' for b, s in zip(best.tolist(), best_score.tolist())]
    return names, best_score
