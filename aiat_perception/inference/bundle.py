"""The model bundle: one directory with ``bundle.yaml`` (metadata, schema version 1) and the ONNX graph.

``write_bundle`` is what training/export calls; ``load_bundle`` is what every runtime calls. Both
validate the metadata and check the ONNX graph's inputs and outputs against it, so a bundle that
loads is one the decoder can trust. See docs/contributing.md, "Model bundle contract".
"""
from __future__ import annotations

import copy
import dataclasses
import datetime
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import yaml

from aiat_perception.file_hash import sha256_file
from aiat_perception.yaml_section import YamlSection, read_yaml

from .cells import DEFAULT_CELL_OFFSET, num_cells

SCHEMA_VERSION = 1
BUNDLE_FILE = 'bundle.yaml'
DEFAULT_MODEL_FILE = 'model.onnx'
COLOR_ORDERS = ('BGR', 'RGB', 'GRAY')
RESIZE_MODES = ('stretch', 'letterbox', 'keep_aspect')  # keep_aspect: flexible inputs only
DECODER_TYPES = ('nanodet_gfl',)

# Largest network input (height x width) a bundle may declare: 4096x4096 is ~100x NanoDet's
# 416x416 and one float32 NCHW frame of it is 192 MiB. A graph with symbolic height/width takes
# whatever the metadata says, so this is the only guard against a first frame of 100 GiB.
MAX_INPUT_PIXELS = 4096 * 4096
# Normalisation: input = (pixel - mean) / std. Pixels are 0..255 (or 0..1), so a mean outside
# +-MAX_ABS_MEAN or a std outside [MIN_STD, MAX_STD] is a broken file, not a choice.
MAX_ABS_MEAN = 1e4
MIN_STD, MAX_STD = 1e-3, 1e4
MAX_STRETCH = 4.0           # input.max_stretch: a 4:1 squeeze is no longer the same object
MAX_INTEGER = 1 << 20       # no count or size in bundle.yaml is larger (input sides included)
MAX_YAML_DEPTH = 16          # bundle.yaml needs 4 levels; provenance gets the rest
MAX_YAML_BYTES = 4 << 20

# every key bundle.yaml may hold, per level (provenance is free-form)
KNOWN_KEYS = {
    '': ('schema_version', 'name', 'model', 'input', 'outputs', 'classes', 'decoder',
         'postprocess', 'provenance'),
    'model': ('file', 'sha256', 'format', 'opset'),
    'input': ('name', 'layout', 'height', 'width', 'color_order', 'resize', 'mean', 'std', 'dtype',
              'pad_value', 'flexible', 'size_multiple', 'max_stretch'),
    'outputs': ('scores', 'boxes'),
    'outputs.scores': ('name', 'shape'),
    'outputs.boxes': ('name', 'shape'),
    'decoder': ('type', 'strides', 'reg_max', 'scores_are_probabilities', 'cell_offset'),
    'postprocess': ('score_threshold', 'nms_iou_threshold', 'max_detections',
                    'class_agnostic_nms', 'pre_nms_top_k'),
}

Dim = Union[int, str, None]  # a static size, a symbolic name, or unknown


class BundleError(ValueError):
    """A bundle that cannot be used: the message names the file and what is wrong."""


@dataclass(frozen=True)
class ModelSpec:
    file: str
    sha256: str
    format: str = 'onnx'
    opset: Optional[int] = None


@dataclass(frozen=True)
class InputSpec:
    name: str
    height: int
    width: int
    color_order: str            # BGR, RGB or GRAY: channel order the network expects
    resize: str                 # stretch or letterbox
    mean: Tuple[float, ...]
    std: Tuple[float, ...]
    layout: str = 'NCHW'
    dtype: str = 'float32'
    pad_value: float = 114.0    # letterbox border, in input pixel units (before normalisation)
    # flexible: the graph takes any height and width that are multiples of size_multiple (a fully
    # convolutional detector; height x width is then the trained size and the default pixel budget)
    flexible: bool = False
    size_multiple: int = 1
    # keep_aspect may distort an image toward the trained aspect ratio by up to this factor: a
    # model trained on stretched photos (COCO's 4:3 to a square) learned objects squeezed that much
    max_stretch: float = 1.0

    @property
    def channels(self) -> int:
        return 1 if self.color_order == 'GRAY' else 3


@dataclass(frozen=True)
class OutputSpec:
    name: str
    shape: Tuple[Dim, ...]


@dataclass(frozen=True)
class DecoderSpec:
    type: str
    strides: Tuple[int, ...]
    reg_max: int
    scores_are_probabilities: bool = True
    cell_offset: float = DEFAULT_CELL_OFFSET    # cell centre = (col + cell_offset) * stride

    @property
    def bins(self) -> int:
        return self.reg_max + 1

    def num_cells(self, height: int, width: int) -> int:
        return num_cells(height, width, self.strides)


@dataclass(frozen=True)
class PostprocessSpec:
    score_threshold: float = 0.35
    nms_iou_threshold: float = 0.6
    max_detections: int = 100
    class_agnostic_nms: bool = False
    pre_nms_top_k: int = 1000


@dataclass(frozen=True)
class Bundle:
    path: Path                  # the bundle directory
    name: str
    schema_version: int
    model: ModelSpec
    input: InputSpec
    outputs: Dict[str, OutputSpec]   # keys: 'scores', 'boxes'
    classes: Tuple[str, ...]
    decoder: DecoderSpec
    postprocess: PostprocessSpec
    provenance: Dict[str, Any] = field(default_factory=dict)

    @property
    def onnx_path(self) -> Path:
        return self.path / self.model.file

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def num_cells(self) -> int:
        return self.decoder.num_cells(self.input.height, self.input.width)

    def to_dict(self) -> Dict[str, Any]:
        """The ``bundle.yaml`` content."""
        return {
            'schema_version': self.schema_version,
            'name': self.name,
            'model': {'file': self.model.file, 'sha256': self.model.sha256,
                      'format': self.model.format, 'opset': self.model.opset},
            'input': {'name': self.input.name, 'layout': self.input.layout,
                      'height': self.input.height, 'width': self.input.width,
                      'color_order': self.input.color_order, 'resize': self.input.resize,
                      'mean': list(self.input.mean), 'std': list(self.input.std),
                      'dtype': self.input.dtype, 'pad_value': self.input.pad_value,
                      **({'flexible': True, 'size_multiple': self.input.size_multiple}
                         if self.input.flexible else {}),
                      **({'max_stretch': self.input.max_stretch}
                         if self.input.max_stretch != 1.0 else {})},
            'outputs': {key: {'name': out.name, 'shape': list(out.shape)}
                        for key, out in self.outputs.items()},
            'classes': list(self.classes),
            'decoder': {'type': self.decoder.type, 'strides': list(self.decoder.strides),
                        'reg_max': self.decoder.reg_max,
                        'scores_are_probabilities': self.decoder.scores_are_probabilities,
                        'cell_offset': self.decoder.cell_offset},
            'postprocess': {'score_threshold': self.postprocess.score_threshold,
                            'nms_iou_threshold': self.postprocess.nms_iou_threshold,
                            'max_detections': self.postprocess.max_detections,
                            'class_agnostic_nms': self.postprocess.class_agnostic_nms,
                            'pre_nms_top_k': self.postprocess.pre_nms_top_k},
            'provenance': copy.deepcopy(self.provenance),
        }


# ---------------------------------------------------------------------------------------------
# metadata parsing (hand-written: a dozen typed fields do not justify a schema library on the vehicle)

def _fields(data: Any, where: str, source: Path) -> YamlSection:
    return YamlSection(data, source, where, BundleError, KNOWN_KEYS.get(where))


def _sub(fields: YamlSection, key: str) -> YamlSection:
    return _fields(fields.get(key), fields.where(key), fields.source)


def _parse_shape(fields: YamlSection, key: str) -> Tuple[Dim, ...]:
    value = fields.get(key)
    if not isinstance(value, (list, tuple)) or not all(
            v is None or isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool))
            for v in value):
        raise fields.fail(key, f'expected a list of sizes (integers or names), got {value!r}')
    return tuple(value)


def _check_depth(data: Any, source: Path) -> None:
    """Refuse structures nested deeper than MAX_YAML_DEPTH (or recursive, via YAML aliases).

    Iterative, so the check itself cannot hit Python's recursion limit.
    """
    stack = [(data, 0, '')]
    while stack:
        value, depth, where = stack.pop()
        if depth > MAX_YAML_DEPTH:
            raise BundleError(f'{source}: {where or "top level"}: nested deeper than '
                              f'{MAX_YAML_DEPTH} levels (or recursive)')
        if isinstance(value, dict):
            stack.extend((v, depth + 1, f'{where}.{k}' if where else str(k))
                         for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            stack.extend((v, depth + 1, f'{where}[{i}]') for i, v in enumerate(value))


def read_bundle_yaml(source: Path) -> Any:
    """Parse ``bundle.yaml`` safely: size cap, safe loader, nesting cap; errors name the file."""
    data = read_yaml(source, BundleError, MAX_YAML_BYTES, 'bundle.yaml')
    _check_depth(data, source)
    return data


def bundle_from_dict(data: Any, directory: Path, source: Optional[Path] = None) -> Bundle:
    """Validate ``bundle.yaml`` content (no file access) and build the typed :class:`Bundle`."""
    source = source or Path(directory) / BUNDLE_FILE
    _check_depth(data, source)
    top = _fields(data, '', source)
    version = top.get('schema_version')
    if isinstance(version, bool) or not isinstance(version, int) or version != SCHEMA_VERSION:
        raise BundleError(f'{source}: schema_version is {version!r}, this code reads version '
                          f'{SCHEMA_VERSION}')
    model_f = _sub(top, 'model')
    model = ModelSpec(file=model_f.string('file'), sha256=model_f.string('sha256'),
                      format=model_f.string('format', 'onnx', choices=('onnx',)),
                      opset=model_f.get('opset', None))
    if model.opset is not None and (isinstance(model.opset, bool) or not isinstance(model.opset, int)
                                    or not 1 <= model.opset <= 1000):
        raise model_f.fail('opset', f'expected an integer opset version, got {model.opset!r:.60}')
    if Path(model.file).name != model.file or model.file in ('.', '..') or '\x00' in model.file:
        raise model_f.fail('file', f'must be a file name inside the bundle, got {model.file!r}')

    in_f = _sub(top, 'input')
    color_order = in_f.string('color_order', choices=COLOR_ORDERS)
    channels = 1 if color_order == 'GRAY' else 3
    inp = InputSpec(name=in_f.string('name'),
                    layout=in_f.string('layout', 'NCHW', choices=('NCHW',)),
                    height=in_f.integer('height', minimum=1, maximum=MAX_INTEGER),
                    width=in_f.integer('width', minimum=1, maximum=MAX_INTEGER),
                    color_order=color_order,
                    resize=in_f.string('resize', choices=RESIZE_MODES),
                    mean=in_f.numbers('mean', channels, -MAX_ABS_MEAN, MAX_ABS_MEAN),
                    std=in_f.numbers('std', channels, MIN_STD, MAX_STD),
                    dtype=in_f.string('dtype', 'float32', choices=('float32',)),
                    pad_value=in_f.number('pad_value', 114.0, -MAX_ABS_MEAN, MAX_ABS_MEAN))
    if inp.height * inp.width > MAX_INPUT_PIXELS:
        raise in_f.fail('height', f'input {inp.height}x{inp.width} = {inp.height * inp.width} '
                                  f'pixels is over the limit MAX_INPUT_PIXELS = {MAX_INPUT_PIXELS}')

    classes = top.get('classes')
    if (not isinstance(classes, (list, tuple)) or not classes
            or not all(isinstance(c, str) and c for c in classes)):
        raise top.fail('classes', f'expected a non-empty list of class names, got {classes!r}')
    if len(set(classes)) != len(classes):
        raise top.fail('classes', 'class names must be unique')

    flexible = in_f.boolean('flexible', False)
    dec_f = _sub(top, 'decoder')
    strides = dec_f.get('strides')
    if (not isinstance(strides, (list, tuple)) or not strides
            or not all(isinstance(s, int) and not isinstance(s, bool) and 0 < s <= 1024
                       for s in strides)):
        raise dec_f.fail('strides', f'expected a list of integers in [1, 1024], got {strides!r:.80}')
    decoder = DecoderSpec(type=dec_f.string('type', choices=DECODER_TYPES), strides=tuple(strides),
                          reg_max=dec_f.integer('reg_max', minimum=0, maximum=64),
                          scores_are_probabilities=dec_f.boolean('scores_are_probabilities', True),
                          cell_offset=dec_f.number('cell_offset', DEFAULT_CELL_OFFSET, 0.0, 1.0))
    inp = _flexible_input(inp, in_f, flexible, max(decoder.strides))

    post_f = _fields(top.get('postprocess', {}), 'postprocess', source)
    post = PostprocessSpec(score_threshold=post_f.number('score_threshold', 0.35, 0.0, 1.0),
                           nms_iou_threshold=post_f.number('nms_iou_threshold', 0.6, 0.0, 1.0),
                           max_detections=post_f.integer('max_detections', 100, minimum=1,
                                                         maximum=MAX_INTEGER),
                           class_agnostic_nms=post_f.boolean('class_agnostic_nms', False),
                           pre_nms_top_k=post_f.integer('pre_nms_top_k', 1000, minimum=1,
                                                        maximum=MAX_INTEGER))

    out_f = _sub(top, 'outputs')
    outputs = {}
    for key in ('scores', 'boxes'):
        one = _sub(out_f, key)
        outputs[key] = OutputSpec(name=one.string('name'), shape=_parse_shape(one, 'shape'))
    cells = decoder.num_cells(inp.height, inp.width)
    expected = {'scores': len(classes), 'boxes': 4 * decoder.bins}
    for key, out in outputs.items():
        if len(out.shape) != 3:
            raise BundleError(f'{source}: outputs.{key}.shape must have rank 3 [batch, cells, '
                              f'values], got {list(out.shape)}')
        if inp.flexible and isinstance(out.shape[1], int):
            raise BundleError(f'{source}: outputs.{key}.shape[1] is {out.shape[1]} but a flexible '
                              f'input gives a cell count per input size: use a name (e.g. cells)')
        if isinstance(out.shape[1], int) and out.shape[1] != cells:
            raise BundleError(f'{source}: outputs.{key}.shape[1] is {out.shape[1]} but input '
                              f'{inp.height}x{inp.width} with strides {list(strides)} gives {cells} cells')
        if out.shape[2] != expected[key]:
            what = (f'{len(classes)} classes' if key == 'scores'
                    else f'4 sides x {decoder.bins} bins (reg_max {decoder.reg_max})')
            raise BundleError(f'{source}: outputs.{key}.shape[2] is {out.shape[2]} but metadata '
                              f'says {what} = {expected[key]}')

    provenance = top.get('provenance', {})
    if not isinstance(provenance, dict):
        raise top.fail('provenance', 'expected a mapping')
    return Bundle(path=Path(directory), name=top.string('name'), schema_version=version,
                  model=model, input=inp, outputs=outputs, classes=tuple(classes),
                  decoder=decoder, postprocess=post, provenance=provenance)


def _flexible_input(inp: InputSpec, in_f: YamlSection, flexible: bool, largest_stride: int) -> InputSpec:
    """input.flexible / input.size_multiple, checked against the strides; keep_aspect needs both."""
    if not flexible:
        if in_f.has('size_multiple'):
            raise in_f.fail('size_multiple', 'only a flexible input (flexible: true) has a size multiple')
        if in_f.has('max_stretch'):
            raise in_f.fail('max_stretch', 'only a flexible input (flexible: true) keeps the aspect '
                                           'ratio and may stretch it')
        if inp.resize == 'keep_aspect':
            raise in_f.fail('resize', 'keep_aspect picks an input size per image and needs '
                                      'flexible: true (a graph with dynamic height and width)')
        return inp
    multiple = in_f.integer('size_multiple', largest_stride, minimum=1, maximum=MAX_INTEGER)
    if multiple % largest_stride:
        raise in_f.fail('size_multiple', f'{multiple} is not a multiple of the largest stride '
                                         f'{largest_stride}')
    if inp.height % multiple or inp.width % multiple:
        raise in_f.fail('height', f'flexible input {inp.height}x{inp.width} is not a multiple of '
                                  f'size_multiple {multiple}')
    max_stretch = in_f.number('max_stretch', 1.0, 1.0, MAX_STRETCH)
    return dataclasses.replace(inp, flexible=True, size_multiple=multiple, max_stretch=max_stretch)


# ---------------------------------------------------------------------------------------------
# the ONNX graph

def _onnx_signature(path: Path) -> Tuple[Dict[str, Tuple[Dim, ...]], Dict[str, Tuple[Dim, ...]],
                                         Optional[int]]:
    """(inputs, outputs, opset) of an ONNX file: name -> shape. Uses `onnx` if present, else ORT."""
    try:
        import onnx
    except ImportError:
        onnx = None
    if onnx is not None:
        try:
            model = onnx.load(str(path))
            onnx.checker.check_model(model)
        except Exception as exc:  # DecodeError, ValidationError, ...
            raise BundleError(f'{path}: not a valid ONNX model ({type(exc).__name__}: '
                              f'{str(exc).strip().splitlines()[0] if str(exc).strip() else ""})')

        def shape(value_info) -> Tuple[Dim, ...]:
            dims = value_info.type.tensor_type.shape.dim
            return tuple(d.dim_value if d.HasField('dim_value')
                         else (d.dim_param or None) for d in dims)

        initializers = {init.name for init in model.graph.initializer}
        inputs = {v.name: shape(v) for v in model.graph.input if v.name not in initializers}
        outputs = {v.name: shape(v) for v in model.graph.output}
        opset = next((o.version for o in model.opset_import if o.domain in ('', 'ai.onnx')), None)
        return inputs, outputs, opset

    import onnxruntime as ort
    try:
        session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    except Exception as exc:
        raise BundleError(f'{path}: ONNX Runtime cannot load the model ({exc})')

    def ort_shape(arg) -> Tuple[Dim, ...]:
        return tuple(d if isinstance(d, int) else (d or None) for d in arg.shape)

    return ({a.name: ort_shape(a) for a in session.get_inputs()},
            {a.name: ort_shape(a) for a in session.get_outputs()}, None)


def check_onnx_matches(bundle: Bundle, onnx_path: Optional[Path] = None) -> Optional[int]:
    """Raise BundleError if the graph's inputs/outputs disagree with the bundle; return its opset."""
    path = Path(onnx_path or bundle.onnx_path)
    inputs, outputs, opset = _onnx_signature(path)
    inp = bundle.input
    if inp.name not in inputs:
        raise BundleError(f'{path}: graph has no input {inp.name!r} (metadata input.name); '
                          f'its inputs are {sorted(inputs)}')
    if len(inputs) != 1:
        raise BundleError(f'{path}: graph has {len(inputs)} inputs {sorted(inputs)}, expected one')
    shape = inputs[inp.name]
    if len(shape) != 4:
        raise BundleError(f'{path}: input {inp.name!r} has rank {len(shape)} {list(shape)}, '
                          f'expected 4 (NCHW)')
    if isinstance(shape[1], int) and shape[1] != inp.channels:
        raise BundleError(f'{path}: input {inp.name!r} has {shape[1]} channels, metadata '
                          f'color_order {inp.color_order} needs {inp.channels}')
    for axis, label, want in ((2, 'height', inp.height), (3, 'width', inp.width)):
        if inp.flexible and isinstance(shape[axis], int):
            raise BundleError(f'{path}: input {inp.name!r} {label} is fixed at {shape[axis]} in the '
                              f'graph, metadata says input.flexible: true (export with dynamic axes)')
        if isinstance(shape[axis], int) and shape[axis] != want:
            raise BundleError(f'{path}: input {inp.name!r} {label} is {shape[axis]}, metadata '
                              f'input.{label} is {want}')
    cells = bundle.num_cells
    for key, out in bundle.outputs.items():
        if out.name not in outputs:
            raise BundleError(f'{path}: graph has no output {out.name!r} (metadata '
                              f'outputs.{key}.name); its outputs are {sorted(outputs)}')
        got = outputs[out.name]
        if len(got) != 3:
            raise BundleError(f'{path}: output {out.name!r} has rank {len(got)} {list(got)}, '
                              f'expected 3 [batch, cells, values]')
        if isinstance(got[1], int) and (inp.flexible or got[1] != cells):
            raise BundleError(f'{path}: output {out.name!r} has {got[1]} cells, metadata '
                              f'(input {inp.height}x{inp.width}, strides {list(bundle.decoder.strides)}) '
                              f'gives {cells}')
        if isinstance(got[2], int) and got[2] != out.shape[2]:
            what = ('classes' if key == 'scores'
                    else f'box values (4 x {bundle.decoder.bins} bins)')
            raise BundleError(f'{path}: output {out.name!r} has {got[2]} {what}, metadata says '
                              f'{out.shape[2]}')
    return opset


# ---------------------------------------------------------------------------------------------
# public API

def load_bundle(path: Union[str, Path], verify_model: bool = True) -> Bundle:
    """Read and validate a bundle directory (or its ``bundle.yaml``).

    ``verify_model`` checks the sha256 and the ONNX graph's inputs/outputs (the default; turn it off
    only where the caller opens the graph itself right after).
    """
    path = Path(path)
    directory = path.parent if path.name == BUNDLE_FILE else path
    if not directory.is_dir():
        raise BundleError(f'{directory}: bundle directory does not exist')
    source = directory / BUNDLE_FILE
    if not source.is_file():
        raise BundleError(f'{source}: missing (a bundle directory holds {BUNDLE_FILE} and the ONNX model)')
    data = read_bundle_yaml(source)
    bundle = bundle_from_dict(data, directory, source)
    model_path = bundle.onnx_path
    if not model_path.is_file():
        raise BundleError(f'{model_path}: model file missing (named by model.file in {source})')
    if verify_model:
        digest = sha256_file(model_path)
        if digest != bundle.model.sha256:
            raise BundleError(f'{model_path}: sha256 {digest} does not match model.sha256 '
                              f'{bundle.model.sha256} in {source} (corrupt or replaced model)')
        check_onnx_matches(bundle)
    return bundle


def _fill_output_shapes(data: Dict[str, Any]) -> None:
    # Writers may leave out the output shapes; they follow from input size, strides, classes and bins.
    outputs = data.setdefault('outputs', {'scores': {'name': 'scores'}, 'boxes': {'name': 'box_dist'}})
    try:
        decoder = data['decoder']
        cells = ('cells' if data['input'].get('flexible') is True
                 else num_cells(data['input']['height'], data['input']['width'], decoder['strides']))
        values = {'scores': len(data['classes']), 'boxes': 4 * (decoder['reg_max'] + 1)}
    except (KeyError, TypeError, ZeroDivisionError):
        return  # bundle_from_dict reports what is missing
    for key, value in values.items():
        if isinstance(outputs.get(key), dict) and 'shape' not in outputs[key]:
            outputs[key] = dict(outputs[key], shape=['batch', cells, value])


def write_bundle(out_dir: Union[str, Path], onnx_path: Union[str, Path], meta: Dict[str, Any]) -> Path:
    """Create a bundle directory from an ONNX file and metadata; returns the directory.

    ``meta`` holds the bundle.yaml keys (name, input, outputs, classes, decoder, postprocess,
    provenance); ``schema_version`` and ``model`` are filled in (model.file defaults to
    ``model.onnx``, sha256 and opset come from the copied file), ``provenance.created`` defaults to
    now. Validation runs before anything is written to ``bundle.yaml``.
    """
    out_dir = Path(out_dir)
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise BundleError(f'{onnx_path}: ONNX file to bundle does not exist')
    data = copy.deepcopy(dict(meta))
    data.setdefault('schema_version', SCHEMA_VERSION)
    model = dict(data.get('model') or {})
    model.setdefault('file', DEFAULT_MODEL_FILE)
    model['format'] = 'onnx'
    provenance = dict(data.get('provenance') or {})
    provenance.setdefault('created', datetime.datetime.now(datetime.timezone.utc)
                          .replace(microsecond=0).isoformat())
    data['provenance'] = provenance
    if 'classes' in data:
        data['classes'] = list(data['classes'])
    _fill_output_shapes(data)

    model['sha256'] = sha256_file(onnx_path)
    data['model'] = model
    source = out_dir / BUNDLE_FILE
    bundle = bundle_from_dict(data, out_dir, source)
    opset = check_onnx_matches(bundle, onnx_path)  # errors name the caller's file
    if opset is not None:
        model['opset'] = int(opset)
    bundle = bundle_from_dict(data, out_dir, source)

    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / model['file']
    if not target.exists() or onnx_path.resolve() != target.resolve():
        shutil.copyfile(onnx_path, target)
    tmp = source.with_suffix('.yaml.tmp')
    tmp.write_text(yaml.safe_dump(bundle.to_dict(), sort_keys=False), encoding='utf-8')
    tmp.replace(source)
    return out_dir
