"""Pairing sensor frames with ground truth by header stamp: each frame takes the ground truth whose
stamp is nearest to its own, if within the tolerance; a frame with none is skipped (not scored),
as driving_log_replayer's perception evaluation does (its default window is 75 ms)."""
from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np

DEFAULT_TOLERANCE_NS = 75_000_000


def nearest_within(frame_stamps: Sequence[int], truth_stamps: Sequence[int],
                   tolerance_ns: int = DEFAULT_TOLERANCE_NS) -> List[Optional[int]]:
    """Index into ``truth_stamps`` (any order) of the nearest stamp to each frame stamp, or None."""
    if tolerance_ns < 0:
        raise ValueError(f'tolerance must be >= 0, got {tolerance_ns} ns')
    if len(truth_stamps) == 0:
        return [None] * len(frame_stamps)
    truth = np.asarray(truth_stamps, dtype=np.int64)
    order = np.argsort(truth, kind='stable')
    sorted_truth = truth[order]
    frames = np.asarray(frame_stamps, dtype=np.int64)
    right = np.clip(np.searchsorted(sorted_truth, frames), 0, len(truth) - 1)
    left = np.clip(right - 1, 0, len(truth) - 1)
    pick = np.where(np.abs(sorted_truth[left] - frames) <= np.abs(sorted_truth[right] - frames), left, right)
    gap = np.abs(sorted_truth[pick] - frames)
    return [int(order[p]) if g <= tolerance_ns else None for p, g in zip(pick.tolist(), gap.tolist())]
