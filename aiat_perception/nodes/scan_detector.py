"""scan_detector: sensor_msgs/LaserScan in, vision_msgs/Detection3DArray out: persons (legs paired,
or one leg), legs, and optionally the other segments (aiat_perception/lidar/scan.py), at z = 0 in
the scanner's frame (boxes of height 0).

Topics (relative, remap as needed):
  in   scan (sensor_msgs/LaserScan; sensor-data QoS, depth 1)
       /tf_static (tf2_msgs/TFMessage, transient local; only with target_frame)
  out  detections (vision_msgs/Detection3DArray: header copied from the input; class_id person / leg /
       other), detections/markers (visualization_msgs/MarkerArray, while subscribed),
       ~/latency (std_msgs/Float64MultiArray), /diagnostics
Processing: in the subscription callback, newest scan only (see :mod:`aiat_perception.nodes.lidar_common`); the core's background
model (background_scans) learns from the scans it processes. Parameters:
aiat_perception/node_params/scan_detector.py, documented in config/scan_detector.yaml.
"""
from __future__ import annotations

import math

import numpy as np
from sensor_msgs.msg import LaserScan

from aiat_perception.lidar.scan import SCAN_PARAMETERS, ScanDetector
from aiat_perception.msg_conversions import MessageFormatError
from aiat_perception.node_params.scan_detector import TABLE
from aiat_perception.nodes.common import run_node
from aiat_perception.nodes.lidar_common import LidarDetectorBase

BACKGROUND = ('background_scans', 'background_fraction')


def scan_arrays(msg):
    """(ranges, angles, range_min, range_max) of a LaserScan; MessageFormatError naming the field.
    Stand-in until msg_conversions has the project's LaserScan converter."""
    numbers = {}
    for name in ('angle_min', 'angle_max', 'angle_increment', 'range_min', 'range_max'):
        value = float(getattr(msg, name))
        if not math.isfinite(value):
            raise MessageFormatError('LaserScan', name, f'{value} is not finite')
        numbers[name] = value
    ranges = np.asarray(msg.ranges, dtype=np.float32)
    if ranges.ndim != 1 or ranges.size == 0:
        raise MessageFormatError('LaserScan', 'ranges', 'no beams')
    if numbers['angle_increment'] == 0.0 and ranges.size > 1:
        raise MessageFormatError('LaserScan', 'angle_increment', f'0 with {ranges.size} beams')
    if abs((ranges.size - 1) * numbers['angle_increment']) > 2 * math.pi + abs(numbers['angle_increment']) + 1e-3:
        raise MessageFormatError('LaserScan', 'angle_increment', 'the beams cover more than one turn')
    angles = numbers['angle_min'] + np.arange(ranges.size, dtype=np.float64) * numbers['angle_increment']
    return ranges, angles, numbers['range_min'], numbers['range_max']


class ScanDetectorNode(LidarDetectorBase):
    MESSAGE = LaserScan
    INPUT_TOPIC = 'scan'
    STAGES = ('conversion', 'filter', 'segmentation', 'fitting')
    TABLE = TABLE
    CORE_TABLE = SCAN_PARAMETERS
    DESCRIPTION = 'scan detector'
    PROCESS_IN_CALLBACK = True   # about 1 ms a scan (benchmarks/lidar.py): no worker hand-over

    def __init__(self, node_name: str = 'scan_detector', **kwargs):
        super().__init__(node_name, **kwargs)

    def make_core(self, params, previous):
        core = ScanDetector(params, source=self.get_name())
        if previous is not None and all(previous.params[k] == params[k] for k in BACKGROUND):
            core.background = previous.background  # keep what the background model has learnt
        return core

    def input_size(self, msg) -> int:
        return len(msg.ranges)

    def convert(self, msg):
        return scan_arrays(msg)

    def detect(self, core, data):
        ranges, angles, range_min, range_max = data
        return core(ranges, angles, range_min, range_max)


def main(args=None):
    raise SystemExit(run_node(ScanDetectorNode, args))


if __name__ == '__main__':
    main()
