"""Engine metadata files from anywhere (a volume, another machine): any JSON either reads as valid
metadata or fails with EngineMetadataError naming the file; nothing else escapes."""
from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from aiat_perception.engine.metadata import EngineMetadata, EngineMetadataError, read_metadata, write_metadata

VALID = EngineMetadata(tensorrt_version='10.3.0', gpu_name='Orin', compute_capability='8.7', precision='fp16',
                       batch=(1, 1, 1), bundle_sha256='a' * 64, bundle_name='b', input_name='images',
                       input_shape=(3, 416, 416)).to_dict()

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                    st.text(max_size=12))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=12)


def _check(tmp_path_factory, data):
    path = tmp_path_factory.mktemp('m') / 'model.engine.json'
    path.write_text(json.dumps(data))
    try:
        meta = read_metadata(path)
    except EngineMetadataError as exc:
        assert str(path) in str(exc)
        return
    assert isinstance(meta, EngineMetadata)
    assert 1 <= meta.batch[0] <= meta.batch[1] <= meta.batch[2]
    write_metadata(path.with_name('copy.engine'), meta)       # what reads also writes back
    assert read_metadata(path.with_name('copy.engine')) == meta


@given(key=st.sampled_from(sorted(VALID)), value=values)
def test_one_field_replaced(tmp_path_factory, key, value):
    _check(tmp_path_factory, dict(VALID, **{key: value}))


@given(data=values)
def test_arbitrary_json(tmp_path_factory, data):
    _check(tmp_path_factory, data)
