"""Camera-lidar fusion in the simulator (ROS-free cores over simulator frames): the mesh_actors street
seen by the ego camera (640x480) and the VLP-16-like 3D lidar, both captured at the same simulation
time every 0.1 s (lockstep), 60 frames.

Camera boxes come from a real detector, the NanoDet fine-tuned on the mesh actors (the bundle of
tests/integration/test_sim_finetuned.py: recall 1.0 on this scene), lidar boxes from the lidar
detector core with the simulator lidar's settings (tests/unit/test_sim_lidar_detection.py). Both feed
fuse() twice per frame: with the true camera <- lidar transform and with the lidar turned by 2 degrees
about its vertical axis (a mount knocked askew), each into its own AgreementMonitor with the default
thresholds. Asserted: the true extrinsic stays OK in every frame; the rotated one agrees less (fewer
camera detections confirmed, more lidar objects missed) and its level turns WARN. And the fused
distance of each camera detection matched to an actor (2D IoU >= 0.5 with the simulator's 2D ground
truth) against the distance of that actor's 3D box centre: median error <= 0.3 m within 30 m.
"""
from __future__ import annotations

import math
import time

import numpy as np

from aiat_perception.fusion import AgreementMonitor, CameraModel, FusionConfig, Level, fuse
from aiat_perception.lidar.detector import PARAMETERS, PointCloudDetector
from aiat_perception.lidar.params import read_yaml
from aiat_perception.metrics.matching import greedy_match, iou_matrix
from aiat_perception.sim.scenario import load_scenario
from aiat_perception.sim.transforms import invert
from aiat_perception.sim.world import SimWorld
from tests.integration.test_sim_finetuned import finetuned_bundle
from tests.unit.test_sim_lidar_detection import ROOT, SENSORS

FRAMES = 60          # the agreement window is 50 frames
ROTATION_DEG = 2.0
MAX_RANGE = 30.0


def turned_about_z(deg: float) -> np.ndarray:
    a = math.radians(deg)
    T = np.eye(4)
    T[:2, :2] = [[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]
    return T


def test_agreement_drops_with_a_rotated_extrinsic_and_fused_distances_match_the_simulator():
    from aiat_perception.inference.detector import Detector
    detector = Detector(finetuned_bundle())
    params = read_yaml(ROOT / 'config' / 'lidar_detector.yaml', 'lidar_detector', PARAMETERS)
    params.update(SENSORS[16][1])
    lidar = PointCloudDetector(params)
    config = FusionConfig()
    monitors = {'true': AgreementMonitor(window_frames=50), 'rotated': AgreementMonitor(window_frames=50)}
    levels = {k: [] for k in monitors}
    errors = []
    started = time.perf_counter()
    with SimWorld(load_scenario(ROOT / 'config' / 'scenarios' / 'mesh_actors.yaml')) as world:
        true_extrinsic = invert(world.base_from_optical()) @ world.base_from_lidar_3d()
        extrinsics = {'true': true_extrinsic, 'rotated': true_extrinsic @ turned_about_z(ROTATION_DEG)}
        for _ in range(FRAMES):
            frame, cloud = world.render_camera(), world.scan_3d()         # the same simulation time
            height, width = frame.rgb.shape[:2]
            camera = CameraModel(P=np.hstack([frame.K, np.zeros((3, 1))]), K=frame.K, width=width, height=height)
            found = detector.detect_one(frame.rgb, 'rgb8')
            boxes3d = lidar(cloud.points).detections
            results = {k: fuse(found.boxes, found.labels, found.scores, cloud.points, T, camera, config, boxes3d)
                       for k, T in extrinsics.items()}
            for key, result in results.items():
                monitors[key].update(result)
                levels[key].append(monitors[key].status().level)
            truth2d = world.ground_truth_2d(frame, exact_occlusion=False)
            truth3d = {b.actor_index: b for b in world.ground_truth_3d(frame.frame_id)}
            objects = results['true'].objects
            if truth2d and objects:
                match = greedy_match(iou_matrix(np.array([o.box_xyxy for o in objects]),
                                                np.array([g.bbox for g in truth2d], np.float64)),
                                     np.array([o.score for o in objects]), 0.5)
                for obj, g in zip(objects, match.gt_index.tolist()):
                    true_distance = float(np.linalg.norm(truth3d[truth2d[g].actor_index].center)) if g >= 0 else math.inf
                    if true_distance <= MAX_RANGE:
                        errors.append((truth2d[g].class_name, true_distance, obj.distance - true_distance))
            world.step(0.1)
    elapsed = time.perf_counter() - started
    status = {k: m.status() for k, m in monitors.items()}
    for key, s in status.items():
        print(f'\n{key} extrinsic: confirm rate {s.confirm_rate:.2f}, miss rate {s.miss_rate:.2f}, mean IoU '
              f'{s.mean_iou:.2f} over {s.frames} frames ({s.camera_count} camera detections, {s.lidar_in_view} '
              f'lidar objects in view); level {s.level.name}, WARN from frame '
              f'{next((i for i, lv in enumerate(levels[key]) if lv >= Level.WARN), None)}: {s.message}')
    abs_errors = np.abs([e for _, _, e in errors])
    by_class = {c: np.median([abs(e) for k, _, e in errors if k == c]) for c in sorted({k for k, _, _ in errors})}
    print(f'{FRAMES} lockstep frames in {elapsed:.1f} s; fused distance error within {MAX_RANGE:g} m: median '
          f'{np.median(abs_errors):.2f} m, p90 {np.percentile(abs_errors, 90):.2f} m, max {abs_errors.max():.2f} m over '
          f'{len(errors)} matched detections; median per class: '
          + ', '.join(f'{c} {v:.2f} m' for c, v in by_class.items()))

    true, rotated = status['true'], status['rotated']
    assert true.camera_count >= 100 and true.lidar_in_view >= 50 and true.pairs >= 50, true
    assert all(level == Level.OK for level in levels['true']), levels['true']
    assert rotated.confirm_rate < true.confirm_rate and rotated.miss_rate > true.miss_rate, (true, rotated)
    assert rotated.level == Level.WARN, rotated
    assert len(errors) >= 100
    assert np.median(abs_errors) <= 0.3
