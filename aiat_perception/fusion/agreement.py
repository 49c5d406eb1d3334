"""Camera-lidar agreement over a window of frames: a health check that needs no ground truth.

Three figures, pooled over the window (sums of counts, not means of per-frame rates, so a frame
with one detection weighs as little as it says):

- ``confirm_rate``: camera detections a lidar detection confirms / camera detections;
- ``miss_rate``: lidar detections (of the classes a camera should see) in the image that no camera
  box matches / such lidar detections;
- ``mean_iou``: mean IoU of the associated (camera box, projected lidar box) pairs.

A calibration that has moved shifts every projected lidar box: the IoU falls first, then
associations break (confirm rate down, miss rate up). Levels follow DiagnosticStatus (OK 0,
WARN 1, ERROR 2). With fewer than ``min_detections`` camera detections (or ``min_pairs``
associated pairs for the IoU) in the window a figure is not judged.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from enum import IntEnum
from typing import Deque, List, Optional, Tuple


class Level(IntEnum):
    OK = 0
    WARN = 1
    ERROR = 2


@dataclass
class AgreementThresholds:
    # Defaults from KITTI 000134 (pretrained camera detector, the lidar detector; docs/fusion.md):
    # with the true calibration the confirm rate is 0.7-0.8, the mean IoU 0.61-0.63, the miss rate
    # 0.57-0.64 (set by the camera detector's recall); rotating the extrinsic by 2 degrees in pitch
    # or yaw takes them to 0.40-0.56, 0.40-0.52 and 0.71-0.79. WARN sits between the two; ERROR
    # where 3 degrees of pitch take them (0.1, 0.37-0.47, 0.93). One frame is a thin basis: check
    # them on a sequence of the vehicle's own (the node's simulator test runs 50+ frames).
    warn_mean_iou: float = 0.55         # mean IoU below this: WARN
    error_mean_iou: float = 0.4         # below this: ERROR
    warn_confirm_rate: float = 0.6      # confirm rate below this: WARN
    error_confirm_rate: float = 0.3
    warn_miss_rate: float = 0.75        # miss rate above this: WARN
    error_miss_rate: float = 0.9
    min_detections: int = 10            # camera detections (and lidar detections in view) in the window to judge rates
    min_pairs: int = 5                  # associated pairs in the window to judge the mean IoU

    def __post_init__(self):
        for name in ('warn_mean_iou', 'error_mean_iou', 'warn_confirm_rate', 'error_confirm_rate',
                     'warn_miss_rate', 'error_miss_rate'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f'agreement threshold {name}: must be a number in [0, 1], got {value!r}')
        for name in ('min_detections', 'min_pairs'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f'agreement threshold {name}: must be a whole number >= 1, got {value!r}')
        if self.error_mean_iou > self.warn_mean_iou:
            raise ValueError('agreement thresholds: error_mean_iou must not exceed warn_mean_iou')
        if self.error_confirm_rate > self.warn_confirm_rate:
            raise ValueError('agreement thresholds: error_confirm_rate must not exceed warn_confirm_rate')
        if self.error_miss_rate < self.warn_miss_rate:
            raise ValueError('agreement thresholds: error_miss_rate must not be below warn_miss_rate')


@dataclass
class AgreementStatus:
    confirm_rate: float        # NaN: no camera detections in the window
    miss_rate: float           # NaN: no lidar detections in view
    mean_iou: float            # NaN: no associated pairs
    level: Level
    message: str
    frames: int
    camera_count: int
    lidar_in_view: int
    pairs: int

    def values(self) -> List[Tuple[str, str]]:
        """(key, value) pairs for a DiagnosticStatus."""
        def f(x):
            return 'nan' if math.isnan(x) else f'{x:.3f}'
        return [('confirm_rate', f(self.confirm_rate)), ('miss_rate', f(self.miss_rate)),
                ('mean_iou', f(self.mean_iou)), ('frames', str(self.frames)),
                ('camera_detections', str(self.camera_count)), ('lidar_in_view', str(self.lidar_in_view)),
                ('pairs', str(self.pairs))]


class AgreementMonitor:
    """``update(result, stamp)`` per fused frame; ``status()`` over the last ``window_frames``
    frames, or the frames of the last ``window_s`` seconds (by the stamps given to update)."""

    def __init__(self, window_s: Optional[float] = None, window_frames: Optional[int] = None,
                 thresholds: Optional[AgreementThresholds] = None):
        if (window_s is None) == (window_frames is None):
            raise ValueError('give the window as window_s (seconds) or window_frames, one of them')
        if window_s is not None and not (isinstance(window_s, (int, float)) and math.isfinite(window_s)
                                         and window_s > 0):
            raise ValueError(f'window_s must be a positive number of seconds, got {window_s!r}')
        if window_frames is not None and (isinstance(window_frames, bool) or not isinstance(window_frames, int)
                                          or window_frames < 1):
            raise ValueError(f'window_frames must be a whole number >= 1, got {window_frames!r}')
        self.window_s, self.window_frames = window_s, window_frames
        self.thresholds = thresholds or AgreementThresholds()
        # per frame: (stamp, camera_count, confirmed, lidar_in_view, lidar_missed, iou sum, pairs)
        self._frames: Deque[Tuple[float, int, int, int, int, float, int]] = deque()

    def update(self, result, stamp: Optional[float] = None) -> None:
        if self.window_s is not None and stamp is None:
            raise ValueError('a time window needs the stamp (seconds) of each frame')
        ious = [float(x) for x in result.ious if math.isfinite(x)]
        self._frames.append((float(stamp) if stamp is not None else 0.0, int(result.camera_count),
                             int(result.confirmed), int(result.lidar_in_view), int(result.lidar_missed),
                             float(sum(ious)), len(ious)))
        self._trim(stamp)

    def _trim(self, now: Optional[float]) -> None:
        if self.window_frames is not None:
            while len(self._frames) > self.window_frames:
                self._frames.popleft()
        elif now is not None:
            while self._frames and self._frames[0][0] < now - self.window_s:
                self._frames.popleft()

    def reset(self) -> None:
        self._frames.clear()

    def status(self, now: Optional[float] = None) -> AgreementStatus:
        """The figures and level over the window (``now``: drop frames older than the window first)."""
        if now is not None and self.window_s is not None:
            self._trim(now)
        t = self.thresholds
        cams = sum(f[1] for f in self._frames)
        confirmed = sum(f[2] for f in self._frames)
        in_view = sum(f[3] for f in self._frames)
        missed = sum(f[4] for f in self._frames)
        iou_sum = sum(f[5] for f in self._frames)
        pairs = sum(f[6] for f in self._frames)
        confirm = confirmed / cams if cams else math.nan
        miss = missed / in_view if in_view else math.nan
        iou = iou_sum / pairs if pairs else math.nan
        level, problems = Level.OK, []

        def judge(enough, value, bad_error, bad_warn, text):
            nonlocal level
            if not enough:
                return
            if bad_error(value):
                level = max(level, Level.ERROR)
                problems.append(text)
            elif bad_warn(value):
                level = max(level, Level.WARN)
                problems.append(text)

        judge(pairs >= t.min_pairs, iou, lambda x: x < t.error_mean_iou, lambda x: x < t.warn_mean_iou,
              f'mean IoU of projected lidar boxes {iou:.2f} (warn < {t.warn_mean_iou}, error < {t.error_mean_iou})')
        judge(cams >= t.min_detections, confirm, lambda x: x < t.error_confirm_rate,
              lambda x: x < t.warn_confirm_rate,
              f'lidar confirms {confirm:.0%} of camera detections (warn < {t.warn_confirm_rate:.0%}, '
              f'error < {t.error_confirm_rate:.0%})')
        judge(in_view >= t.min_detections, miss, lambda x: x > t.error_miss_rate, lambda x: x > t.warn_miss_rate,
              f'camera misses {miss:.0%} of lidar objects in view (warn > {t.warn_miss_rate:.0%}, '
              f'error > {t.error_miss_rate:.0%})')
        if problems:
            message = 'camera and lidar disagree (calibration or a sensor?): ' + '; '.join(problems)
        elif cams < t.min_detections and pairs < t.min_pairs:
            message = f'too few detections to judge agreement ({cams} camera, {pairs} pairs in the window)'
        else:
            message = 'camera and lidar agree'
        return AgreementStatus(confirm, miss, iou, level, message, len(self._frames), cams, in_view, pairs)
