"""The detector graphs an evaluation runs (``--graph``): which node evaluates which sensor of a bag.

Offline, ``--graph`` chooses the ROS-free cores that run; live, the node processes (``auto``: every
sensor of the bag with ground truth).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import List, Optional, Sequence

from aiat_perception.replay.bag_input import ReplayError, Streams

DETECTION_2D = 'vision_msgs/msg/Detection2DArray'
DETECTION_3D = 'vision_msgs/msg/Detection3DArray'


@dataclass(frozen=True)
class SensorNode:
    sensor: str            # camera | lidar | scan (the report's section)
    graph: str             # the executable and launch graph (config/launch/<graph>.yaml) of its detector
    module: str
    input_name: str        # the node's relative input topic, remapped to the bag's
    output_type: str

    @property
    def output_topic(self) -> str:
        return f'/aiat_eval/{self.sensor}/detections'


NODES = {
    'camera': SensorNode('camera', 'camera_detector', 'aiat_perception.nodes.camera_detector', 'image', DETECTION_2D),
    'lidar': SensorNode('lidar', 'lidar_detector', 'aiat_perception.nodes.lidar_detector', 'points', DETECTION_3D),
    'fusion': SensorNode('fusion', 'fusion', 'aiat_perception.nodes.fusion', 'detections', DETECTION_3D),
    'scan': SensorNode('scan', 'scan_detector', 'aiat_perception.nodes.scan_detector', 'scan', DETECTION_3D),
}
NEEDS = {'fusion': ('camera', 'lidar')}      # fusion runs on the camera and lidar detectors' outputs
GRAPHS = {n.graph: n.sensor for n in NODES.values()}


def sensor_topic(streams: Streams, sensor: str) -> Optional[str]:
    """The bag topic a sensor's detector reads (fusion: the camera's, when the bag also has a cloud,
    CameraInfo, /tf_static and 3D ground truth)."""
    if sensor == 'fusion':
        usable = streams.camera and streams.points and streams.camera_info and streams.tf_static and streams.gt_3d
        return streams.camera if usable else None
    return {'camera': streams.camera, 'lidar': streams.points, 'scan': streams.scan}[sensor]


def graph_sensors(graph: str, streams: Streams, bag) -> List[str]:
    """The sensors ``--graph`` runs: ``auto`` = every scored sensor of the bag, else a comma-separated
    list of detector graphs (camera_detector, lidar_detector, scan_detector, fusion: with the camera
    and lidar detectors it needs)."""
    names = [g.strip() for g in str(graph or 'auto').split(',') if g.strip()] or ['auto']
    available = [s for s in NODES if sensor_topic(streams, s)]
    if names == ['auto']:
        return available
    sensors = []
    for name in names:
        if name not in GRAPHS:
            raise ReplayError(f'--graph {name}: unknown graph (choose auto, {", ".join(GRAPHS)}, or several '
                              'separated by commas)')
        sensor = GRAPHS[name]
        if sensor not in available:
            what = ('an image, a point cloud, CameraInfo, /tf_static and 3D ground truth' if sensor == 'fusion'
                    else f'a {sensor} topic with ground truth')
            raise ReplayError(f'{bag}: --graph {name} needs {what}; the bag has '
                              f'{", ".join(available) or "none"} (name topics with --image-topic/--points-topic/'
                              '--scan-topic and --gt-2d/--gt-3d/--gt-scan)')
        for needed in (*NEEDS.get(sensor, ()), sensor):
            if needed not in sensors:
                sensors.append(needed)
    return [s for s in NODES if s in sensors]


def streams_for(streams: Streams, sensors: Sequence[str]) -> Streams:
    """``streams`` with only these sensors (their ground truth, CameraInfo, /tf_static and the camera
    ground truth's DontCare regions stay for the lidar rule), noting each sensor left out."""
    left_out = [s for s in NODES if sensor_topic(streams, s) and s not in sensors]
    notes = [f'--graph {",".join(NODES[s].graph for s in sensors)}: {s} was not evaluated' for s in left_out]
    chosen = replace(streams, notes=list(streams.notes) + notes,
                     camera=streams.camera if 'camera' in sensors else None,
                     points=streams.points if 'lidar' in sensors else None,
                     scan=streams.scan if 'scan' in sensors else None)
    if 'camera' not in sensors:
        chosen.camera_type = None
    return chosen
