"""lidar_detector: sensor_msgs/PointCloud2 in, vision_msgs/Detection3DArray out (classical pipeline:
crop, ground removal, voxel clustering, L-shape boxes, rule-based classes; aiat_perception/lidar/).

Topics (relative, remap as needed):
  in   points (sensor_msgs/PointCloud2, any field layout with float x/y/z; sensor-data QoS, depth 1)
       /tf_static (tf2_msgs/TFMessage, transient local; only with target_frame)
  out  detections (vision_msgs/Detection3DArray: header copied from the input, frame = the sensor's
       or target_frame; class_id car / pedestrian / cyclist / unknown, score, box pose and size)
       detections/markers (visualization_msgs/MarkerArray: boxes and labels, while subscribed)
       ~/latency (std_msgs/Float64MultiArray, labels in its layout), /diagnostics
Processing: newest cloud only (see :mod:`aiat_perception.nodes.lidar_common`). Parameters:
aiat_perception/node_params/lidar_detector.py, documented in config/lidar_detector.yaml.
"""
from __future__ import annotations

from sensor_msgs.msg import PointCloud2

from aiat_perception.lidar.detector import PARAMETERS, PointCloudDetector
from aiat_perception.msg_conversions import cloud_xyz
from aiat_perception.node_params.lidar_detector import TABLE
from aiat_perception.nodes.common import run_node
from aiat_perception.nodes.lidar_common import LidarDetectorBase


class LidarDetector(LidarDetectorBase):
    MESSAGE = PointCloud2
    INPUT_TOPIC = 'points'
    STAGES = ('conversion', 'filter', 'ground', 'clustering', 'fitting')
    TABLE = TABLE
    CORE_TABLE = PARAMETERS
    DESCRIPTION = 'lidar detector'

    def __init__(self, node_name: str = 'lidar_detector', **kwargs):
        self.non_finite_points = 0
        super().__init__(node_name, **kwargs)

    def make_core(self, params, previous):
        return PointCloudDetector(params, source=self.get_name())

    def input_size(self, msg) -> int:
        return int(msg.width) * int(msg.height)

    def convert(self, msg):
        xyz, non_finite = cloud_xyz(msg, nan='drop')
        self.non_finite_points += non_finite
        return xyz

    def detect(self, core, xyz):
        return core(xyz)

    def publish_diagnostics(self):
        self.last_counts = dict(self.last_counts, non_finite_points_total=self.non_finite_points)
        super().publish_diagnostics()


def main(args=None):
    raise SystemExit(run_node(LidarDetector, args))


if __name__ == '__main__':
    main()
