"""One cell layout: the training loss, the GFL decoder and the bundle's output shapes agree."""
from __future__ import annotations

import numpy as np
import pytest

from aiat_perception.inference.bundle import bundle_from_dict
from aiat_perception.inference.cells import cell_centres, num_cells
from aiat_perception.inference.decode import GflDecoder
from aiat_perception.inference.synthetic import synthetic_meta

SIZES = [(416, 416), (320, 192), (100, 60), (64, 96)]
STRIDES = [(8, 16, 32), (16, 32), (4, 8, 16, 32, 64)]
OFFSETS = [0.5, 0.0, 0.25]


def test_centres_by_hand():
    centres, strides = cell_centres(16, 24, (8, 16), 0.5)
    assert centres[:3].tolist() == [[4, 4], [12, 4], [20, 4]]      # row-major, x first
    assert centres[3].tolist() == [4, 12]
    assert centres[6:].tolist() == [[8, 8], [24, 8]]                 # ceil(24 / 16) = 2 columns
    assert strides.tolist() == [8] * 6 + [16] * 2
    assert cell_centres(16, 24, (8, 16), 0.0)[0][0].tolist() == [0, 0]


@pytest.mark.parametrize('height,width', SIZES)
@pytest.mark.parametrize('strides', STRIDES)
@pytest.mark.parametrize('offset', OFFSETS)
def test_decoder_and_bundle_follow_the_layout(height, width, strides, offset):
    centres, cell_strides = cell_centres(height, width, strides, offset)
    decoder = GflDecoder(strides, 7, height, width, cell_offset=offset)
    np.testing.assert_array_equal(decoder.centres, centres.astype(np.float32))
    np.testing.assert_array_equal(decoder.cell_strides, cell_strides.astype(np.float32))
    meta = synthetic_meta(height, width, strides=strides)
    meta['decoder']['cell_offset'] = offset
    meta.update(schema_version=1, model={'file': 'model.onnx', 'sha256': '0' * 64})
    meta['outputs'] = {'scores': {'name': 'scores', 'shape': ['batch', num_cells(height, width, strides), 3]},
                       'boxes': {'name': 'box_dist', 'shape': ['batch', len(centres), 32]}}
    bundle = bundle_from_dict(meta, '.')
    assert bundle.num_cells == len(centres) and bundle.decoder.cell_offset == offset


@pytest.mark.training
@pytest.mark.parametrize('height,width', SIZES)
@pytest.mark.parametrize('strides', STRIDES)
@pytest.mark.parametrize('offset', OFFSETS)
def test_training_and_inference_cell_centres_are_equal(height, width, strides, offset):
    from aiat_training.train.cells import cell_layout
    from aiat_training.train.head_loss import GFLHeadLoss

    layout = cell_layout(height, width, strides, offset)
    decoder = GflDecoder(strides, 7, height, width, cell_offset=offset)
    np.testing.assert_array_equal(layout.centres.numpy(), decoder.centres)
    np.testing.assert_array_equal(layout.strides.numpy(), decoder.cell_strides)
    assert sum(layout.level_sizes) == decoder.num_cells
    loss_layout = GFLHeadLoss(2, strides=strides, cell_offset=offset).layout(height, width, 'cpu')
    np.testing.assert_array_equal(loss_layout.centres.numpy(), decoder.centres)
