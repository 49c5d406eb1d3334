"""What an evaluation run collects from a bag, before scoring: sensor frames (with the detections an
offline core or a live node produced for them) and ground truth, both by header stamp."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

THUMB_HEIGHT = 160
MAX_THUMBS = 5000


@dataclass
class SensorFrame:
    sensor: str                              # camera | lidar | scan
    index: int                               # order of this sensor's frames in the bag
    stamp_ns: int                            # header stamp
    detections: Optional[list] = None        # camera: (boxes Kx4, classes, scores); 3D: [Object3D]; None = none received
    processing_ms: float = float('nan')      # offline: core time; live: stamp -> output (latency)
    malformed: str = ''                      # why the input could not be used
    gt_inline: Optional[np.ndarray] = None   # leg labels paired by bag order (their stamps are zero)
    ignore_projection: Optional[np.ndarray] = None   # 3x4 pixels_from_sensor (lidar frustum rule)
    image_size: Optional[tuple] = None
    thumb: Optional[bytes] = None            # JPEG of the input, THUMB_HEIGHT rows (camera)
    thumb_scale: float = 1.0
    extra: dict = field(default_factory=dict)   # fusion: fused objects' camera boxes and distances, the extrinsic


@dataclass
class Collected:
    bag: str
    frames: List[SensorFrame] = field(default_factory=list)
    truth: Dict[str, Dict[int, object]] = field(default_factory=dict)   # sensor -> stamp -> ground truth
    notes: List[str] = field(default_factory=list)
    class_names: List[str] = field(default_factory=list)               # the camera detector's

    def of(self, sensor: str) -> List[SensorFrame]:
        return [f for f in self.frames if f.sensor == sensor]


def thumbnail(image: np.ndarray, encoding: str = 'bgr8'):
    import cv2
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif encoding.startswith('rgb'):
        image = cv2.cvtColor(image[:, :, :3], cv2.COLOR_RGB2BGR)
    image = image[:, :, :3]
    scale = THUMB_HEIGHT / float(image.shape[0])
    small = cv2.resize(image, (max(1, int(round(image.shape[1] * scale))), THUMB_HEIGHT), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode('.jpg', small, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return (data.tobytes() if ok else None), scale
