"""The repository is a well-formed ament_python package, and the runtime stays free of training code."""
from __future__ import annotations

import ast
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def test_package_xml_declares_the_vehicle_runtime_only():
    root = ET.parse(ROOT / 'package.xml').getroot()
    assert root.get('format') == '3' and root.findtext('name') == 'aiat_perception'
    deps = {e.text for e in root if e.tag.endswith('depend')}
    for needed in ('rclpy', 'sensor_msgs', 'vision_msgs', 'diagnostic_msgs', 'geometry_msgs',
                   'std_msgs', 'visualization_msgs', 'launch_ros', 'python3-numpy', 'python3-opencv'):
        assert needed in deps, needed
    assert 'launch_testing_ros' in {e.text for e in root.findall('test_depend')}
    assert not {d for d in deps if re.search(r'torch|albumentations|pybullet', d or '')}
    assert root.find('export/build_type').text == 'ament_python'


def test_setup_installs_marker_launch_and_config():
    source = (ROOT / 'setup.py').read_text()
    assert (ROOT / 'resource' / 'aiat_perception').is_file()
    for needed in ("'resource/{PACKAGE}'", "'package.xml'", "glob('launch/*.launch.py')",
                   "glob('config/*.yaml')", "glob('config/launch/*.yaml')"):
        assert needed in source, needed
    assert list((ROOT / 'launch').glob('*.launch.py')) and list((ROOT / 'config').glob('*.yaml'))


def test_console_scripts_point_at_existing_functions():
    tree = ast.parse((ROOT / 'setup.py').read_text())
    scripts = [node.value for node in ast.walk(tree)
               if isinstance(node, ast.Constant) and isinstance(node.value, str) and ' = ' in node.value
               and ':' in node.value]
    assert len(scripts) >= 8
    for script in scripts:
        name, target = [s.strip() for s in script.split('=')]
        module, func = target.split(':')
        path = ROOT / (module.replace('.', '/') + '.py')
        assert path.is_file(), f'{name}: {path} missing'
        functions = {n.name for n in ast.parse(path.read_text()).body if isinstance(n, ast.FunctionDef)}
        assert func in functions, f'{name}: {module} has no {func}()'


def imported_modules(path: Path):
    """(module, is_top_level) for every import in a file."""
    tree = ast.parse(path.read_text())
    top = set(map(id, tree.body))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, id(node) in top
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, id(node) in top


def test_runtime_never_imports_training_and_torch_only_lazily():
    problems = []
    for path in sorted((ROOT / 'aiat_perception').rglob('*.py')):
        for module, top_level in imported_modules(path):
            if module.split('.')[0] == 'aiat_training':
                problems.append(f'{path.relative_to(ROOT)} imports {module}')
            if module.split('.')[0] in ('torch', 'torchvision') and top_level:
                problems.append(f'{path.relative_to(ROOT)} imports {module} at module level')
    assert not problems, problems


def test_runtime_core_imports_without_torch():
    import subprocess
    code = ('import sys; import aiat_perception.msg_conversions, aiat_perception.pipeline_health, '
            'aiat_perception.inference.detector, aiat_perception.inference.decode; '
            'bad = [m for m in sys.modules if m.split(".")[0] in ("torch", "aiat_training")]; '
            'assert not bad, bad')
    subprocess.run([sys.executable, '-c', code], check=True, cwd=ROOT)


def test_pip_only_interfaces_are_hidden_from_colcon():
    assert (ROOT / 'ros2_ws' / 'pip_only' / 'COLCON_IGNORE').is_file()
    for package in ('vision_msgs', 'tf2_msgs'):
        assert (ROOT / 'ros2_ws' / 'pip_only' / package / 'package.xml').is_file()
