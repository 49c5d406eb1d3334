"""The simulator's KITTI writer output reads back through our KITTI (and COCO) reader unchanged."""
from __future__ import annotations

import copy

import numpy as np
import pytest

from aiat_perception.sim import dataset_writer, kitti
from aiat_perception.sim.scenario import parse_scenario  # noqa: E402
from aiat_training.data import ClassMapping  # noqa: E402
from aiat_training.data.readers import read_coco, read_kitti  # noqa: E402
from tests.unit.test_sim_dataset_writer import SCENARIO as WRITER_SCENARIO

# the dataset writer test's scene at a coarser lidar resolution, without the cube
SCENARIO = {**copy.deepcopy(WRITER_SCENARIO), 'name': 'data_roundtrip', 'seed': 4}
SCENARIO['ego']['lidar_3d'] = {'horizontal_resolution_deg': 2.0}
SCENARIO['actors'] = [a for a in SCENARIO['actors'] if a.get('asset') != 'cube']


@pytest.fixture(scope='module')
def sim_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp('sim_kitti')
    scenario = dataset_writer.randomized(parse_scenario(SCENARIO), placement_jitter=0.5)
    dataset_writer.write_dataset(scenario, out, frames=4, seed=1, frames_per_episode=2)
    return out


def test_kitti_reader_gives_the_writers_boxes(sim_dataset):
    ds = read_kitti(sim_dataset)            # on_error='raise': any problem fails the test
    assert len(ds) == 4 and not ds.issues
    total = 0
    for sample in ds:
        written = kitti.read_label(sim_dataset / 'label_2' / f'{sample.image_path.stem}.txt')
        total += len(written)
        np.testing.assert_array_equal(sample.boxes, np.array([o.bbox for o in written], np.float32).reshape(-1, 4))
        assert [ds.class_names[i] for i in sample.labels] == [o.type for o in written]
        np.testing.assert_array_equal(sample.attributes.get('occlusion', np.zeros(0)),
                                      np.array([o.occluded for o in written], np.float32))
        np.testing.assert_allclose(sample.attributes.get('truncation', np.zeros(0)),
                                   np.array([o.truncated for o in written], np.float32))
        calib = kitti.read_calib(sim_dataset / 'calib' / f'{sample.image_path.stem}.txt')
        for key, matrix in calib.items():
            np.testing.assert_array_equal(sample.meta['calib'][key], matrix)
        assert (sample.width, sample.height) == (320, 240)
    assert total >= 4


def test_sim_classes_map_onto_model_classes_and_coco_output_reads(sim_dataset):
    mapping = ClassMapping(classes=['car', 'person', 'cyclist'],
                           map={'Car': 'car', 'Van': 'car', 'Truck': 'car', 'Pedestrian': 'person',
                                'Person_sitting': 'person', 'Cyclist': 'cyclist', 'Misc': 'drop'})
    mapped = read_kitti(sim_dataset, mapping)
    assert mapped.class_names == ['car', 'person', 'cyclist'] and not mapped.issues
    coco = read_coco(sim_dataset / 'coco.json', sim_dataset)
    assert len(coco) == 4 and not coco.issues and coco.box_count() >= mapped.box_count()
