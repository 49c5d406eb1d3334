"""Shared by the sim-in-the-loop tests: sim (lockstep) + camera_detector + iou_monitor as three real
processes over DDS; the monitor's whole-run totals are the result."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from tests.conftest import spin_until

FRAMES = 20
# Classes a COCO model knows among the actors; the pickup and the van are "vehicle": NanoDet calls
# both of them truck, car or bus from frame to frame, so both sides map truck -> car.
MONITOR = {'classes': ['person', 'bicycle', 'car'], 'class_aliases': ['truck:car'], 'iou_threshold': 0.5,
           'window': FRAMES}


def pretrained_bundle():
    from aiat_perception.nodes.camera_detector import resolve_bundle_path
    path = resolve_bundle_path('')
    assert (path / 'bundle.yaml').is_file(), \
        f'pretrained bundle missing at {path}: run python -m aiat_perception.prepare_data'
    return path


def run_loop(test_node, start_node, scenario: str, bundle: Optional[Path] = None) -> dict:
    """Run ``FRAMES`` lockstep frames of ``scenario`` through ``bundle`` (default: the pretrained
    COCO bundle); returns the monitor's last metrics message (``total_recall``, ...)."""
    from aiat_perception.nodes.common import sensor_qos
    from std_msgs.msg import Float64MultiArray

    bundle = bundle if bundle is not None else pretrained_bundle()
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
