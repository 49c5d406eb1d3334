"""``aiat-sim record SCENARIO --frames N --out BAG``: the simulator core (aiat_perception.sim, no ROS
graph) records a rosbag2 bag of its sensors and ground truth, so any scenario becomes a reproducible
evaluation drive. One simulation step per camera frame (1 / camera rate_hz); every enabled sensor is
sampled at each step and stamped with the simulation time after a fixed start.

Topics: /camera/image_raw (rgb8, optical frame), /camera/camera_info, /ground_truth/detections_2d
(visible boxes, the simulator's class names: person, car, bicycle, ...), /scan (LaserScan) with
/ground_truth/scan_persons (person boxes in the laser frame), /velodyne_points (PointCloud2) with
/ground_truth/detections_3d (boxes in the lidar frame; person -> pedestrian, bicycle -> cyclist, the
lidar detector's names), and /tf_static (base_link -> sensors).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import List, Optional

import numpy as np

START_NS = 1_700_000_000 * 1_000_000_000
LIDAR_CLASS = {'person': 'pedestrian', 'bicycle': 'cyclist', 'motorcycle': 'cyclist'}
SENSORS = ('camera', 'scan', 'points')


def _objects(boxes, frame_from_map, rename=None):
    from aiat_perception.metrics.matching_3d import Object3D
    out = []
    for b in boxes:
        pose = frame_from_map @ b.pose
        name = (rename or {}).get(b.class_name, b.class_name)
        out.append(Object3D(name, tuple(float(v) for v in pose[:3, 3]), tuple(float(v) for v in b.size),
                            math.atan2(pose[1, 0], pose[0, 0])))
    return out


def record(scenario_path, frames: int, out, sensors=SENSORS, seed: Optional[int] = None, storage: str = 'mcap',
           version: Optional[int] = None) -> dict:
    from aiat_perception.replay import messages as m
    from aiat_perception.replay import topics
    from aiat_perception.replay.bag_writer import DEFAULT_VERSION, BagWriter
    from aiat_perception.sim.scenario import load_scenario, resolve_scenario
    from aiat_perception.sim.transforms import invert
    from aiat_perception.sim.world import SimWorld
    scenario = load_scenario(resolve_scenario(scenario_path))
    ego = scenario.ego
    use = {'camera': ego.camera.enabled and 'camera' in sensors, 'scan': ego.lidar_2d.enabled and 'scan' in sensors,
           'points': ego.lidar_3d.enabled and 'points' in sensors}
    dt = 1.0 / ego.camera.rate_hz
    with SimWorld(scenario, seed) as world, BagWriter(out, storage, version or DEFAULT_VERSION) as bag:
        static = [(parent, child, T) for parent, child, T, is_static in world.transforms() if is_static]
        bag.write(topics.TF_STATIC, m.TF_MESSAGE, m.tf_message(static, START_NS), START_NS, latched=True)
        for i in range(frames):
            if i:
                world.step(dt)
            ns = START_NS + int(round(world.time * 1e9))
            map_from_base = world.map_from_base
            if use['camera']:
                frame = world.render_camera()
                h, w = frame.rgb.shape[:2]
                bag.write(topics.IMAGE, m.IMAGE, m.image(frame.rgb, 'rgb8', ns, frame.frame_id), ns)
                P = np.hstack([frame.K, np.zeros((3, 1))])
                bag.write(topics.CAMERA_INFO, m.CAMERA_INFO, m.camera_info(P, w, h, ns, frame.frame_id), ns)
                gt = world.ground_truth_2d(frame)
                bag.write(topics.GT_2D, m.DETECTION_2D_ARRAY,
                          m.detection_2d_array([g.bbox for g in gt], [g.class_name for g in gt], None, ns,
                                               frame.frame_id, ids=[g.actor for g in gt]), ns)
            if use['scan']:
                s = world.scan_2d()
                bag.write(topics.SCAN, m.LASER_SCAN, m.laser_scan(s.ranges, s.angle_min, s.angle_increment, s.range_min,
                                                                   s.range_max, ns, s.frame_id, s.scan_time), ns)
                laser_from_map = invert(map_from_base @ world.base_from_lidar_2d())
                persons = [o for o in _objects(world.ground_truth_3d(), laser_from_map) if o.class_name == 'person']
                bag.write('/ground_truth/scan_persons', m.DETECTION_3D_ARRAY,
                          m.detection_3d_array(persons, ns, s.frame_id), ns)
            if use['points']:
                c = world.scan_3d()
                bag.write(topics.POINTS, m.POINTCLOUD2,
                          m.pointcloud2(np.hstack([c.points, c.intensity[:, None]]), ns, c.frame_id), ns)
                lidar_from_map = invert(map_from_base @ world.base_from_lidar_3d())
                bag.write(topics.GT_3D, m.DETECTION_3D_ARRAY,
                          m.detection_3d_array(_objects(world.ground_truth_3d(), lidar_from_map, LIDAR_CLASS), ns,
                                               c.frame_id), ns)
        return dict(bag.counts)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='aiat-sim', description='Simulator tools (no ROS graph needed).')
    sub = parser.add_subparsers(dest='command', required=True)
    rec = sub.add_parser('record', help='record a bag of the sensors and ground truth of a scenario')
    rec.add_argument('scenario', help='scenario file or name in config/scenarios (e.g. photo_actors)')
    rec.add_argument('--frames', type=int, default=30)
    rec.add_argument('--out', type=Path, required=True)
    rec.add_argument('--sensors', default=','.join(SENSORS), help='comma-separated: camera, scan, points')
    rec.add_argument('--seed', type=int)
    rec.add_argument('--storage', default='mcap', choices=('mcap', 'sqlite3'))
    rec.add_argument('--rosbag2-version', type=int, default=5, choices=(5, 8, 9),
                     help="metadata.yaml version: 5 (Humble's; read by Humble and every later distribution), 8 or 9")
    args = parser.parse_args(argv)
    from aiat_perception.replay.bag_writer import BagWriteError
    from aiat_perception.sim.scenario import ScenarioError
    sensors = [s.strip() for s in args.sensors.split(',') if s.strip()]
    bad = [s for s in sensors if s not in SENSORS]
    try:
        if bad or not sensors:
            raise ValueError(f'--sensors: unknown {", ".join(bad) or "(none given)"} (choose from {", ".join(SENSORS)})')
        if not 1 <= args.frames <= 1_000_000:
            raise ValueError(f'--frames must be 1..1000000, got {args.frames}')
        counts = record(args.scenario, args.frames, args.out, sensors, args.seed, args.storage, args.rosbag2_version)
    except (ScenarioError, BagWriteError, ValueError) as exc:
        print('aiat-sim: ' + ' '.join(str(exc).split()), file=sys.stderr)
        return 2
    print(json.dumps({'bag': str(args.out), 'messages': counts}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
