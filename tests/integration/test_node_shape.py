"""The node shape: module-level Node classes that share a process and an executor, and parameter
tables whose ranges rclpy enforces on a SetParameters call over DDS (what ``ros2 param set`` sends)."""
from __future__ import annotations

import math
import time

import pytest

from tests.conftest import call_service


def set_parameters(node, fqn: str, **values):
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter

    request = SetParameters.Request(parameters=[Parameter(k, value=v).to_parameter_msg() for k, v in values.items()])
    results = call_service(node, SetParameters, f'{fqn}/set_parameters', request, timeout=20.0).results
    return [(r.successful, r.reason) for r in results]


def test_parameter_updates_are_checked_by_rclpy_and_the_table(start_node, test_node):
    from rcl_interfaces.srv import DescribeParameters, GetParameters

    monitor = start_node('aiat_perception.nodes.iou_monitor', params={'window': 7},
                         remap={'__node': 'shape_monitor'})
    fqn = '/shape_monitor'
    described = call_service(test_node, DescribeParameters, f'{fqn}/describe_parameters',
                             DescribeParameters.Request(names=['iou_threshold', 'window', 'log_every']),
                             timeout=60).descriptors
    iou, window, log_every = described
    assert (iou.floating_point_range[0].from_value, iou.floating_point_range[0].to_value) == (0.0, 1.0)
    assert not iou.read_only and window.read_only and log_every.integer_range[0].from_value == 0
    assert 'IoU' in iou.description

    # outside the descriptor's range: refused by rclpy before our callback runs
    (ok, reason), = set_parameters(test_node, fqn, iou_threshold=1.5)
    assert not ok and 'iou_threshold' in reason and 'range' in reason.lower()
    (ok, reason), = set_parameters(test_node, fqn, iou_threshold=math.nan)
    assert not ok
    # not dynamic: read-only
    (ok, reason), = set_parameters(test_node, fqn, window=50)
    assert not ok and 'read-only' in reason
    # inside the ranges but against a cross-field check (error_recall <= warn_recall): refused by the table
    (ok, reason), = set_parameters(test_node, fqn, error_recall=0.6)
    assert not ok and 'error_recall: must be <= warn_recall' in reason
    # the open low end (iou_threshold > 0) is the table's, too
    (ok, reason), = set_parameters(test_node, fqn, iou_threshold=0.0)
    assert not ok and 'iou_threshold: must be in (0, 1], got 0.0' in reason
    (ok, _), = set_parameters(test_node, fqn, iou_threshold=0.7)
    assert ok
    values = call_service(test_node, GetParameters, f'{fqn}/get_parameters',
                          GetParameters.Request(names=['iou_threshold', 'error_recall', 'window']),
                          timeout=20.0).values
    assert [values[0].double_value, values[1].double_value, values[2].integer_value] == [0.7, 0.2, 7]
    assert monitor.alive(), monitor.output()


def test_out_of_range_start_value_stops_the_node_with_a_message(start_node):
    # two refused by rclpy (ranges), one by the table (choices): all three named at once
    pub = start_node('aiat_perception.nodes.image_publisher', params={'rate_hz': -2.0, 'count': -1, 'encoding': 'yuv'})
    assert pub.wait(timeout=60) == 2
    out = pub.output()
    assert 'invalid parameters' in out and 'rate_hz' in out and 'count' in out, out
    assert "encoding: must be one of rgb8, bgr8, mono8, not 'yuv'" in out, out


def test_nodes_share_one_process_and_executor(rclpy_session, tmp_path):
    """image_publisher -> an echo (detections = ground truth) -> iou_monitor and a subclassed
    detection_listener, all in this process on one single-threaded executor."""
    import cv2
    import numpy as np
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header
    from vision_msgs.msg import Detection2DArray

    from aiat_perception.nodes.common import finished, sensor_qos
    from aiat_perception.nodes.detection_listener import DetectionListener
    from aiat_perception.nodes.image_publisher import ImagePublisher
    from aiat_perception.nodes.iou_monitor import IoUMonitor
    from aiat_perception.vision_conversions import detections_to_msg

    class CountingListener(DetectionListener):  # subclassable: extend a callback
        def __init__(self, **kwargs):
            super().__init__('shape_listener', **kwargs)
            self.boxes = 0

        def on_detections(self, msg):
            self.boxes += len(msg.detections)
            super().on_detections(msg)

    image = tmp_path / 'frame.png'
    cv2.imwrite(str(image), np.full((48, 64, 3), 128, np.uint8))
    ns = f'shape_{time.monotonic_ns() % 10**6}'
    publisher = ImagePublisher('shape_publisher', namespace=ns, parameter_overrides=[
        Parameter('images', value=[str(image)]), Parameter('rate_hz', value=20.0),
        Parameter('count', value=12), Parameter('wait_for_subscribers', value=1)])
    listener = CountingListener(namespace=ns, parameter_overrides=[
        Parameter('quiet', value=True), Parameter('max_messages', value=5)])
    monitor = IoUMonitor('shape_monitor', namespace=ns)
    echo = rclpy_session.create_node('shape_echo', namespace=ns)
    outputs = [echo.create_publisher(Detection2DArray, topic, sensor_qos('reliable', depth=10))
               for topic in ('detections', 'ground_truth/detections_2d')]

    def answer(msg):
        out = detections_to_msg(np.array([[4.0, 4.0, 40.0, 30.0]]), np.array([0.9]), ['person'],
                                Header(stamp=msg.header.stamp, frame_id=msg.header.frame_id))
        for pub in outputs:
            pub.publish(out)
    echo.create_subscription(Image, 'image', answer, sensor_qos('best_effort', depth=5))

    nodes = [publisher, listener, monitor, echo]
    executor = SingleThreadedExecutor()
    for node in nodes:
        executor.add_node(node)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (finished(publisher) and finished(listener)
                                                   and monitor.metrics.total()['frames'] >= 5):
            executor.spin_once(timeout_sec=0.05)
        assert finished(publisher) and publisher.sent == 12
        assert finished(listener) and listener.received >= 5 and listener.boxes == listener.received
        total = monitor.metrics.total()
        assert total['frames'] >= 5 and total['recall'] == pytest.approx(1.0) and total['mean_iou'] == pytest.approx(1.0)
    finally:
        executor.shutdown(timeout_sec=2.0)
        for node in nodes:
            node.destroy_node()
