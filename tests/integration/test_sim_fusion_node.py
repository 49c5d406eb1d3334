"""The fusion node in the simulator loop, as real processes over DDS: sim (mesh_actors, lockstep on the
camera, camera + 3D lidar, /tf_static) + camera_detector (the NanoDet fine-tuned on the mesh actors)
+ lidar_detector (the simulator lidar's settings) + two fusion nodes: one takes the extrinsic from the
sim's /tf_static (camera_optical_frame <- velodyne), the other from parameters with the lidar turned by
2 degrees about its vertical axis. Their /diagnostics say it: the first agrees (OK), the second does
not (WARN). The ROS-free version with 60 frames and the distance check is tests/unit/test_sim_fusion.py.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from tests.conftest import spin_until
from tests.integration.test_sim_finetuned import finetuned_bundle
from tests.unit.test_sim_fusion import turned_about_z
from tests.unit.test_sim_lidar_detection import SENSORS

FRAMES = 20


def optical_from_lidar(scenario) -> np.ndarray:
    """The camera optical frame <- velodyne transform of a scenario (as the sim puts it on /tf_static)."""
    from aiat_perception.sim.transforms import R_BODY_FROM_OPTICAL, invert, make_transform, pose_xyz_rpy
    ego = scenario.ego
    base_from_optical = pose_xyz_rpy(ego.camera.pose.xyz, ego.camera.pose.rpy) @ make_transform(
        rotation=R_BODY_FROM_OPTICAL)
    return invert(base_from_optical) @ pose_xyz_rpy(ego.lidar_3d.pose.xyz, ego.lidar_3d.pose.rpy)


@pytest.mark.slow   # five processes, 20 lockstep frames: 24-36 s here
def test_fusion_nodes_in_lockstep_agree_with_the_true_extrinsic_and_not_with_a_turned_one(test_node, start_node):
    from diagnostic_msgs.msg import DiagnosticArray
    from vision_msgs.msg import Detection3DArray

    from aiat_perception.share import config_dir
    from aiat_perception.sim.scenario import load_scenario
    from aiat_perception.static_transforms import matrix_to_quaternion
    from aiat_perception.vision_conversions import diagnostic_values
    scenario = load_scenario(config_dir() / 'scenarios' / 'mesh_actors.yaml')
    turned = optical_from_lidar(scenario) @ turned_about_z(2.0)
    statuses, fused = {}, {'fusion': [], 'fusion_turned': []}
    test_node.create_subscription(DiagnosticArray, '/diagnostics', lambda m: statuses.update(
        {s.name.split(':')[0].lstrip('/'): diagnostic_values(s) for s in m.status}), 50)
    for name in fused:
        test_node.create_subscription(Detection3DArray, f'{name}/objects', fused[name].append, 50)
    common = {'reliability': 'reliable', 'use_lidar_detections': True, 'agreement_window': FRAMES}
    nodes = [
        start_node('aiat_perception.nodes.camera_detector',
                   params={'bundle_path': str(finetuned_bundle()), 'reliability': 'reliable'}),
        start_node('aiat_perception.nodes.lidar_detector', params={'reliability': 'reliable', **SENSORS[16][1]},
                   remap={'detections': 'lidar_detections', 'detections/markers': 'lidar_detections/markers'}),
        start_node('aiat_perception.nodes.fusion', params=common, remap={'fused_detections': 'fusion/objects'}),
        start_node('aiat_perception.nodes.fusion', params={
            **common, 'extrinsic_source': 'parameters',
            'camera_from_lidar': [*turned[:3, 3].tolist(), *matrix_to_quaternion(turned[:3, :3])]},
            remap={'__node': 'fusion_turned', 'fused_detections': 'fusion_turned/objects'}),
    ]
    assert spin_until(test_node, lambda: test_node.count_subscribers('/points') >= 3
                      and test_node.count_subscribers('/lidar_detections') >= 2
                      and test_node.count_publishers('/detections') >= 1, timeout=90), [n.output() for n in nodes]
    sim = start_node('aiat_perception.nodes.sim_node', params={
        'scenario': 'mesh_actors', 'mode': 'lockstep', 'max_frames': FRAMES, 'publish_lidar_2d': False,
        'lockstep_timeout_s': 30.0,
        # the sim starts once one reader of its sensor topic matched; the fusion nodes also need its
        # /tf_static (true extrinsic), clouds and CameraInfo from the first frame (loaded runs fused 12-14
        # of 20), so it waits for those matches too
        'wait_for_subscribers': ['/tf_static:1', 'points:3', 'camera_info:2']})
    # Lockstep paces the sim by the camera detector; the lidar detector and the fusion nodes keep only
    # the newest input when behind, so on a loaded machine a frame or two may never pair: the
    # agreement needs most frames, not every one.
    enough = FRAMES * 3 // 4
    assert spin_until(test_node, lambda: not sim.alive() and all(len(v) >= enough for v in fused.values()),
                      timeout=300), ({k: len(v) for k, v in fused.items()}, statuses, sim.output(),
                                     [n.output() for n in nodes])
    assert sim.wait(timeout=60) == 0 and '(0 timeouts)' in sim.output(), sim.output()
    spin_until(test_node, lambda: False, timeout=2.5)          # the diagnostics after the last frame
    true, off = statuses['fusion'], statuses['fusion_turned']
    for name, values in (('true extrinsic (/tf_static)', true), ('turned 2 deg (parameters)', off)):
        print(f'\n{name}: ' + ', '.join(f'{k} {values[k]}' for k in values if k.startswith('agreement_'))
              + f"; frames_processed {values['frames_processed']}, processing_ms_p50 {values['processing_ms_p50']}")
    for msg in fused['fusion']:
        assert msg.header.frame_id == 'camera_optical_frame' and msg.detections
    assert int(true['frames_processed']) >= enough and int(true['frames_failed']) == 0, true
    assert true['agreement_level'] == 'OK' and off['agreement_level'] == 'WARN', (true, off)
    assert float(off['agreement_confirm_rate']) < float(true['agreement_confirm_rate']), (true, off)
    assert not math.isnan(float(true['agreement_mean_iou']))
