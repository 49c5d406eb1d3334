"""One process publishes vision_msgs Detection2DArray/Detection3DArray; this process receives every
field intact."""
from __future__ import annotations

from tests.conftest import spin_until
from tests.integration.peers.vision_msgs_publisher import (make_detection2d_array,
                                                          make_detection3d_array)


def message_fields(msg, prefix=''):
    """Flatten a message into {path: value} over all nested fields and sequences."""
    if not hasattr(msg, 'get_fields_and_field_types'):
        if isinstance(msg, (list, tuple)) or type(msg).__name__ == 'array':
            out = {}
            for i, item in enumerate(msg):
                out.update(message_fields(item, f'{prefix}[{i}]'))
            return out or {prefix: '[]'}
        if hasattr(msg, 'tolist'):
            return {prefix: msg.tolist()}
        return {prefix: msg}
    out = {}
    for name in msg.get_fields_and_field_types():
        out.update(message_fields(getattr(msg, name), f'{prefix}.{name}'))
    return out


def test_detection_arrays_cross_process(test_node, start_node):
    from aiat_perception.nodes.common import latched_qos
    from vision_msgs.msg import Detection2DArray, Detection3DArray

    received = {}
    test_node.create_subscription(Detection2DArray, 'detections_2d',
                                  lambda m: received.setdefault('2d', m), latched_qos())
    test_node.create_subscription(Detection3DArray, 'detections_3d',
                                  lambda m: received.setdefault('3d', m), latched_qos())
    peer = start_node('tests.integration.peers.vision_msgs_publisher')
    assert spin_until(test_node, lambda: len(received) == 2, timeout=20), peer.output()

    for key, expected in (('2d', make_detection2d_array()), ('3d', make_detection3d_array())):
        got_fields, want_fields = message_fields(received[key]), message_fields(expected)
        assert got_fields.keys() == want_fields.keys()
        assert len(want_fields) > 40  # every nested field was compared, not just the header
        for path, value in want_fields.items():
            assert got_fields[path] == value, f'{key}{path}: got {got_fields[path]!r}, want {value!r}'
