"""Parameters of the sim node (documented in config/sim.yaml)."""
from __future__ import annotations

import math
from typing import Dict, List

from aiat_perception.parameters import INT64_MAX, Param, ParameterError, ParameterTable

MODES = ('realtime', 'lockstep')
NOISE = (-math.inf, math.inf)


def parse_waits(items) -> Dict[str, int]:
    """``['topic:count', ...]`` (blanks ignored) -> ``{topic: count}``."""
    waits = {}
    for item in items:
        if not item:
            continue
        topic, sep, count = item.rpartition(':')
        if not sep or not topic or not count.isdigit():
            raise ParameterError(f"wait_for_subscribers: expected 'topic:count', got {item!r}")
        waits[topic] = int(count)
    return waits


def _check(p) -> List[str]:
    try:
        parse_waits(p['wait_for_subscribers'])
    except ParameterError as exc:
        return [str(exc)]
    return []


TABLE = ParameterTable('sim', [
    Param('scenario', 'photo_actors', 'scenario YAML: a path, or a file name in config/scenarios'),
    Param('seed', 0, 'seed of randomisation and sensor noise (with the scenario seed)'),
    Param('mode', 'realtime', 'realtime (system clock, frames skipped) or lockstep (/clock, waits '
          'for the detector)', choices=MODES),
    Param('detections_topic', 'detections', 'lockstep: topic of the detector answers'),
    Param('lockstep_sensor', 'camera', 'lockstep: the sensor whose frames wait for an answer: camera '
          '(Detection2DArray) or lidar_3d (Detection3DArray; 3D ground truth then comes with each cloud, '
          'max_frames counts clouds)', choices=('camera', 'lidar_3d')),
    Param('lockstep_timeout_s', 5.0, 'lockstep: seconds to wait for an answer before moving on',
          range=(0.0, math.inf), open_low=True),
    Param('wait_for_detector_s', 60.0, 'lockstep: seconds to wait at start for the peers',
          range=(0.0, math.inf)),
    Param('wait_for_subscribers', [''], "lockstep: also wait for these 'topic:count' subscribers"),
    Param('max_frames', 0, 'stop after this many frames of the lockstep sensor (camera in realtime mode); 0 = run until interrupted',
          range=(0, INT64_MAX)),
    Param('clock_start_s', 1.0, 'lockstep: simulation time 0 is published as this many seconds',
          range=(0.0, 1e9)),
    Param('camera_rate_hz', 0.0, 'camera rate override in Hz; 0 keeps the scenario rate',
          range=(0.0, 1000.0)),
    Param('publish_lidar_2d', True, 'publish the 2D lidar (scan)'),
    Param('publish_lidar_3d', True, 'publish the 3D lidar (points)'),
    Param('publish_ground_truth', True, 'publish 2D and 3D ground truth'),
    Param('exact_occlusion', True, 're-render occluded actors alone to measure visibility exactly'),
    Param('ground_truth_3d_frame', 'base_link', 'frame of the 3D ground truth: map, base_link or '
          'the camera optical frame'),
    Param('reliability', 'reliable', 'QoS reliability of the sensor topics',
          choices=('best_effort', 'reliable')),
    Param('lidar_2d_range_std', -1.0, '2D lidar range noise (m, 1 sigma); < 0 keeps the scenario value',
          range=NOISE),
    Param('lidar_2d_dropout', -1.0, '2D lidar dropout probability; < 0 keeps the scenario value',
          range=(-math.inf, 1.0)),
    Param('lidar_3d_range_std', -1.0, '3D lidar range noise (m, 1 sigma); < 0 keeps the scenario value',
          range=NOISE),
    Param('lidar_3d_dropout', -1.0, '3D lidar dropout probability; < 0 keeps the scenario value',
          range=(-math.inf, 1.0)),
], check=_check)
