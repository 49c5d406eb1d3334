"""The lidar_detector node: sensor_msgs/PointCloud2 in, vision_msgs/Detection3DArray out.

    ros2 launch aiat_perception lidar_detector.launch.py --show-args

Nodes, arguments and parameter files are described in config/launch/lidar_detector.yaml, which
`aiat-launch lidar_detector` starts identically where launch_ros is not installed.
"""
import sys
from pathlib import Path

try:
    from aiat_perception.launch_ros_actions import graph_launch_description
except ImportError:  # running from a source checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from aiat_perception.launch_ros_actions import graph_launch_description

GRAPH = 'lidar_detector'


def generate_launch_description():
    return graph_launch_description(GRAPH)
