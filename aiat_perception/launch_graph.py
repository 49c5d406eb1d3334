"""Node graphs described in YAML (``config/launch/*.yaml``): parse, validate, resolve arguments.

One graph file is the single description of what a launch starts. ``launch/*.launch.py`` turns it
into launch_ros actions (see :mod:`aiat_perception.launch_ros_actions`) and ``aiat-launch`` turns it
into processes (see :mod:`aiat_perception.launcher`), so both start the same nodes with the same
parameter files. This module needs neither ROS nor launch_ros.

Graph file::

    description: what this graph starts
    arguments:                          # launch arguments, set with name:=value
      params_file: {default: camera_detector.yaml, description: parameters of the detector}
      use_iou_monitor: {default: 'false', description: also start the IoU monitor}
    nodes:
      - executable: camera_detector     # console script of the aiat_perception package
        name: camera_detector           # node name (default: the executable)
        namespace: ''                   # optional
        params_files: ['$(arg params_file)']   # applied in order; relative paths: config dir, then cwd
        parameters: {bundle: '$(arg bundle_path)'}  # inline overrides, applied after the files
        remappings: {image: '$(arg image_topic)'}
        condition: use_iou_monitor      # or 'not use_sim': start only if the argument is true/false
        required: false                 # true: when this node exits, stop the whole graph

``$(arg NAME)`` is replaced by the argument's value anywhere in a string. An inline parameter whose
whole value is ``$(arg NAME)`` takes the YAML type of the value (``5`` -> int, ``true`` -> bool) and is
left out when the argument is empty, so the parameter file's value applies. docs/launch.md has the
full format; parameters are checked against the nodes' tables (:mod:`aiat_perception.node_params`).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

import yaml

from aiat_perception.node_params import MODULES as NODE_TABLES, table_for
from aiat_perception.parameters import ParameterTable
from aiat_perception.share import PACKAGE, config_dir
from aiat_perception.yaml_section import read_yaml

# Used when the distribution's entry points cannot be read (e.g. the source tree without `pip install`);
# must match setup.py's console_scripts for the nodes.
FALLBACK_EXECUTABLES = {
    'camera_detector': 'aiat_perception.nodes.camera_detector:main',
    'image_publisher': 'aiat_perception.nodes.image_publisher:main',
    'detection_listener': 'aiat_perception.nodes.detection_listener:main',
    'sim': 'aiat_perception.nodes.sim_node:main',
    'iou_monitor': 'aiat_perception.nodes.iou_monitor:main',
    'lidar_detector': 'aiat_perception.nodes.lidar_detector:main',
    'scan_detector': 'aiat_perception.nodes.scan_detector:main',
    'fusion': 'aiat_perception.nodes.fusion:main',
}

GRAPH_KEYS = {'description', 'arguments', 'nodes'}
ARGUMENT_KEYS = {'default', 'description', 'choices'}
NODE_KEYS = {'executable', 'name', 'namespace', 'params_files', 'parameters', 'remappings',
             'condition', 'required'}
# Declared by rclpy itself in every node.
IMPLICIT_PARAMETERS = {'use_sim_time', 'start_type_description_service'}

_ARG = re.compile(r'\$\(arg ([A-Za-z_][A-Za-z0-9_]*)\)')
_ANY_SUBSTITUTION = re.compile(r'\$\(([^)]*)\)')
_NAME = re.compile(r'^[A-Za-z][A-Za-z0-9_]*$')
_TRUE, _FALSE = ('true', '1'), ('false', '0')  # what launch's IfCondition accepts


class GraphError(ValueError):
    """A graph file or launch argument is invalid; the message names the file and key."""


@dataclass
class Argument:
    name: str
    default: Optional[str]
    description: str = ''
    choices: Optional[List[str]] = None


@dataclass
class Condition:
    argument: str
    negate: bool = False

    def __str__(self):
        return ('not ' if self.negate else '') + self.argument


@dataclass
class NodeSpec:
    """A node as written in the graph file (values may contain ``$(arg ...)``)."""
    executable: str
    name: str
    namespace: str = ''
    params_files: List[str] = field(default_factory=list)
    parameters: Dict[str, object] = field(default_factory=dict)
    remappings: Dict[str, str] = field(default_factory=dict)
    condition: Optional[Condition] = None
    required: bool = False
    where: str = ''  # "file: nodes[i]" for messages


@dataclass
class Graph:
    path: Path
    description: str
    arguments: Dict[str, Argument]
    nodes: List[NodeSpec]


@dataclass
class ResolvedNode:
    """A node with every argument substituted: what actually gets started."""
    executable: str
    name: str
    namespace: str
    params_files: List[Path]
    parameters: Dict[str, object]
    remappings: List[Tuple[str, str]]
    required: bool
    where: str = ''

    @property
    def fqn(self) -> str:
        ns = self.namespace.strip('/')
        return f'/{ns}/{self.name}' if ns else f'/{self.name}'

    def ros_args(self) -> List[str]:
        """The ``--ros-args`` part of the command line (same meaning as launch_ros gives them)."""
        args = ['--ros-args', '-r', f'__node:={self.name}']
        if self.namespace:
            args += ['-r', f'__ns:={normalize_namespace(self.namespace)}']
        for path in self.params_files:
            args += ['--params-file', str(path)]
        for key, value in self.parameters.items():
            args += ['-p', f'{key}:={parameter_text(value)}']
        for src, dst in self.remappings:
            args += ['-r', f'{src}:={dst}']
        return args


# ----------------------------------------------------------------------------- locations

def available_graphs(config: Optional[Path] = None) -> List[str]:
    return sorted(p.name[:-len('.yaml')] for p in ((config or config_dir()) / 'launch').glob('*.yaml'))


def graph_path(name_or_path: str, config: Optional[Path] = None) -> Path:
    """A graph name (``camera_detector``) or a path to a graph YAML file."""
    as_path = Path(name_or_path)
    if as_path.suffix in ('.yaml', '.yml') or os.sep in name_or_path:
        if not as_path.is_file():
            raise GraphError(f'graph file {name_or_path} does not exist')
        return as_path
    path = (config or config_dir()) / 'launch' / f'{name_or_path}.yaml'
    if not path.is_file():
        raise GraphError(f'no graph named {name_or_path!r} in {path.parent} '
                         f'(available: {", ".join(available_graphs(config)) or "none"})')
    return path


# ----------------------------------------------------------------------------- parsing

def load_graph(path) -> Graph:
    path = Path(path)
    data = read_yaml(path, GraphError, what='graph file')
    if not isinstance(data, dict):
        raise GraphError(f'{path}: must be a mapping with keys {sorted(GRAPH_KEYS)}')
    _no_unknown_keys(data, GRAPH_KEYS, f'{path}')
    arguments = {}
    raw_args = data.get('arguments') or {}
    if not isinstance(raw_args, dict):
        raise GraphError(f'{path}: arguments: must be a mapping of name -> {{default, description}}')
    for name, spec in raw_args.items():
        where = f'{path}: arguments.{name}'
        if not isinstance(name, str) or not _NAME.match(name):
            raise GraphError(f'{where}: argument names are letters, digits and _')
        if spec is None:
            spec = {}
        if not isinstance(spec, dict):
            raise GraphError(f'{where}: must be a mapping with keys {sorted(ARGUMENT_KEYS)}')
        _no_unknown_keys(spec, ARGUMENT_KEYS, where)
        default = spec.get('default')
        choices = spec.get('choices')
        if choices is not None:
            if not isinstance(choices, list) or not choices:
                raise GraphError(f'{where}.choices: must be a non-empty list')
            choices = [_argument_text(c) for c in choices]
        arguments[name] = Argument(name, None if default is None else _argument_text(default),
                                   str(spec.get('description', '')), choices)
        if choices and default is not None and arguments[name].default not in choices:
            raise GraphError(f'{where}.default: {default!r} is not one of {choices}')
    raw_nodes = data.get('nodes')
    if not isinstance(raw_nodes, list) or not raw_nodes:
        raise GraphError(f'{path}: nodes: must be a non-empty list')
    nodes = [_parse_node(raw, f'{path}: nodes[{i}]', arguments) for i, raw in enumerate(raw_nodes)]
    return Graph(path, str(data.get('description', '')), arguments, nodes)


def _parse_node(raw, where: str, arguments: Dict[str, Argument]) -> NodeSpec:
    if not isinstance(raw, dict):
        raise GraphError(f'{where}: must be a mapping with keys {sorted(NODE_KEYS)}')
    _no_unknown_keys(raw, NODE_KEYS, where)
    executable = raw.get('executable')
    if not isinstance(executable, str) or not executable:
        raise GraphError(f'{where}.executable: required (a console script of {PACKAGE})')
    where = f'{where} ({executable})'
    name = raw.get('name', executable)
    namespace = raw.get('namespace', '') or ''
    for key, value in (('name', name), ('namespace', namespace)):
        if not isinstance(value, str):
            raise GraphError(f'{where}.{key}: must be a string')
    params_files = raw.get('params_files', []) or []
    if isinstance(params_files, str):
        params_files = [params_files]
    if not isinstance(params_files, list) or not all(isinstance(p, str) for p in params_files):
        raise GraphError(f'{where}.params_files: must be a list of paths')
    parameters = raw.get('parameters', {}) or {}
    if not isinstance(parameters, dict) or not all(isinstance(k, str) for k in parameters):
        raise GraphError(f'{where}.parameters: must be a mapping of parameter name -> value')
    parameters = flatten_parameters(parameters)
    remappings = raw.get('remappings', {}) or {}
    if not isinstance(remappings, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in remappings.items()):
        raise GraphError(f'{where}.remappings: must be a mapping of topic -> new topic (strings)')
    condition = raw.get('condition')
    if condition is not None:
        words = str(condition).split()
        negate = len(words) == 2 and words[0] == 'not'
        if not (len(words) == 1 or negate) or words[-1] not in arguments:
            raise GraphError(f'{where}.condition: must be ARGUMENT or "not ARGUMENT" with a declared '
                             f'argument ({", ".join(arguments) or "none declared"}), not {condition!r}')
        condition = Condition(words[-1], negate)
    required = raw.get('required', False)
    if not isinstance(required, bool):
        raise GraphError(f'{where}.required: must be true or false')
    spec = NodeSpec(executable, name, namespace, params_files, parameters, remappings, condition,
                    required, where)
    for key, text in _strings_of(spec):
        for match in _ANY_SUBSTITUTION.finditer(text):
            arg = _ARG.fullmatch(match.group(0))
            if arg is None:
                raise GraphError(f'{where}.{key}: unknown substitution {match.group(0)!r} '
                                 f'(only $(arg NAME) is supported)')
            if arg.group(1) not in arguments:
                raise GraphError(f'{where}.{key}: $(arg {arg.group(1)}) is not a declared argument '
                                 f'({", ".join(arguments) or "none declared"})')
    return spec


def _strings_of(spec: NodeSpec) -> Iterable[Tuple[str, str]]:
    yield 'name', spec.name
    yield 'namespace', spec.namespace
    for i, p in enumerate(spec.params_files):
        yield f'params_files[{i}]', p
    for key, value in spec.parameters.items():
        for item in (value if isinstance(value, list) else [value]):
            if isinstance(item, str):
                yield f'parameters.{key}', item
    for src, dst in spec.remappings.items():
        yield f'remappings.{src}', src
        yield f'remappings.{src}', dst


def _no_unknown_keys(mapping: dict, allowed: set, where: str) -> None:
    unknown = sorted(str(k) for k in mapping if k not in allowed)
    if unknown:
        raise GraphError(f'{where}: unknown key(s) {", ".join(unknown)} (allowed: {", ".join(sorted(allowed))})')


def _argument_text(value) -> str:
    """Launch arguments are strings; YAML scalars are written the way launch would print them."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return str(value)


def flatten_parameters(params: dict, prefix: str = '') -> Dict[str, object]:
    """Nested parameter mappings -> dotted names, as ROS 2 reads parameter files."""
    flat = {}
    for key, value in params.items():
        name = f'{prefix}{key}'
        if isinstance(value, dict):
            flat.update(flatten_parameters(value, name + '.'))
        else:
            flat[name] = value
    return flat


# ----------------------------------------------------------------------------- arguments

def parse_argument_assignments(items: Iterable[str]) -> Dict[str, str]:
    """``['name:=value', ...]`` (the ``ros2 launch`` syntax) -> dict."""
    values = {}
    for item in items:
        name, sep, value = item.partition(':=')
        if not sep or not _NAME.match(name):
            raise GraphError(f'launch argument {item!r}: expected name:=value')
        values[name] = value
    return values


EMPTY_SPELLINGS = ("''", '""')  # `ros2 launch` cannot pass a bare `name:=`; both runners read these as empty


def argument_values(graph: Graph, given: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    given = {name: '' if value.strip() in EMPTY_SPELLINGS else value for name, value in (given or {}).items()}
    unknown = sorted(set(given) - set(graph.arguments))
    if unknown:
        raise GraphError(f'{graph.path}: unknown launch argument(s) {", ".join(unknown)} '
                         f'(declared: {", ".join(graph.arguments) or "none"})')
    values = {}
    for name, arg in graph.arguments.items():
        value = given.get(name, arg.default)
        if value is None:
            raise GraphError(f'{graph.path}: launch argument {name!r} is required ({arg.description})')
        if arg.choices and value not in arg.choices:
            raise GraphError(f'{graph.path}: launch argument {name}:={value!r} is not one of {arg.choices}')
        values[name] = value
    return values


def substitute(text: str, values: Dict[str, str]) -> str:
    return _ARG.sub(lambda m: values[m.group(1)], text)


def is_true(value: str, what: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise GraphError(f'{what}: expected true or false, got {value!r}')


def condition_holds(spec: NodeSpec, values: Dict[str, str]) -> bool:
    if spec.condition is None:
        return True
    held = is_true(values[spec.condition.argument],
                   f'{spec.where}.condition: launch argument {spec.condition.argument}')
    return held != spec.condition.negate


OMIT = object()  # an inline parameter left to the parameter files


def resolve_parameter(value, values: Dict[str, str]):
    """Substitute ``$(arg ...)``; a value that is exactly one ``$(arg X)`` takes X's YAML type.
    Returns :data:`OMIT` for a whole-value substitution of an empty argument."""
    if isinstance(value, list):
        return [resolve_parameter(v, values) for v in value]
    if not isinstance(value, str):
        return value
    whole = _ARG.fullmatch(value.strip())
    if whole:
        text = values[whole.group(1)]
        if text == '':
            return OMIT
        try:
            parsed = yaml.safe_load(text)
        except yaml.YAMLError:
            return text
        return parsed if isinstance(parsed, (bool, int, float, str, list)) else text
    return substitute(value, values)



def resolve_params_file(text: str, config: Path, where: str) -> Path:
    path = Path(text).expanduser()
    if path.is_absolute():
        candidates = [path]
    else:
        candidates = [config / path, Path.cwd() / path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise GraphError(f'{where}: parameter file {text!r} not found (looked at '
                     f'{", ".join(str(c) for c in candidates)})')


def resolve(graph: Graph, given: Optional[Dict[str, str]] = None, config: Optional[Path] = None,
            include_disabled: bool = False) -> List[ResolvedNode]:
    """The nodes to start for these argument values (conditions applied unless ``include_disabled``)."""
    config = config or config_dir()
    values = argument_values(graph, given)
    nodes = []
    for spec in graph.nodes:
        enabled = condition_holds(spec, values)
        if not (enabled or include_disabled):
            continue
        files = []
        for i, text in enumerate(spec.params_files):
            resolved = substitute(text, values)
            if resolved.strip():  # an empty argument means "no extra file"
                files.append(resolve_params_file(resolved, config, f'{spec.where}.params_files[{i}]'))
        parameters = {}
        table = NODE_TABLES.get(spec.executable) and table_for(spec.executable)
        for key, value in spec.parameters.items():
            resolved = resolve_parameter(value, values)
            if resolved is not OMIT:
                # `rate_hz:=20` for a double parameter: rclpy would refuse the integer
                parameters[key] = table.coerce(key, resolved) if table else resolved
        remappings = [(substitute(s, values), substitute(d, values)) for s, d in spec.remappings.items()]
        name = substitute(spec.name, values)
        if not _NAME.match(name):
            raise GraphError(f'{spec.where}.name: {name!r} is not a valid node name')
        nodes.append(ResolvedNode(spec.executable, name, substitute(spec.namespace, values), files,
                                  parameters, remappings, spec.required, spec.where))
    seen = {}
    for node in nodes:
        if node.fqn in seen and not include_disabled:
            raise GraphError(f'{node.where}: node name {node.fqn} is also used by {seen[node.fqn]}')
        seen[node.fqn] = node.where
    return nodes


def normalize_namespace(namespace: str) -> str:
    return '/' + namespace.strip('/')


def parameter_text(value) -> str:
    """A parameter value as YAML text for ``-p name:=value`` (rcl parses it as YAML)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=1 << 30).strip()
    return text[:-len('...')].strip() if text.endswith('...') else text


# ----------------------------------------------------------------------------- executables

def executables() -> Dict[str, str]:
    """Console scripts of the installed ``aiat_perception`` distribution: name -> 'module:function'."""
    from importlib.metadata import PackageNotFoundError, distribution
    try:
        found = {ep.name: ep.value for ep in distribution(PACKAGE).entry_points
                 if ep.group == 'console_scripts'}
    except PackageNotFoundError:
        found = {}
    return {**FALLBACK_EXECUTABLES, **found}


def executable_target(executable: str) -> Tuple[str, str]:
    table = executables()
    if executable not in table:
        raise GraphError(f'executable {executable!r} is not a console script of {PACKAGE} '
                         f'(known: {", ".join(sorted(table))})')
    module, _, function = table[executable].partition(':')
    return module.strip(), (function.strip() or 'main')


def node_parameters(executable: str) -> ParameterTable:
    """The parameter table of a node executable."""
    executable_target(executable)
    if executable not in NODE_TABLES:
        raise GraphError(f'executable {executable!r} has no parameter table in aiat_perception.node_params')
    return table_for(executable)


# ----------------------------------------------------------------------------- parameter files

def read_params_file(path: Path) -> Dict[str, Dict[str, object]]:
    """``{node pattern: {dotted parameter name: value}}`` of a ROS 2 parameter file."""
    data = read_yaml(path, GraphError, what='parameter file')
    if not isinstance(data, dict):
        raise GraphError(f'{path}: a parameter file maps node names to {{ros__parameters: ...}}')
    sections = {}
    for key, value in data.items():
        sections.update(_params_sections(str(key), value, path))
    return sections


def _params_sections(key: str, value, path: Path) -> Dict[str, Dict[str, object]]:
    # A section is either {ros__parameters: {...}} or a namespace level holding more sections.
    if not isinstance(value, dict):
        raise GraphError(f'{path}: {key}: expected a mapping with ros__parameters')
    if 'ros__parameters' in value:
        params = value['ros__parameters'] or {}
        if not isinstance(params, dict):
            raise GraphError(f'{path}: {key}.ros__parameters: must be a mapping')
        return {key: flatten_parameters(params)}
    sections = {}
    for sub, inner in value.items():
        sections.update(_params_sections(f'{key.rstrip("/")}/{sub}', inner, path))
    return sections


def section_applies(pattern: str, fqn: str) -> bool:
    """Whether a parameter-file section key applies to the node ``fqn``, as rcl matches them: a key
    without a leading slash is absolute (``name`` = ``/name``, so it misses ``/ns/name``), ``*``
    matches within one name token and ``/**`` any number of namespace levels."""
    pattern = pattern if pattern.startswith('/') else '/' + pattern
    regex = ''
    i = 0
    while i < len(pattern):
        if pattern.startswith('/**', i):
            regex += '(/[^/]+)*'
            i += 3
        elif pattern[i] == '*':
            regex += '[^/]*'
            i += 1
        else:
            regex += re.escape(pattern[i])
            i += 1
    return re.fullmatch(regex, fqn) is not None


# ----------------------------------------------------------------------------- validation

@dataclass
class Report:
    errors: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)


def validate(graph: Graph, given: Optional[Dict[str, str]] = None, config: Optional[Path] = None) -> Report:
    """Check, without starting anything, that every node (conditions ignored) names an executable
    of the package, that its parameter files exist and have a section for the node, and that every
    parameter set by a file or inline is declared by the node."""
    report = Report()
    try:
        values = argument_values(graph, given)
        for spec in graph.nodes:
            condition_holds(spec, values)
        resolve(graph, given, config)  # node names unique among the enabled nodes
        nodes = resolve(graph, given, config, include_disabled=True)
    except GraphError as exc:
        report.errors.append(str(exc))
        return report
    for node in nodes:
        where = node.where
        try:
            table = node_parameters(node.executable)
        except GraphError as exc:
            report.errors.append(f'{where}: {exc}')
            continue
        set_by: Dict[str, str] = {}
        values: Dict[str, object] = {}
        shared = set()  # set only by sections meant for many nodes (wildcards)
        for path in node.params_files:
            try:
                sections = read_params_file(path)
            except GraphError as exc:
                report.errors.append(f'{where}: {exc}')
                continue
            applying = [key for key in sections if section_applies(key, node.fqn)]
            if not applying:
                report.errors.append(
                    f'{where}: parameter file {path} has no section for node {node.fqn} '
                    f'(sections: {", ".join(sections) or "none"}); its parameters would be ignored')
            for key in applying:
                for name, value in sections[key].items():
                    set_by[name] = f'{path} ({key})'
                    values[name] = value
                    (shared.add if '*' in key else shared.discard)(name)
        for name, value in node.parameters.items():
            set_by[name] = 'inline parameters'
            values[name] = value
            shared.discard(name)
        own = {}
        for name, source in sorted(set_by.items()):
            if name in table:
                problem = table[name].problem(values[name])
                if problem:
                    report.errors.append(f'{where}: parameter {name!r} (from {source}) {problem}')
                else:
                    own[name] = values[name]
            elif name in IMPLICIT_PARAMETERS or name.startswith('qos_overrides.'):
                continue
            elif name in shared:  # the other nodes the section is for may use it
                report.warnings.append(f'{where}: parameter {name!r} (from {source}) is not declared '
                                       f'by {node.executable}')
            else:
                report.errors.append(f'{where}: parameter {name!r} (from {source}) is not declared by '
                                     f'{node.executable} (declared: {", ".join(sorted(table.names))})')
        if len(own) == len(set_by.keys() & table.names):  # cross-field checks on valid values only
            report.errors += [f'{where}: {problem}' for problem in table.problems(own)]
    return report


def checked_nodes(graph: Graph, given: Optional[Dict[str, str]] = None, config: Optional[Path] = None,
                  check: bool = True) -> Tuple[List[ResolvedNode], List[str]]:
    """The nodes to start and the validation warnings; :class:`GraphError` listing every problem.
    Both runners (``aiat-launch`` and ``ros2 launch``) start graphs through this, so they refuse the
    same graphs, e.g. a parameter file with no section for a (namespaced) node, which ROS would
    silently ignore."""
    nodes = resolve(graph, given, config)
    warnings = []
    if check:
        report = validate(graph, given, config)
        if report.errors:
            raise GraphError('\n  '.join([f'invalid graph {graph.path}:'] + report.errors))
        warnings = report.warnings
    if not nodes:
        raise GraphError(f'{graph.path}: no node is enabled with these arguments')
    return nodes, warnings
