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

import numpy as np
from sensor_msgs.msg import LaserScan

from aiat_perception.lidar.scan import SCAN_PARAMETERS, ScanDetector
from aiat_perception.msg_conversions import laserscan_to_ranges
from aiat_perception.node_params.scan_detector import TABLE
from aiat_perception.nodes.common import run_node
from aiat_perception.nodes.lidar_common import LidarDetectorBase

BACKGROUND = ('background_scans', 'background_fraction')


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


def scan_arrays(msg):
    """(ranges with invalid beams as NaN, angles, range_min, range_max) of a LaserScan, validated by
    :func:`aiat_perception.msg_conversions.laserscan_to_ranges` (MessageFormatError naming the field)."""
    scan = laserscan_to_ranges(msg)
    return np.where(scan.valid, scan.ranges, np.nan), scan.angles, float(msg.range_min), float(msg.range_max)


def main(args=None):
    raise SystemExit(run_node(ScanDetectorNode, args))


if __name__ == '__main__':
    main()
