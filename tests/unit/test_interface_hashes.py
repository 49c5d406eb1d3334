"""Our pip-only vision_msgs and tf2_msgs builds hash exactly like the upstream packages.

ROS 2 matches publishers and subscribers by type name and RIHS01 type hash; the hash depends only on
type names and field names/types. We compute the expected hashes independently with `rosbags` from the
upstream field layout (vision_msgs 4.x, written out below as the specification) and from rosbags' own
copy of tf2_msgs, and compare them with what rosidl generated for our build.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from rosbags.typesys import Stores, get_types_from_msg, get_typestore

UPSTREAM_VISION_MSGS_4 = {
    'Point2D': 'float64 x\nfloat64 y',
    'Pose2D': 'vision_msgs/Point2D position\nfloat64 theta',
    'BoundingBox2D': 'vision_msgs/Pose2D center\nfloat64 size_x\nfloat64 size_y',
    'BoundingBox2DArray': 'std_msgs/Header header\nvision_msgs/BoundingBox2D[] boxes',
    'BoundingBox3D': 'geometry_msgs/Pose center\ngeometry_msgs/Vector3 size',
    'BoundingBox3DArray': 'std_msgs/Header header\nvision_msgs/BoundingBox3D[] boxes',
    'ObjectHypothesis': 'string class_id\nfloat64 score',
    'ObjectHypothesisWithPose': 'vision_msgs/ObjectHypothesis hypothesis\n'
                                'geometry_msgs/PoseWithCovariance pose',
    'Classification': 'std_msgs/Header header\nvision_msgs/ObjectHypothesis[] results',
    'Detection2D': 'std_msgs/Header header\nvision_msgs/ObjectHypothesisWithPose[] results\n'
                   'vision_msgs/BoundingBox2D bbox\nstring id',
    'Detection2DArray': 'std_msgs/Header header\nvision_msgs/Detection2D[] detections',
    'Detection3D': 'std_msgs/Header header\nvision_msgs/ObjectHypothesisWithPose[] results\n'
                   'vision_msgs/BoundingBox3D bbox\nstring id',
    'Detection3DArray': 'std_msgs/Header header\nvision_msgs/Detection3D[] detections',
    'VisionClass': 'uint16 class_id\nstring class_name',
    'LabelInfo': 'std_msgs/Header header\nvision_msgs/VisionClass[] class_map\nfloat32 threshold',
    'VisionInfo': 'std_msgs/Header header\nstring method\nstring database_location\n'
                  'int32 database_version',
}


def built_hash(package: str, name: str) -> str:
    path = Path(sys.prefix) / 'share' / package / 'msg' / f'{name}.json'
    if not path.is_file():
        pytest.fail(f'{path} missing: build the interfaces with scripts/build_interfaces.sh')
    hashes = json.loads(path.read_text())['type_hashes']
    return next(h['hash_string'] for h in hashes if h['type_name'] == f'{package}/msg/{name}')


@pytest.fixture(scope='module')
def upstream_store():
    store = get_typestore(Stores.ROS2_KILTED)
    types = {}
    for name, text in UPSTREAM_VISION_MSGS_4.items():
        types.update(get_types_from_msg(text, f'vision_msgs/msg/{name}'))
    store.register(types)
    return store


@pytest.mark.parametrize('name', sorted(UPSTREAM_VISION_MSGS_4))
def test_vision_msgs_hash_matches_upstream(upstream_store, name):
    assert built_hash('vision_msgs', name) == upstream_store.hash_rihs01(f'vision_msgs/msg/{name}')


def test_tf2_msgs_hash_matches_upstream():
    store = get_typestore(Stores.ROS2_KILTED)
    assert built_hash('tf2_msgs', 'TFMessage') == store.hash_rihs01('tf2_msgs/msg/TFMessage')


def test_generated_python_types_import():
    import vision_msgs.msg as vm
    for name in UPSTREAM_VISION_MSGS_4:
        assert hasattr(vm, name), name
