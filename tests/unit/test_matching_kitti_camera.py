"""KITTI camera recall rule: class mapping, moderate filter, one-to-one matching; real labels."""
from aiat_perception.assets import shared_data
from aiat_perception.kitti import KittiObject, read_label
from aiat_perception.metrics.kitti_camera import counted_objects, is_moderate, kitti_camera_recall
from aiat_perception.metrics.matching import LabeledBox


def obj(kind, box, truncated=0.0, occluded=0):
    return KittiObject(kind, truncated, occluded, 0.0, box, (1.7, 0.6, 0.8), (0.0, 1.6, 10.0), 0.0)


def test_moderate_filter_uses_height_occlusion_truncation():
    assert is_moderate(obj('Pedestrian', (0, 0, 10, 25)))
    assert not is_moderate(obj('Pedestrian', (0, 0, 10, 24.9)))
    assert not is_moderate(obj('Pedestrian', (0, 0, 10, 40), occluded=2))
    assert not is_moderate(obj('Pedestrian', (0, 0, 10, 40), truncated=0.31))
    assert is_moderate(obj('Pedestrian', (0, 0, 10, 40), truncated=0.3, occluded=1))
    kept = counted_objects([obj('Van', (0, 0, 50, 50)), obj('Truck', (0, 0, 50, 50)),
                            obj('Car', (0, 0, 50, 50)), obj('DontCare', (0, 0, 50, 50))])
    assert [o.type for o in kept] == ['Car']


def test_class_rule_and_iou():
    labels = [obj('Pedestrian', (100, 100, 120, 150)), obj('Cyclist', (200, 100, 230, 160)),
              obj('Car', (300, 100, 400, 160)), obj('Car', (500, 100, 600, 160))]
    dets = [LabeledBox((100, 100, 120, 150), 'bicycle', 0.9),     # a bicycle never finds a pedestrian
            LabeledBox((200, 100, 230, 160), 'bicycle', 0.8),     # finds the cyclist
            LabeledBox((300, 100, 400, 160), 'truck', 0.7),       # truck accepted for a car
            LabeledBox((500, 100, 560, 160), 'car', 0.6)]         # IoU 0.6
    r = kitti_camera_recall(dets, labels)
    assert r.found == [False, True, True, True] and r.matched_by == [-1, 1, 2, 3]
    assert r.by_type() == {'Pedestrian': (0, 1), 'Cyclist': (1, 1), 'Car': (2, 2)}
    assert kitti_camera_recall(dets, labels, iou_threshold=0.7).found[3] is False
    person = [LabeledBox((200, 100, 230, 160), 'person', 0.5)]
    assert kitti_camera_recall(person, labels).found == [False, True, False, False]


def test_one_detection_finds_one_object():
    labels = [obj('Pedestrian', (100, 100, 120, 150)), obj('Pedestrian', (101, 100, 121, 150))]
    r = kitti_camera_recall([LabeledBox((100, 100, 120, 150), 'person', 0.9)], labels)
    assert r.tp == 1 and r.total == 2 and r.recall == 0.5
    assert kitti_camera_recall([], []).recall == 1.0


def test_real_kitti_frames_count_the_moderate_objects():
    root = shared_data('kitti_object', 'training', 'label_2')
    assert len(counted_objects(read_label(root / '000134.txt'))) == 13
    # 000001: the truck is not in the rule, the car is 21.6 px tall, the cyclist is occluded (3)
    assert counted_objects(read_label(root / '000001.txt')) == []
