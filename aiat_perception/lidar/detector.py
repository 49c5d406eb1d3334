"""Point cloud -> 3D detections: crop, ground removal, clustering, box fitting, classification.

``PointCloudDetector(params)(points)`` is one call per cloud and returns the detections (sensor
frame) with per-stage wall times; a node only converts the message and publishes. Defaults start
from Autoware's published parameters; the changes made on the real KITTI scans are explained in
config/lidar_detector.yaml.
"""
from __future__ import annotations

import time
from typing import Dict, Mapping, Optional

import numpy as np

from aiat_perception.lidar import classify as classes
from aiat_perception.lidar.clustering import euclidean_clusters
from aiat_perception.lidar.filters import as_points, crop_mask
from aiat_perception.lidar.ground import polar_grid_ground, ransac_ground
from aiat_perception.lidar.params import ParameterTable, resolve
from aiat_perception.lidar.shapes import complete_car, fit_boxes, lshape_angles
from aiat_perception.lidar.types import Detection3D, DetectionResult

PARAMETERS: ParameterTable = {
    'sensor_height': (1.73, 'height of the sensor above the ground under it (m); KITTI HDL-64E: 1.73', (0.0, 10.0)),
    'vertical_resolution_deg': (0.4, 'angle between neighbouring rings (deg): HDL-64E 0.4, VLP-16 2.0; objects may '
                                'look up to one ring gap lower than they are (counts where the gap exceeds '
                                'class_margin)', (0.0, 45.0)),
    'range_min': (1.0, 'drop points nearer than this horizontally (m): the vehicle itself', (0.0, 50.0)),
    'range_max': (80.0, 'drop points farther than this horizontally (m)', (1.0, 300.0)),
    'z_min': (-5.0, 'drop points lower than this in the sensor frame (m)', (-50.0, 50.0)),
    'z_max': (3.0, 'drop points higher than this in the sensor frame (m)', (-50.0, 50.0)),
    'max_height_above_ground': (2.5, 'drop non-ground points higher than this above their ground (m); '
                                'Autoware detection_range_z_max', (0.1, 20.0)),
    'ground_method': ('grid', 'grid (polar grid, follows slopes) or ransac (one plane)', ('grid', 'ransac')),
    'ground_sector_deg': (1.0, 'azimuth width of a ground-grid sector (deg); Autoware radial_divider_angle',
                          (0.1, 45.0)),
    'ground_bin_m': (0.5, 'range length of a ground-grid cell (m)', (0.05, 10.0)),
    'ground_local_slope_deg': (13.0, 'steepest rise between neighbouring ground cells (deg); Autoware '
                               'local_slope_max_angle', (0.0, 45.0)),
    'ground_global_slope_deg': (10.0, 'steepest rise of the ground seen from under the sensor (deg); Autoware '
                                'global_slope_max_angle', (0.0, 45.0)),
    'ground_chain_tolerance': (0.15, 'height a ground cell may differ from the slope-predicted height (m)',
                               (0.0, 2.0)),
    'ground_max_gap_m': (4.0, 'longest range gap over which the local slope is extrapolated (m)', (0.1, 100.0)),
    'ground_height_threshold': (0.2, 'a point higher than this above its ground is an obstacle (m); Autoware '
                                'non_ground_height_threshold', (0.0, 2.0)),
    'ransac_distance': (0.15, 'ransac: inlier distance to the plane (m)', (0.01, 2.0)),
    'cluster_tolerance': (0.7, 'largest gap between voxel centroids of one cluster (m); Autoware tolerance',
                          (0.05, 5.0)),
    'cluster_voxel_leaf': (0.3, 'voxel size for clustering (m); 0 clusters the points themselves; Autoware '
                           'voxel_leaf_size', (0.0, 2.0)),
    'cluster_use_height': (False, 'measure cluster gaps in 3D (true) or in the ground plane (false); Autoware '
                           'use_height', None),
    'cluster_min_points': (10, 'smallest cluster (points); Autoware min_cluster_size', (1, 1000000)),
    'cluster_max_points': (20000, 'largest cluster (points)', (1, 10000000)),
    'lshape_angle_step_deg': (1.0, 'angle step of the L-shape search over 0-90 deg', (0.1, 45.0)),
    'lshape_max_distance': (0.16, 'points farther than this from their nearest box edge do not count in the '
                            'closeness score (m)', (0.01, 5.0)),
    'lshape_max_extent': (10.0, 'clusters with a footprint side longer than this skip the L-shape search (m); '
                          'no class fits them', (0.5, 1000.0)),
    'class_min_score': (0.5, 'below this score a box is "unknown"', (0.0, 1.0)),
    'class_margin': (0.3, 'size tolerance of the class templates: score falls to 0 this far outside (m)',
                     (0.01, 5.0)),
    'class_points_scale': (30.0, 'score factor 1 - exp(-points / this) for sparse clusters', (0.1, 10000.0)),
    'top_beam_tolerance_deg': (0.5, 'a cluster whose highest point is within this of the highest beam in the '
                               'cloud is cut off at the top: taller than it looks', (0.0, 10.0)),
    'car_complete': (True, 'complete cars seen only from one end or one side to car_length x car_width, '
                     'growing away from the sensor', None),
    'car_length': (3.9, 'length of a completed car (m)', (1.0, 10.0)),
    'car_width': (1.6, 'width of a completed car (m)', (0.5, 5.0)),
    'cylinder_for_pedestrians': (True, 'report pedestrians as cylinders (diameter = longer side)', None),
    'output_unknown': (True, 'also report clusters of no class', None),
}


class PointCloudDetector:
    """One call per cloud: ``detector(points) -> DetectionResult``. ``points`` is N x 3+ (x, y, z, ...)
    or a structured array with x, y, z fields, in a sensor frame with z up."""

    def __init__(self, params: Optional[Mapping[str, object]] = None, source: str = 'parameters'):
        self.params: Dict[str, object] = resolve(PARAMETERS, params, source)

    def __call__(self, points) -> DetectionResult:
        p = self.params
        times: Dict[str, float] = {}
        t0 = time.perf_counter()
        pts = as_points(points)
        xyz = pts[:, :3]
        with np.errstate(invalid='ignore', over='ignore'):
            r = np.hypot(xyz[:, 0], xyz[:, 1])
        keep = crop_mask(xyz, p['range_min'], p['range_max'], p['z_min'], p['z_max'], r)
        if not keep.all():
            xyz, r = xyz[keep], r[keep]
        t1 = time.perf_counter()
        times['filter'] = (t1 - t0) * 1e3
        if p['ground_method'] == 'ransac':
            obstacle, ground_z = ransac_ground(xyz, p['sensor_height'], p['ransac_distance'],
                                               p['ground_global_slope_deg'],
                                               height_threshold=p['ground_height_threshold'])
        else:
            obstacle, ground_z = polar_grid_ground(
                xyz, p['sensor_height'], p['range_max'], p['ground_sector_deg'], p['ground_bin_m'],
                p['ground_local_slope_deg'], p['ground_global_slope_deg'], p['ground_chain_tolerance'],
                p['ground_max_gap_m'], p['ground_height_threshold'], r)
        obstacle &= xyz[:, 2] - ground_z <= p['max_height_above_ground']
        obj, obj_ground = xyz[obstacle], ground_z[obstacle]
        t2 = time.perf_counter()
        times['ground'] = (t2 - t1) * 1e3
        clusters = euclidean_clusters(obj, p['cluster_tolerance'], p['cluster_voxel_leaf'],
                                      p['cluster_use_height'], p['cluster_min_points'], p['cluster_max_points'])
        t3 = time.perf_counter()
        times['clustering'] = (t3 - t2) * 1e3
        # voxel centroids of a surface lie on it: the search runs on them, the extents on all points
        angles = lshape_angles(clusters.centroids, clusters.centroid_labels, clusters.count,
                               p['lshape_angle_step_deg'], max_distance=p['lshape_max_distance'],
                               max_extent=p['lshape_max_extent'])
        boxes = fit_boxes(obj, clusters.labels, clusters.count, angles, obj_ground)
        highest_beam = float(np.arctan((xyz[:, 2] / np.maximum(r, 1e-3)).max())) if len(xyz) else 0.0
        cut = boxes.top_elevation >= highest_beam - np.radians(p['top_beam_tolerance_deg'])
        # the larger of the two tolerances: class_margin, or the gap a ring leaves at that range
        ring_gap = np.hypot(boxes.center[:, 0], boxes.center[:, 1]) * np.tan(np.radians(p['vertical_resolution_deg']))
        height_slack = np.maximum(ring_gap - p['class_margin'], 0.0)
        names, scores = classes.classify(boxes.size, boxes.n_points, p['class_min_score'], p['class_margin'],
                                         p['class_points_scale'], classes.side_view_angle(boxes.center, boxes.yaw),
                                         cut, boxes.top_extent, height_slack)
        detections = []
        for k, name in enumerate(names):
            if name == 'unknown' and not p['output_unknown']:
                continue
            center, size, yaw, shape = boxes.center[k], boxes.size[k].copy(), float(boxes.yaw[k]), 'box'
            if name == 'car' and p['car_complete']:
                center, size, yaw = complete_car(center, size, yaw, p['car_length'], p['car_width'])
            if name == 'pedestrian' and p['cylinder_for_pedestrians']:
                size[0] = size[1] = size[0]
                yaw, shape = 0.0, 'cylinder'
            detections.append(Detection3D(name, float(scores[k]), tuple(float(v) for v in center),
                                          tuple(float(v) for v in size), yaw, int(boxes.n_points[k]), shape))
        times['fitting'] = (time.perf_counter() - t3) * 1e3
        counts = {'points_in': int(len(pts)), 'points_kept': int(len(xyz)),
                  'points_obstacle': int(len(obj)), 'clusters': int(clusters.count)}
        return DetectionResult(detections, times, counts)
