"""The fusion node: camera detections + CameraInfo + lidar cloud in, fused vision_msgs/Detection3DArray out.

    ros2 launch aiat_perception fusion.launch.py --show-args

Nodes, arguments and parameter files are described in config/launch/fusion.yaml, which
`aiat-launch fusion` starts identically where launch_ros is not installed.
"""
import sys
from pathlib import Path

try:
    from aiat_perception.launch_ros_actions import graph_launch_description
except ImportError:  # running from a source checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from aiat_perception.launch_ros_actions import graph_launch_description

GRAPH = 'fusion'


def generate_launch_description():
    return graph_launch_description(GRAPH)
