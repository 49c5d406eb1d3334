"""Parameter tables of the nodes, one ROS-free module per executable (see :mod:`aiat_perception.parameters`).

The launch validator and the tests read them without starting a node; the nodes declare them.
"""
from __future__ import annotations

import importlib

from aiat_perception.parameters import ParameterTable

# executable (console script) -> module holding its TABLE
MODULES = {
    'camera_detector': 'camera_detector',
    'image_publisher': 'image_publisher',
    'detection_listener': 'detection_listener',
    'sim': 'sim',
    'iou_monitor': 'iou_monitor',
    'lidar_detector': 'lidar_detector',
    'scan_detector': 'scan_detector',
    'fusion': 'fusion',
}


def table_for(executable: str) -> ParameterTable:
    """The parameter table of a node executable; KeyError for an unknown one."""
    return importlib.import_module(f'{__name__}.{MODULES[executable]}').TABLE
