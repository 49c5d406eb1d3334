"""Simulation in the loop: sim (lockstep) + camera_detector (pretrained COCO bundle) + iou_monitor,
three real processes over DDS; the monitor's totals are the test's evidence."""
from __future__ import annotations

import pytest

from tests.conftest import spin_until

FRAMES = 20
# Classes a COCO model knows among the actors; the pickup and the van are "vehicle": NanoDet calls
# both of them truck, car or bus from frame to frame, so both sides map truck -> car.
MONITOR = {'classes': ['person', 'bicycle', 'car'], 'class_aliases': ['truck:car'], 'iou_threshold': 0.5,
           'window': FRAMES}


def bundle_or_skip():
    from aiat_perception.nodes.camera_detector import resolve_bundle_path
    path = resolve_bundle_path('')
    if not (path / 'bundle.yaml').is_file():
        pytest.skip(f'pretrained bundle not built yet at {path} (see the NanoDet import issue)')
    return path


def run_loop(test_node, start_node, scenario: str) -> dict:
    from aiat_perception.nodes.common import sensor_qos
    from std_msgs.msg import Float64MultiArray

    bundle = bundle_or_skip()
    metrics = []
    test_node.create_subscription(Float64MultiArray, 'metrics', lambda m: metrics.append(
        dict(zip(m.layout.dim[0].label.split(','), m.data))), sensor_qos('reliable', 50))
    monitor = start_node('aiat_perception.nodes.iou_monitor', params=MONITOR)
    detector = start_node('aiat_perception.nodes.camera_detector',
                          params={'bundle_path': str(bundle), 'reliability': 'reliable'})
    assert spin_until(test_node, lambda: test_node.count_subscribers('/ground_truth/detections_2d') >= 1
                      and test_node.count_publishers('/detections') >= 1, timeout=60), detector.output()
    sim = start_node('aiat_perception.nodes.sim_node', params={
        'scenario': scenario, 'mode': 'lockstep', 'max_frames': FRAMES, 'publish_lidar_3d': False,
        'publish_lidar_2d': False, 'wait_for_subscribers': ['ground_truth/detections_2d:1'],
        'lockstep_timeout_s': 30.0})
    assert spin_until(test_node, lambda: len(metrics) >= FRAMES, timeout=300), (
        len(metrics), sim.output(), detector.output(), monitor.output())
    assert sim.wait(timeout=30) == 0, sim.output()
    assert '(0 timeouts)' in sim.output(), sim.output()  # lockstep: every frame was answered
    return metrics[-1]


def test_pretrained_detector_on_photo_textured_actors(test_node, start_node, record_property):
    total = run_loop(test_node, start_node, 'photo_actors')
    record_property('photo_actors', total)
    print(f"photo_actors: recall {total['total_recall']:.3f}, precision {total['total_precision']:.3f}, "
          f"mean IoU {total['total_mean_iou']:.3f} over {total['frames']:.0f} frames")
    assert total['frames'] == FRAMES
    # Measured (nanodet-coco-416, three lockstep runs, identical as lockstep should be): recall 0.812,
    # precision 0.871, mean IoU 0.857; over 20 frames 0.5 s apart (benchmarks/sim.py --bundle) recall
    # 0.87 (people 0.94-1.0, bicycle 0.7, pickup 0.7, van 0.75), mean IoU 0.84. From those per-actor
    # counts, a model that found only the people would score ~0.56 recall; boxes shifted by a quarter
    # of their width score IoU 0.6. Both would fail.
    assert total['total_recall'] >= 0.7
    assert total['total_mean_iou'] >= 0.75


def test_pretrained_detector_on_mesh_actors_is_recorded(test_node, start_node, record_property):
    """The flat-shaded mesh actors are what fine-tuning must teach; record the pretrained recall."""
    total = run_loop(test_node, start_node, 'mesh_actors')
    record_property('mesh_actors', total)
    print(f"mesh_actors: recall {total['total_recall']:.3f} (pretrained; fine-tuning must raise it)")
    # Measured: 0.010 in lockstep (one hit in 20 frames); 0.0 over 20 frames 0.5 s apart.
    assert total['frames'] == FRAMES and 0.0 <= total['total_recall'] <= 1.0
