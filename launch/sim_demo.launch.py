"""Simulator -> camera detector -> IoU monitor against the simulator ground truth.

    ros2 launch aiat_perception sim_demo.launch.py --show-args

Nodes, arguments and parameter files are described in config/launch/sim_demo.yaml, which
`aiat-launch sim_demo` starts identically where launch_ros is not installed.
"""
import sys
from pathlib import Path

try:
    from aiat_perception.launch_ros_actions import graph_launch_description
except ImportError:  # running from a source checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from aiat_perception.launch_ros_actions import graph_launch_description

GRAPH = 'sim_demo'


def generate_launch_description():
    return graph_launch_description(GRAPH)
