"""Planar laser scans -> legs, persons and other segments, vectorised over beams and segments.

Segmentation: consecutive valid beams i, j belong to one segment unless their distance exceeds the
adaptive breakpoint threshold d_max = r * sin(dphi) / sin(lambda - dphi) + 3 sigma (Borges & Aldon's
adaptive breakpoint detector, as Lee / Dietmayer-style segmenters use: the gap a surface at the
grazing angle lambda would leave between two beams dphi apart at range r, plus the range noise).
Per segment (``reduceat`` over the beam array, no loop per segment): point count, width (first to
last point), a least-squares circle (Kasa fit) and how far the arc bulges towards the sensor.
Legs are small convex segments; legs closer than ``pair_distance`` pair into a person at their
midpoint, and an unpaired leg may stand for a person on its own (the other leg hidden).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Dict, Mapping, Optional

import numpy as np

from aiat_perception.lidar.params import ParameterTable, resolve
from aiat_perception.lidar.types import Detection3D, DetectionResult

SCAN_PARAMETERS: ParameterTable = {
    'range_min': (0.05, 'ignore returns nearer than this (m); the message range_min applies too', (0.0, 100.0)),
    'range_max': (10.0, 'ignore returns farther than this (m); the message range_max applies too', (0.1, 1000.0)),
    'breakpoint_lambda_deg': (10.0, 'grazing angle of the adaptive breakpoint threshold (deg)', (0.5, 89.0)),
    'breakpoint_sigma': (0.01, 'range noise of the scanner, sigma (m); 3 sigma is added to the threshold',
                         (0.0, 1.0)),
    'max_missing_beams': (2, 'a run of more beams without a return than this always splits a segment', (0, 100000)),
    'min_points': (4, 'fewest points in a segment', (1, 10000)),
    'max_points': (60, 'most points in a leg segment', (1, 100000)),
    'leg_min_width': (0.03, 'narrowest leg segment, first to last point (m)', (0.0, 5.0)),
    'leg_max_width': (0.35, 'widest leg segment, first to last point (m)', (0.01, 5.0)),
    'split_two_legs': (True, 'cut a segment up to two_leg_max_width wide at its farthest interior point into '
                       'two legs (legs side by side leave no gap between them)', None),
    'two_leg_min_width': (0.2, 'narrowest segment cut into two legs (m)', (0.0, 5.0)),
    'two_leg_max_width': (0.6, 'widest segment cut into two legs (m)', (0.0, 5.0)),
    'two_leg_min_notch': (0.01, 'the notch between two legs lies at least this much farther than the nearest '
                          'point of each leg (m)', (0.0, 1.0)),
    'leg_max_radius': (0.25, 'largest radius of the circle fitted to a leg (m)', (0.01, 5.0)),
    'leg_min_bulge': (-1.0, 'a leg arc must bulge towards the sensor by at least this (m) measured from the '
                      'chord between its end points (negative: may be hollow by that much)', (-1.0, 1.0)),
    'leg_position': ('centroid', 'where a leg is: centroid of its points, or the centre of the fitted circle '
                     '(falls back to the centroid when no circle up to leg_max_radius fits)', ('centroid', 'circle')),
    'leg_max_range': (8.0, 'legs farther than this are not reported (m)', (0.1, 1000.0)),
    'pair_distance': (0.5, 'two legs closer than this (centre to centre) are one person (m)', (0.0, 5.0)),
    'single_leg_person': (True, 'report an unpaired leg as a person too (its other leg hidden)', None),
    'single_leg_score': (0.5, 'score of a person seen by one leg (two legs: 1.0 x leg scores)', (0.0, 1.0)),
    'background_scans': (50, 'static scanner: remember this many scans; a return its beam gave (within '
                         'background_margin) in background_fraction of them is background (walls, furniture) and '
                         'legs must not be. 0 = off (a moving platform)', (0, 10000)),
    'background_margin': (0.05, 'range tolerance of the background model (m)', (0.0, 10.0)),
    'background_fraction': (0.5, 'share of remembered returns of a beam at the same range that makes a return background',
                            (0.0, 1.0)),
    'output_legs': (True, 'report legs as detections (class leg)', None),
    'output_other': (False, 'report the other segments too (class other, box around the points)', None),
}


@dataclass
class Segments:
    start: np.ndarray       # K: index of the first point (into the valid points) of each segment
    count: np.ndarray       # K points
    width: np.ndarray       # K first-to-last distance
    centroid: np.ndarray    # K x 2
    circle: np.ndarray      # K x 2 circle centres (nan where the fit is degenerate)
    radius: np.ndarray      # K (inf where degenerate)
    bulge: np.ndarray       # K: how far the middle point lies nearer the sensor than the chord (m)


def valid_points(ranges: np.ndarray, angles: np.ndarray, range_min: float, range_max: float):
    """Indices, ranges and angles of finite returns within [range_min, range_max]."""
    ranges = np.asarray(ranges, dtype=np.float64).ravel()
    angles = np.asarray(angles, dtype=np.float64).ravel()
    if ranges.shape != angles.shape:
        raise ValueError(f'{ranges.size} ranges but {angles.size} angles')
    with np.errstate(invalid='ignore'):
        ok = np.isfinite(ranges) & np.isfinite(angles) & (ranges >= range_min) & (ranges <= range_max)
    idx = np.flatnonzero(ok)
    return idx, ranges[idx], angles[idx]


def breakpoints(r: np.ndarray, a: np.ndarray, xy: np.ndarray, lam: float, sigma: float,
                beam: Optional[np.ndarray] = None, max_missing: int = 2) -> np.ndarray:
    """True between consecutive points (N-1) where a new segment starts: where their gap exceeds the
    adaptive threshold, or more than ``max_missing`` beams without a return lie between them (beam
    numbers in ``beam``); over a long run of missing beams the threshold would grow without bound."""
    if len(r) < 2:
        return np.zeros(0, bool)
    dphi = np.abs(np.diff(a))
    gap = np.hypot(*(xy[1:] - xy[:-1]).T)
    with np.errstate(divide='ignore', invalid='ignore'):
        d_max = np.minimum(r[1:], r[:-1]) * np.sin(dphi) / np.sin(lam - dphi) + 3.0 * sigma
    brk = (dphi >= lam) | ~(gap <= d_max)
    if beam is not None:
        brk |= np.diff(beam) > max_missing + 1
    return brk


def segment(r: np.ndarray, a: np.ndarray, lam: float, sigma: float, beam: Optional[np.ndarray] = None,
            max_missing: int = 2, extra_starts: Optional[np.ndarray] = None):
    """Segments of the valid points (ranges r, angles a, beam numbers ``beam``) and their x-y points;
    ``extra_starts`` are point indices where a segment must start as well."""
    xy = np.stack([r * np.cos(a), r * np.sin(a)], axis=1)
    if len(r) == 0:
        z = np.zeros(0)
        return Segments(np.zeros(0, np.int64), np.zeros(0, np.int64), z, np.zeros((0, 2)), np.zeros((0, 2)), z, z), xy
    brk = breakpoints(r, a, xy, lam, sigma, beam, max_missing)
    if extra_starts is not None and len(extra_starts):
        brk[np.asarray(extra_starts) - 1] = True
    start = np.concatenate([[0], np.flatnonzero(brk) + 1])
    count = np.diff(np.append(start, len(r)))
    last = start + count - 1
    width = np.hypot(*(xy[last] - xy[start]).T)
    label = np.repeat(np.arange(len(start)), count)
    centroid = np.add.reduceat(xy, start, axis=0) / count[:, None]
    c = xy - centroid[label]
    # Kasa circle fit on centred points: [Sxx Sxy; Sxy Syy] [cx cy]^T = 0.5 [Sxxx + Sxyy; Sxxy + Syyy]
    sxx = np.add.reduceat(c[:, 0] * c[:, 0], start)
    syy = np.add.reduceat(c[:, 1] * c[:, 1], start)
    sxy = np.add.reduceat(c[:, 0] * c[:, 1], start)
    sq = c[:, 0] ** 2 + c[:, 1] ** 2
    bx = 0.5 * np.add.reduceat(c[:, 0] * sq, start)
    by = 0.5 * np.add.reduceat(c[:, 1] * sq, start)
    det = sxx * syy - sxy * sxy
    scale = (sxx + syy) ** 2
    good = (count >= 3) & (det > 1e-9 * np.maximum(scale, 1e-30))
    with np.errstate(divide='ignore', invalid='ignore'):
        cx = np.where(good, (bx * syy - by * sxy) / det, np.nan)
        cy = np.where(good, (by * sxx - bx * sxy) / det, np.nan)
        radius = np.where(good, np.sqrt(cx * cx + cy * cy + (sxx + syy) / count), np.inf)
    circle = np.stack([cx, cy], axis=1) + centroid
    # bulge: distance of the middle point from the chord, positive when nearer the sensor
    mid = xy[start + count // 2] - xy[start]
    chord = xy[last] - xy[start]
    length = np.hypot(*chord.T)
    side_mid = chord[:, 0] * mid[:, 1] - chord[:, 1] * mid[:, 0]
    side_sensor = chord[:, 0] * -xy[start, 1] + chord[:, 1] * xy[start, 0]
    with np.errstate(divide='ignore', invalid='ignore'):
        bulge = np.where(length > 1e-9, np.abs(side_mid) / length * np.sign(side_mid * side_sensor), 0.0)
    return Segments(start, count, width, centroid, circle, radius, bulge), xy


class ScanDetector:
    """One call per scan: ``detector(ranges, angles, range_min, range_max) -> DetectionResult`` with
    legs, persons (and other segments) at z = 0 in the scanner's frame."""

    def __init__(self, params: Optional[Mapping[str, object]] = None, source: str = 'parameters'):
        self.params: Dict[str, object] = resolve(SCAN_PARAMETERS, params, source)
        self.background = BeamBackground(self.params['background_scans'], self.params['background_fraction'])

    def __call__(self, ranges, angles, range_min: float = 0.0, range_max: float = math.inf) -> DetectionResult:
        p = self.params
        times: Dict[str, float] = {}
        t0 = time.perf_counter()
        lo = max(float(p['range_min']), float(range_min) if math.isfinite(range_min) else 0.0)
        hi = min(float(p['range_max']), float(range_max) if range_max > 0 else math.inf)
        beam, r, a = valid_points(ranges, angles, lo, hi)
        foreground = self.background.update(np.size(ranges), beam, r, p['background_margin'])
        t1 = time.perf_counter()
        times['filter'] = (t1 - t0) * 1e3
        lam, sigma = math.radians(p['breakpoint_lambda_deg']), p['breakpoint_sigma']
        seg, xy = segment(r, a, lam, sigma, beam, p['max_missing_beams'])
        splits = self._two_leg_splits(seg, r)
        if len(splits):
            seg, xy = segment(r, a, lam, sigma, beam, p['max_missing_beams'], splits)
        t2 = time.perf_counter()
        times['segmentation'] = (t2 - t1) * 1e3
        detections = self._classify(seg, xy, foreground)
        times['fitting'] = (time.perf_counter() - t2) * 1e3
        counts = {'beams': int(np.size(ranges)), 'points_valid': int(len(r)), 'segments': int(len(seg.count))}
        return DetectionResult(detections, times, counts)

    def _two_leg_splits(self, seg: Segments, r: np.ndarray) -> np.ndarray:
        """Where to cut segments that look like two legs side by side: between two_leg_min_width and
        two_leg_max_width wide, with a notch (the farthest interior point) at least two_leg_min_notch
        behind the nearest point on each side of it. A flat or slanted wall has no such notch."""
        p = self.params
        if not p['split_two_legs'] or len(seg.count) == 0:
            return np.zeros(0, np.int64)
        cand = ((seg.width >= p['two_leg_min_width']) & (seg.width <= p['two_leg_max_width'])
                & (seg.count >= 2 * p['min_points']) & (seg.count <= 2 * p['max_points']))
        if not cand.any():
            return np.zeros(0, np.int64)
        label = np.repeat(np.arange(len(seg.count)), seg.count)
        pos = np.arange(len(r)) - seg.start[label]
        edge = p['min_points']
        interior = cand[label] & (pos >= edge) & (pos < seg.count[label] - edge)
        if not interior.any():
            return np.zeros(0, np.int64)
        idx = np.flatnonzero(interior)
        deepest = np.full(len(seg.count), -np.inf)
        np.maximum.at(deepest, label[idx], r[idx])
        hits = idx[r[idx] == deepest[label[idx]]]
        segs, first = np.unique(label[hits], return_index=True)
        split = hits[first]
        # nearest point before and after the notch, per candidate segment
        near_before = np.full(len(seg.count), np.inf)
        near_after = np.full(len(seg.count), np.inf)
        in_split = np.isin(label, segs)
        where = np.flatnonzero(in_split)
        cut = np.full(len(seg.count), -1)
        cut[segs] = split
        is_before = where < cut[label[where]]
        np.minimum.at(near_before, label[where[is_before]], r[where[is_before]])
        np.minimum.at(near_after, label[where[~is_before]], r[where[~is_before]])
        notch = deepest - np.maximum(near_before, near_after)
        return split[notch[segs] >= p['two_leg_min_notch']]

    def _classify(self, seg: Segments, xy: np.ndarray, foreground: Optional[np.ndarray] = None):
        p = self.params
        moving = np.ones(len(seg.count), bool)
        if foreground is not None and len(seg.count):
            moving = np.add.reduceat(foreground.astype(np.int64), seg.start) * 2 >= seg.count
        fits = np.isfinite(seg.radius) & (seg.radius <= p['leg_max_radius'])
        if p['leg_position'] == 'circle':
            position = np.where(fits[:, None], seg.circle, seg.centroid)
        else:
            position = seg.centroid.copy()
        leg = ((seg.count >= p['min_points']) & (seg.count <= p['max_points'])
               & (seg.width >= p['leg_min_width']) & (seg.width <= p['leg_max_width'])
               & (seg.bulge >= p['leg_min_bulge']) & (np.hypot(*seg.centroid.T) <= p['leg_max_range'])
               & moving)
        # score: how well the segment looks like a leg seen from the side (full width, round)
        score = np.clip(seg.count / 5.0, 0.0, 1.0) * np.where(fits, 1.0, 0.6)
        out = []
        legs = np.flatnonzero(leg)
        diameter = np.clip(np.where(fits, 2 * seg.radius, seg.width), 0.05, 0.4)
        if p['output_legs']:
            for k in legs.tolist():
                out.append(Detection3D('leg', float(score[k]), (float(position[k, 0]), float(position[k, 1]), 0.0),
                                       (float(diameter[k]),) * 2 + (0.0,), 0.0, int(seg.count[k]), 'cylinder'))
        out += self._persons(position[legs], score[legs], seg.count[legs], diameter[legs])
        if p['output_other']:
            for k in np.flatnonzero(~leg & (seg.count >= p['min_points'])).tolist():
                pts = xy[seg.start[k]:seg.start[k] + seg.count[k]]
                lo, hi = pts.min(axis=0), pts.max(axis=0)
                c = (lo + hi) / 2.0
                out.append(Detection3D('other', 1.0, (float(c[0]), float(c[1]), 0.0),
                                       (float(hi[0] - lo[0]), float(hi[1] - lo[1]), 0.0), 0.0, int(seg.count[k])))
        return out

    def _persons(self, pos: np.ndarray, score: np.ndarray, count: np.ndarray, diameter: np.ndarray):
        p = self.params
        n = len(pos)
        out = []
        paired = np.zeros(n, bool)
        if n >= 2 and p['pair_distance'] > 0:
            dist = np.hypot(pos[:, None, 0] - pos[None, :, 0], pos[:, None, 1] - pos[None, :, 1])
            ii, jj = np.nonzero(np.triu(dist <= p['pair_distance'], k=1))
            # closest pairs first, each leg in at most one person (a loop over candidate leg pairs: a handful)
            for i, j in zip(ii[np.argsort(dist[ii, jj], kind='stable')].tolist(),
                            jj[np.argsort(dist[ii, jj], kind='stable')].tolist()):
                if not paired[i] and not paired[j]:
                    paired[i] = paired[j] = True
                    mid = (pos[i] + pos[j]) / 2.0
                    span = float(dist[i, j]) + float(max(diameter[i], diameter[j]))
                    yaw = math.atan2(pos[j, 1] - pos[i, 1], pos[j, 0] - pos[i, 0])
                    out.append(Detection3D('person', float(min(score[i], score[j])),
                                           (float(mid[0]), float(mid[1]), 0.0), (span, float(max(diameter[i], diameter[j])), 0.0),
                                           (yaw + math.pi / 2.0) % math.pi - math.pi / 2.0,
                                           int(count[i] + count[j])))
        if p['single_leg_person']:
            for k in np.flatnonzero(~paired).tolist():
                out.append(Detection3D('person', float(score[k] * p['single_leg_score']),
                                       (float(pos[k, 0]), float(pos[k, 1]), 0.0), (float(diameter[k]),) * 2 + (0.0,),
                                       0.0, int(count[k]), 'cylinder'))
        return out


class BeamBackground:
    """Per-beam background of a static scanner: a return is background when, of the last ``scans``
    scans in which its beam returned anything, at least ``fraction`` returned about the same range
    (within ``margin``). Walls and furniture are, also when seen only now and then; a person walking
    is not, nor a person passing through a doorway where the beams beyond return nothing."""

    def __init__(self, scans: int, fraction: float = 0.5):
        self.scans = int(scans)
        self.fraction = float(fraction)
        self._buffer: Optional[np.ndarray] = None
        self._next = 0
        self._filled = 0

    def update(self, beams: int, beam: np.ndarray, r: np.ndarray, margin: float) -> Optional[np.ndarray]:
        """Foreground flag of each valid point (None when the model is off), then remember this scan."""
        if self.scans <= 0:
            return None
        if self._buffer is None or self._buffer.shape[1] != beams:
            self._buffer = np.full((self.scans, beams), np.nan)
            self._next = self._filled = 0
        past = self._buffer[:, beam]
        with np.errstate(invalid='ignore'):
            same = np.count_nonzero(np.abs(past - r) <= margin, axis=0)
        returned = np.count_nonzero(np.isfinite(past), axis=0)
        foreground = (returned == 0) | (same < self.fraction * returned)
        row = np.full(beams, np.nan)
        row[beam] = r
        self._buffer[self._next] = row
        self._next = (self._next + 1) % self.scans
        self._filled = min(self._filled + 1, self.scans)
        return foreground
