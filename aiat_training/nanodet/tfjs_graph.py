"""Reader for TensorFlow.js graph models (``model.json`` topology + binary weight shards).

Hand-written because no PyPI package reads the TF.js format without pulling in TensorFlow. It
returns the graph nodes and every weight as a named numpy array, de-quantising what the
manifest declares (float16, and the affine uint8/uint16 quantisation of tfjs-converter).
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np

# TF.js dtype name -> (numpy dtype, bytes per element) as stored in the shards.
_STORED_DTYPES = {
    'float32': np.dtype('<f4'),
    'int32': np.dtype('<i4'),
    'bool': np.dtype('u1'),
    'uint8': np.dtype('u1'),
    'uint16': np.dtype('<u2'),
    'float16': np.dtype('<f2'),
    'complex64': np.dtype('<c8'),
}
_TF_DTYPES = {'DT_FLOAT': 'float32', 'DT_INT32': 'int32', 'DT_INT64': 'int64', 'DT_BOOL': 'bool',
              'DT_HALF': 'float16', 'DT_STRING': 'string', 'DT_UINT8': 'uint8'}


class TfjsFormatError(ValueError):
    """The model JSON or its weight files are not what the TF.js graph-model format says."""


@dataclass(frozen=True)
class GraphNode:
    name: str
    op: str
    inputs: Tuple[str, ...]     # producer names; ':k' selects output k, '^x' is a control input
    attrs: Dict[str, Any] = field(default_factory=dict)

    def data_inputs(self) -> Tuple[str, ...]:
        return tuple(i for i in self.inputs if not i.startswith('^'))


@dataclass
class TfjsGraph:
    nodes: List[GraphNode]
    weights: Dict[str, np.ndarray]
    inputs: Dict[str, Tuple[int, ...]]      # signature input name -> shape (-1 = unknown)
    outputs: Dict[str, Tuple[int, ...]]
    meta: Dict[str, Any]                    # format, generatedBy, convertedBy, ...

    def node(self, name: str) -> GraphNode:
        base = name.split(':')[0].lstrip('^')
        for node in self.nodes:
            if node.name == base:
                return node
        raise KeyError(f'graph has no node {base!r}')

    def by_op(self, op: str) -> List[GraphNode]:
        return [n for n in self.nodes if n.op == op]

    def consumers(self, name: str) -> List[GraphNode]:
        return [n for n in self.nodes
                if any(i.split(':')[0].lstrip('^') == name for i in n.inputs)]

    def op_counts(self) -> Dict[str, int]:
        counts: Dict[str, int] = {}
        for node in self.nodes:
            counts[node.op] = counts.get(node.op, 0) + 1
        return counts


def _attr_value(value: Dict[str, Any]) -> Any:
    """Decode one TF AttrValue as written by the JSON protobuf mapping."""
    if 'list' in value:
        lst = value['list']
        for key in ('i', 'f', 's', 'b', 'type', 'shape'):
            if key in lst:
                return [_attr_value({key: v}) for v in lst[key]]
        return []
    if 'i' in value:
        return int(value['i'])
    if 'f' in value:
        return float(value['f'])
    if 'b' in value:
        return bool(value['b'])
    if 's' in value:
        raw = base64.b64decode(value['s'])
        try:
            return raw.decode('utf-8')
        except UnicodeDecodeError:
            return raw
    if 'type' in value:
        return _TF_DTYPES.get(value['type'], value['type'])
    if 'shape' in value:
        return _shape(value['shape'])
    if 'tensor' in value:
        return value['tensor']
    if 'func' in value:
        return value['func']
    return None


def _shape(shape_proto: Dict[str, Any]) -> Tuple[int, ...]:
    if shape_proto.get('unknownRank'):
        return ()
    return tuple(int(d.get('size', -1)) for d in shape_proto.get('dim', []))


def _decode_weight(spec: Dict[str, Any], buffer: memoryview, offset: int,
                   source: str) -> Tuple[np.ndarray, int]:
    name = spec.get('name', '?')
    shape = tuple(int(s) for s in spec.get('shape', []))
    count = int(np.prod(shape)) if shape else 1
    dtype = spec.get('dtype')
    quant = spec.get('quantization')
    if dtype == 'string':
        raise TfjsFormatError(f'{source}: weight {name!r} has dtype string, which this reader '
                              f'does not support')
    stored = quant['dtype'] if quant else dtype
    if stored not in _STORED_DTYPES:
        raise TfjsFormatError(f'{source}: weight {name!r} is stored as {stored!r}, not one of '
                              f'{sorted(_STORED_DTYPES)}')
    np_stored = _STORED_DTYPES[stored]
    size = count * np_stored.itemsize
    if offset + size > len(buffer):
        raise TfjsFormatError(f'{source}: weight {name!r} needs bytes {offset}..{offset + size} '
                              f'but the weight files hold {len(buffer)} bytes')
    raw = np.frombuffer(buffer[offset:offset + size], dtype=np_stored).reshape(shape)
    if quant is None:
        values = raw.copy()
    elif stored == 'float16':
        values = raw.astype(np.float32)
    elif stored in ('uint8', 'uint16'):
        if 'scale' in quant and 'min' in quant:
            values = raw.astype(np.float32) * np.float32(quant['scale']) + np.float32(quant['min'])
        else:
            raise TfjsFormatError(f'{source}: weight {name!r} is {stored}-quantised without '
                                  f'scale/min (lookup-table quantisation is not supported)')
    else:
        raise TfjsFormatError(f'{source}: weight {name!r} has unsupported quantisation {quant!r}')
    target = quant.get('original_dtype', dtype) if quant else dtype
    if target in ('int32',):
        values = np.rint(values).astype(np.int32) if values.dtype.kind == 'f' else values.astype(np.int32)
    elif target == 'bool':
        values = values.astype(bool)
    elif target == 'float32' and values.dtype != np.float32:
        values = values.astype(np.float32)
    return values, offset + size


def read_weights(manifest: List[Dict[str, Any]], weight_dir: Path) -> Dict[str, np.ndarray]:
    """Every weight of a TF.js weights manifest as a numpy array (float16 etc. de-quantised)."""
    weights: Dict[str, np.ndarray] = {}
    for group in manifest:
        paths = group.get('paths', [])
        chunks = []
        for rel in paths:
            shard = Path(weight_dir) / rel
            if not shard.is_file():
                raise TfjsFormatError(f'{shard}: weight file named in the manifest is missing')
            chunks.append(shard.read_bytes())
        buffer = memoryview(b''.join(chunks))
        source = ', '.join(str(Path(weight_dir) / p) for p in paths) or str(weight_dir)
        offset = 0
        for spec in group.get('weights', []):
            values, offset = _decode_weight(spec, buffer, offset, source)
            weights[spec['name']] = values
        if offset != len(buffer):
            raise TfjsFormatError(f'{source}: manifest describes {offset} bytes but the weight '
                                  f'files hold {len(buffer)}')
    return weights


def load_graph(model_json: Path) -> TfjsGraph:
    """Parse a TF.js graph model (the JSON and its weight files beside it)."""
    model_json = Path(model_json)
    try:
        doc = json.loads(model_json.read_text(encoding='utf-8'))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TfjsFormatError(f'{model_json}: cannot read TF.js model JSON ({exc})')
    if not isinstance(doc, dict) or 'modelTopology' not in doc or 'weightsManifest' not in doc:
        raise TfjsFormatError(f'{model_json}: not a TF.js model (needs modelTopology and '
                              f'weightsManifest)')
    if doc.get('format', 'graph-model') != 'graph-model':
        raise TfjsFormatError(f'{model_json}: format is {doc.get("format")!r}, expected graph-model')
    topology = doc['modelTopology']
    nodes = [GraphNode(name=n['name'], op=n['op'], inputs=tuple(n.get('input', [])),
                       attrs={k: _attr_value(v) for k, v in n.get('attr', {}).items()})
             for n in topology.get('node', [])]
    if topology.get('library', {}).get('function'):
        raise TfjsFormatError(f'{model_json}: graph uses functions (control flow), which this '
                              f'reader does not support')
    weights = read_weights(doc['weightsManifest'], model_json.parent)
    signature = doc.get('signature', {})
    inputs = {k: _shape(v.get('tensorShape', {})) for k, v in signature.get('inputs', {}).items()}
    outputs = {k: _shape(v.get('tensorShape', {})) for k, v in signature.get('outputs', {}).items()}
    meta = {k: v for k, v in doc.items() if k not in ('modelTopology', 'weightsManifest')}
    return TfjsGraph(nodes=nodes, weights=weights, inputs=inputs, outputs=outputs, meta=meta)
