"""Node graphs (config/launch/*.yaml) and the launch files, checked without ROS or launch_ros."""
from __future__ import annotations

import ast
import importlib.util
import re
import textwrap
from pathlib import Path

import pytest

from aiat_perception import launch_graph as lg

ROOT = Path(__file__).resolve().parent.parent.parent
CONFIG = ROOT / 'config'
GRAPHS = sorted((CONFIG / 'launch').glob('*.yaml'))
LAUNCH_FILES = sorted((ROOT / 'launch').glob('*.launch.py'))


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def config(tmp_path):
    """A config dir with one parameter file for image_publisher (a node that exists everywhere)."""
    write(tmp_path / 'config' / 'pub.yaml', """
        image_publisher:
          ros__parameters:
            rate_hz: 3.0
            frame_id: cam
        """)
    return tmp_path / 'config'


def graph_file(config: Path, text: str) -> Path:
    return write(config / 'launch' / 'g.yaml', text)


def errors_of(config: Path, text: str, given=None) -> str:
    graph = lg.load_graph(graph_file(config, text))
    report = lg.validate(graph, given, config)
    return '\n'.join(report.errors)


# ----------------------------------------------------------------------------- the shipped graphs

@pytest.mark.parametrize('path', GRAPHS, ids=[p.stem for p in GRAPHS])
def test_shipped_graph_is_valid(path):
    graph = lg.load_graph(path)
    report = lg.validate(graph, config=CONFIG)
    assert report.errors == [] and report.warnings == []
    assert lg.resolve(graph, config=CONFIG), 'no node enabled with the default arguments'
    for arg in graph.arguments.values():
        assert arg.description, f'{path}: argument {arg.name} has no description'


def test_expected_graphs_exist():
    assert {'camera_detector', 'perception', 'demo'} <= {p.stem for p in GRAPHS}


def test_every_node_executable_is_a_console_script_with_its_module():
    setup_py = (ROOT / 'setup.py').read_text()
    scripts = dict(re.findall(r"'([\w-]+) = ([\w.]+:\w+)'", setup_py))
    for name, target in lg.FALLBACK_EXECUTABLES.items():
        assert scripts.get(name) == target, f'FALLBACK_EXECUTABLES[{name!r}] differs from setup.py'
    assert set(lg.NODE_TABLES) == set(lg.FALLBACK_EXECUTABLES), 'every node executable has a parameter table'
    for path in GRAPHS:
        for spec in lg.load_graph(path).nodes:
            module, function = lg.executable_target(spec.executable)
            assert importlib.util.find_spec(module) is not None, f'{path}: {module} missing'
            assert lg.node_parameters(spec.executable).names, f'{path}: {spec.executable} has no table'


def test_graph_files_are_installed_with_the_package():
    # `ros2 launch` reads the graphs from share/aiat_perception/config/launch.
    setup_py = (ROOT / 'setup.py').read_text()
    assert 'config/launch' in setup_py, "setup.py data_files must install config/launch/*.yaml"


# ----------------------------------------------------------------------------- the launch files

@pytest.mark.parametrize('path', LAUNCH_FILES, ids=[p.name for p in LAUNCH_FILES])
def test_launch_file_builds_its_graph(path):
    tree = ast.parse(path.read_text(), str(path))
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert 'generate_launch_description' in functions
    graph = next(ast.literal_eval(n.value) for n in tree.body
                 if isinstance(n, ast.Assign) and [t.id for t in n.targets] == ['GRAPH'])
    assert path.name == f'{graph}.launch.py'
    assert (CONFIG / 'launch' / f'{graph}.yaml').is_file()
    calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert 'graph_launch_description' in calls


def test_every_graph_has_a_launch_file():
    assert {p.stem for p in GRAPHS} == {p.name[:-len('.launch.py')] for p in LAUNCH_FILES}


def test_launch_ros_bridge_imports_without_launch_ros():
    import aiat_perception.launch_ros_actions as bridge
    tree = ast.parse(Path(bridge.__file__).read_text())
    top_level = {alias.name.split('.')[0] for n in tree.body if isinstance(n, ast.Import) for alias in n.names}
    top_level |= {n.module.split('.')[0] for n in tree.body if isinstance(n, ast.ImportFrom) and n.module}
    assert not top_level & {'launch', 'launch_ros', 'rclpy', 'ament_index_python'}
    from aiat_perception.share import config_dir
    assert config_dir() == CONFIG  # the source tree's, when run from one


# ----------------------------------------------------------------------------- resolution

def test_arguments_parameters_and_remappings_resolve(config):
    graph = lg.load_graph(graph_file(config, """
        arguments:
          rate: {default: '7', description: r}
          topic: {default: camera/image, description: t}
          frame: {default: '', description: f}
          ns: {default: front, description: n}
          extra: {default: '', description: e}
        nodes:
          - executable: image_publisher
            name: pub
            namespace: $(arg ns)
            params_files: [pub.yaml, '$(arg extra)']
            parameters: {rate_hz: $(arg rate), frame_id: $(arg frame), video: '/videos/$(arg ns).avi',
                         images: ['a.jpg', '$(arg ns).jpg']}
            remappings: {image: $(arg topic)}
        """))
    (node,) = lg.resolve(graph, {'topic': '/cam/raw'}, config)
    assert node.params_files == [config / 'pub.yaml']
    # a whole-value argument takes its YAML type (7 becomes 7.0 for the double parameter rate_hz);
    # an empty one is left to the parameter file
    assert node.parameters == {'rate_hz': 7.0, 'video': '/videos/front.avi', 'images': ['a.jpg', 'front.jpg']}
    assert isinstance(node.parameters['rate_hz'], float)
    assert node.fqn == '/front/pub'
    assert node.ros_args() == [
        '--ros-args', '-r', '__node:=pub', '-r', '__ns:=/front', '--params-file', str(config / 'pub.yaml'),
        '-p', 'rate_hz:=7.0', '-p', 'video:=/videos/front.avi', '-p', "images:=[a.jpg, front.jpg]",
        '-r', 'image:=/cam/raw']
    (node,) = lg.resolve(graph, {'rate': '2.5', 'frame': 'true'}, config)
    assert node.parameters['rate_hz'] == 2.5 and node.parameters['frame_id'] is True


def test_parameter_text_is_yaml_that_keeps_types():
    assert lg.parameter_text(True) == 'true'
    assert lg.parameter_text(3) == '3' and lg.parameter_text(0.5) == '0.5'
    assert lg.parameter_text('true') == "'true'" and lg.parameter_text('1.0') == "'1.0'"
    assert lg.parameter_text('') == "''" and lg.parameter_text('a b') == 'a b'
    assert lg.parameter_text(['']) == "['']" and lg.parameter_text([1, 2]) == '[1, 2]'


def test_params_file_is_looked_up_in_config_dir_then_cwd(config, tmp_path, monkeypatch):
    write(tmp_path / 'work' / 'mine.yaml', '/**:\n  ros__parameters: {rate_hz: 1.0}\n')
    monkeypatch.chdir(tmp_path / 'work')
    graph = lg.load_graph(graph_file(config, """
        arguments: {p: {default: pub.yaml, description: p}}
        nodes: [{executable: image_publisher, params_files: ['$(arg p)']}]
        """))
    assert lg.resolve(graph, config=config)[0].params_files == [config / 'pub.yaml']
    assert lg.resolve(graph, {'p': 'mine.yaml'}, config)[0].params_files == [tmp_path / 'work' / 'mine.yaml']
    with pytest.raises(lg.GraphError, match=r"g.yaml: nodes\[0\] \(image_publisher\).params_files\[0\]: "
                                            r"parameter file 'nope.yaml' not found"):
        lg.resolve(graph, {'p': 'nope.yaml'}, config)


def test_conditions(config):
    graph = lg.load_graph(graph_file(config, """
        arguments:
          use_listener: {default: 'false', description: u}
        nodes:
          - {executable: image_publisher, condition: not use_listener}
          - {executable: detection_listener, condition: use_listener}
        """))
    assert [n.name for n in lg.resolve(graph, config=config)] == ['image_publisher']
    assert [n.name for n in lg.resolve(graph, {'use_listener': 'True'}, config)] == ['detection_listener']
    assert [n.name for n in lg.resolve(graph, {'use_listener': '1'}, config)] == ['detection_listener']
    with pytest.raises(lg.GraphError, match=r'nodes\[0\].*condition: launch argument use_listener: '
                                            r"expected true or false, got 'yes'"):
        lg.resolve(graph, {'use_listener': 'yes'}, config)


def test_launch_argument_errors(config):
    graph = lg.load_graph(graph_file(config, """
        arguments:
          needed: {description: no default}
          mode: {default: a, choices: [a, b], description: m}
        nodes: [{executable: image_publisher}]
        """))
    with pytest.raises(lg.GraphError, match="launch argument 'needed' is required"):
        lg.resolve(graph, {}, config)
    with pytest.raises(lg.GraphError, match=r"unknown launch argument\(s\) typo \(declared: needed, mode\)"):
        lg.resolve(graph, {'needed': 'x', 'typo': '1'}, config)
    with pytest.raises(lg.GraphError, match=r"mode:='c' is not one of \['a', 'b'\]"):
        lg.resolve(graph, {'needed': 'x', 'mode': 'c'}, config)
    assert lg.parse_argument_assignments(['a:=1', 'b:=x:=y', 'c:=']) == {'a': '1', 'b': 'x:=y', 'c': ''}
    with pytest.raises(lg.GraphError, match="'a=1': expected name:=value"):
        lg.parse_argument_assignments(['a=1'])


def test_graph_names_and_paths(config):
    graph_file(config, 'nodes: [{executable: image_publisher}]\n')
    assert lg.graph_path('g', config) == config / 'launch' / 'g.yaml'
    assert lg.graph_path(str(config / 'launch' / 'g.yaml')) == config / 'launch' / 'g.yaml'
    with pytest.raises(lg.GraphError, match=r"no graph named 'h' .*\(available: g\)"):
        lg.graph_path('h', config)
    assert lg.graph_path('demo') == CONFIG / 'launch' / 'demo.yaml'


# ----------------------------------------------------------------------------- malformed graphs

@pytest.mark.parametrize('text, message', [
    ('nodes: []', r'g.yaml: nodes: must be a non-empty list'),
    ('nodes: [{executable: image_publisher, param: {}}]',
     r'g.yaml: nodes\[0\]: unknown key\(s\) param \(allowed: '),
    ('nodes: [{name: x}]', r'g.yaml: nodes\[0\].executable: required'),
    ('nodes: [{executable: image_publisher, remappings: [a, b]}]',
     r'nodes\[0\] \(image_publisher\).remappings: must be a mapping'),
    ('nodes: [{executable: image_publisher, parameters: {rate_hz: $(arg rate)}}]',
     r'nodes\[0\] \(image_publisher\).parameters.rate_hz: \$\(arg rate\) is not a declared argument'),
    ('nodes: [{executable: image_publisher, params_files: [$(find pkg)/x.yaml]}]',
     r"params_files\[0\]: unknown substitution '\$\(find pkg\)'"),
    ('nodes: [{executable: image_publisher, condition: use_it}]',
     r"condition: must be ARGUMENT or \"not ARGUMENT\" with a declared argument \(none declared\), not 'use_it'"),
    ('arguments: {a: {default: x, help: y}}\nnodes: [{executable: image_publisher}]',
     r'g.yaml: arguments.a: unknown key\(s\) help'),
    ('nodes: [{executable: image_publisher, required: yes please}]', r'required: must be true or false'),
    ('nodes: {executable: image_publisher}', r'g.yaml: nodes: must be a non-empty list'),
    (': [', r'g.yaml: not valid YAML'),
])
def test_malformed_graph_is_rejected_naming_file_and_key(config, text, message):
    with pytest.raises(lg.GraphError, match=message):
        lg.load_graph(graph_file(config, text + '\n'))


def test_validation_finds_what_ros_would_silently_ignore(config):
    write(config / 'other.yaml', 'someone_else:\n  ros__parameters: {rate_hz: 1.0}\n')
    write(config / 'typo.yaml', 'image_publisher:\n  ros__parameters: {rate_hz: 1.0, rate: 2.0}\n')
    write(config / 'shared.yaml', '/**:\n  ros__parameters: {use_sim_time: true, other_nodes_param: 1}\n')
    write(config / 'types.yaml', 'image_publisher:\n  ros__parameters: {rate_hz: 20, width: wide, images: [1]}\n')
    assert errors_of(config, 'nodes: [{executable: image_publisher, params_files: [pub.yaml]}]') == ''
    # renamed node: the file's section no longer applies
    assert 'parameter file ' + str(config / 'pub.yaml') + ' has no section for node /cam' in errors_of(
        config, 'nodes: [{executable: image_publisher, name: cam, params_files: [pub.yaml]}]')
    assert 'has no section for node /ns/image_publisher' in errors_of(
        config, 'nodes: [{executable: image_publisher, namespace: ns, params_files: [pub.yaml]}]')
    assert 'no section for node /image_publisher (sections: someone_else)' in errors_of(
        config, 'nodes: [{executable: image_publisher, params_files: [other.yaml]}]')
    # misspelt parameter names, from a file and inline
    found = errors_of(config, """
        nodes: [{executable: image_publisher, params_files: [typo.yaml], parameters: {fps: 2}}]""")
    typo = config / 'typo.yaml'
    assert f"parameter 'rate' (from {typo} (image_publisher)) is not declared by image_publisher" in found
    assert "parameter 'fps' (from inline parameters) is not declared by image_publisher" in found
    # a section for every node may hold other nodes' parameters: a warning only
    report = lg.validate(lg.load_graph(graph_file(
        config, 'nodes: [{executable: image_publisher, params_files: [shared.yaml]}]')), config=config)
    assert report.errors == [] and len(report.warnings) == 1 and 'other_nodes_param' in report.warnings[0]
    # values rclpy would refuse at start
    found = errors_of(config, 'nodes: [{executable: image_publisher, params_files: [types.yaml], '
                              'parameters: {count: "3"}}]')
    assert "parameter 'rate_hz' (from " + str(config / 'types.yaml') + " (image_publisher)) is 20 (integer) " \
           "but the node declares a double (default 5.0)" in found
    assert "parameter 'width' (from " in found and "is 'wide' (string) but the node declares an integer" in found
    assert "'images' (from " in found and "(integer array) but the node declares a string array" in found
    assert "parameter 'count' (from inline parameters) is '3' (string)" in found
    assert "nodes[0] (nonexistent): executable 'nonexistent' is not a console script" in errors_of(
        config, 'nodes: [{executable: nonexistent}]')
    assert 'is also used by' in errors_of(
        config, 'nodes: [{executable: image_publisher}, {executable: detection_listener, name: image_publisher}]')
    # disabled nodes are validated too, with the condition's argument checked
    assert "fps" in errors_of(config, """
        arguments: {enabled: {default: 'false', description: x}}
        nodes: [{executable: image_publisher, condition: enabled, parameters: {fps: 1}}]""")
    assert "expected true or false, got 'maybe'" in errors_of(config, """
        arguments: {enabled: {default: maybe, description: x}}
        nodes: [{executable: image_publisher, condition: enabled}]""")


@pytest.mark.parametrize('key, fqn, applies', [
    ('/**', '/a/b', True), ('/**', '/b', True), ('b', '/b', True), ('/b', '/b', True),
    ('b', '/ns/b', False), ('/ns/b', '/ns/b', True), ('/**/b', '/x/y/b', True), ('/**/b', '/b', True),
    ('/ns/*', '/ns/b', True), ('/ns/*', '/ns/x/b', False), ('/c*', '/cam', True), ('c', '/cam', False),
])
def test_params_file_section_matching(key, fqn, applies):
    assert lg.section_applies(key, fqn) is applies


def test_params_file_reading(tmp_path):
    path = write(tmp_path / 'p.yaml', """
        /front:
          cam:
            ros__parameters:
              a: 1
              nested: {b: 2, c: {d: 3}}
        /**:
          ros__parameters: {e: x}
        """)
    assert lg.read_params_file(path) == {'/front/cam': {'a': 1, 'nested.b': 2, 'nested.c.d': 3},
                                         '/**': {'e': 'x'}}
    with pytest.raises(lg.GraphError, match=r'p.yaml: /\*\*: expected a mapping with ros__parameters'):
        lg.read_params_file(write(tmp_path / 'p.yaml', '/**: 3\n'))


# ----------------------------------------------------------------------------- declared parameters

@pytest.mark.parametrize('executable, config_file', [
    ('camera_detector', 'camera_detector.yaml'), ('sim', 'sim.yaml'), ('iou_monitor', 'iou_monitor.yaml'),
    ('lidar_detector', 'lidar_detector.yaml'), ('scan_detector', 'scan_detector.yaml'),
    ('fusion', 'fusion.yaml')])
def test_node_table_is_what_its_parameter_file_documents(executable, config_file):
    table = lg.node_parameters(executable)
    (params,) = lg.read_params_file(CONFIG / config_file).values()
    assert params == table.defaults


# ----------------------------------------------------------------------------- both runners alike

def test_quoted_empty_argument_means_empty(config):
    """`ros2 launch` cannot pass a bare `name:=`, so `name:=''` (or "") is empty in both runners."""
    graph = lg.load_graph(graph_file(config, """
        arguments:
          extra: {default: pub.yaml, description: an extra parameter file}
          frame: {default: cam, description: frame id}
        nodes: [{executable: image_publisher, params_files: ['$(arg extra)'], parameters: {frame_id: '$(arg frame)'}}]
        """))
    (node,) = lg.resolve(graph, {'extra': "''", 'frame': '""'}, config)
    assert node.params_files == [] and node.parameters == {}
    assert lg.parse_argument_assignments(["extra:=''"]) == {'extra': "''"}  # read as empty when resolved


def test_both_runners_refuse_a_params_file_that_misses_the_namespaced_node(config):
    graph = lg.load_graph(graph_file(config, """
        arguments: {namespace: {default: '', description: namespace}}
        nodes: [{executable: image_publisher, namespace: '$(arg namespace)', params_files: [pub.yaml]}]
        """))
    nodes, warnings = lg.checked_nodes(graph, {}, config)
    assert [n.fqn for n in nodes] == ['/image_publisher'] and warnings == []
    with pytest.raises(lg.GraphError, match='has no section for node /front/image_publisher'):
        lg.checked_nodes(graph, {'namespace': 'front'}, config)
    (node,), _ = lg.checked_nodes(graph, {'namespace': 'front'}, config, check=False)  # --no-check
    assert node.fqn == '/front/image_publisher'
    # the ros2 launch bridge starts nodes only through checked_nodes, as aiat-launch does
    import aiat_perception.launch_ros_actions as bridge
    import aiat_perception.launcher as launcher
    for module in (bridge, launcher):
        calls = {n.func.attr for n in ast.walk(ast.parse(Path(module.__file__).read_text()))
                 if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and
                 isinstance(n.func.value, ast.Name) and n.func.value.id == 'lg'}
        assert 'checked_nodes' in calls and 'resolve' not in calls, module.__name__


def test_validation_checks_ranges_and_cross_field_rules_of_the_tables(config):
    write(config / 'bad.yaml', """
        image_publisher:
          ros__parameters: {rate_hz: 0.0, width: 64}
        """)
    found = errors_of(config, 'nodes: [{executable: image_publisher, params_files: [bad.yaml]}]')
    assert "parameter 'rate_hz' (from " in found and 'must be > 0, got 0.0' in found
    found = errors_of(config, 'nodes: [{executable: image_publisher, parameters: {width: 64}}]')
    assert 'width, height: give both or neither, got 64x0' in found
