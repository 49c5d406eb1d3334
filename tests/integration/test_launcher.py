"""``aiat-launch`` starting real node graphs, and ``ros2 launch`` where launch_ros exists."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aiat_perception import launch_graph as lg
from tests.conftest import call_service, spin_until

ROOT = Path(__file__).resolve().parent.parent.parent


class Launcher:
    """``python -m aiat_perception.launcher ARGS`` with its output in a file."""

    def __init__(self, tmp_path: Path, *args: str):
        self.log_path = tmp_path / f'launch-{time.monotonic_ns()}.log'
        self.log = open(self.log_path, 'w')
        self.proc = subprocess.Popen([sys.executable, '-m', 'aiat_perception.launcher', *args],
                                     stdout=self.log, stderr=subprocess.STDOUT, cwd=str(ROOT))

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors='replace')

    def wait_for(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return True
            if self.proc.poll() is not None:
                return text in self.output()
            time.sleep(0.05)
        return False

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def node_pids(self) -> dict:
        return {name: int(pid) for name, pid in re.findall(r'started (\S+) \(pid (\d+)\)', self.output())}

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        for pid in self.node_pids().values():
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.log.close()


@pytest.fixture
def launch(tmp_path):
    started = []

    def start(*args):
        launcher = Launcher(tmp_path, *args)
        started.append(launcher)
        return launcher

    yield start
    for launcher in started:
        launcher.kill()


def write_graph(tmp_path: Path, text: str) -> str:
    path = tmp_path / 'graph.yaml'
    path.write_text(text)
    return str(path)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def live_parameters(node, fqn: str) -> dict:
    from rcl_interfaces.srv import GetParameters, ListParameters
    from rclpy.parameter import parameter_value_to_python

    names = list(call_service(node, ListParameters, f'{fqn}/list_parameters', ListParameters.Request()).result.names)
    values = call_service(node, GetParameters, f'{fqn}/get_parameters', GetParameters.Request(names=names)).values
    return {n: parameter_value_to_python(v) for n, v in zip(names, values)}


def test_graph_applies_params_files_arguments_remappings_and_names(tmp_path, launch, test_node):
    from sensor_msgs.msg import Image

    from aiat_perception.nodes.common import sensor_qos

    (tmp_path / 'pub.yaml').write_text(
        '/front/cam:\n  ros__parameters:\n    width: 64\n    height: 48\n    frame_id: from_file\n'
        '    encoding: bgr8\n    rate_hz: 1.0\n')
    graph = write_graph(tmp_path, f"""
arguments:
  topic: {{default: image, description: image topic}}
  rate: {{default: '1.0', description: publish rate}}
  with_monitor: {{default: 'false', description: also start the IoU monitor}}
nodes:
  - executable: image_publisher
    name: cam
    namespace: front
    params_files: ['{tmp_path / 'pub.yaml'}']
    parameters: {{rate_hz: $(arg rate)}}
    remappings: {{image: $(arg topic)}}
  - executable: detection_listener
    name: printer
    parameters: {{json: true}}
  - executable: iou_monitor
    condition: with_monitor
    params_files: [iou_monitor.yaml]
""")
    frames = []
    test_node.create_subscription(Image, '/launch_test/image', frames.append, sensor_qos('best_effort', 10))
    launcher = launch(graph, 'topic:=/launch_test/image', 'rate:=20', 'with_monitor:=true')
    assert launcher.wait_for('publishing', 30), launcher.output()
    assert spin_until(test_node, lambda: len(frames) >= 10, timeout=10), launcher.output()
    first = frames[0]
    assert (first.width, first.height, first.encoding, first.header.frame_id) == (64, 48, 'bgr8', 'from_file')
    # the inline override (an argument, typed by YAML: 20 -> 20.0 for the double parameter) beats the file
    started = time.monotonic()
    count = len(frames)
    spin_until(test_node, lambda: False, timeout=1.0)
    assert (len(frames) - count) / (time.monotonic() - started) > 10

    # every node runs under its graph name and declares exactly what the static reader finds
    cam = live_parameters(test_node, '/front/cam')
    assert cam['rate_hz'] == 20.0 and cam['frame_id'] == 'from_file' and cam['width'] == 64
    for fqn, executable in (('/front/cam', 'image_publisher'), ('/printer', 'detection_listener'),
                            ('/iou_monitor', 'iou_monitor')):
        live = set(live_parameters(test_node, fqn)) - lg.IMPLICIT_PARAMETERS
        assert live == lg.node_parameters(executable).names, fqn
    assert live_parameters(test_node, '/printer')['json'] is True
    assert live_parameters(test_node, '/iou_monitor')['warn_recall'] == 0.5  # from config/iou_monitor.yaml

    launcher.proc.send_signal(signal.SIGINT)
    assert launcher.wait(timeout=20) == 0, launcher.output()
    out = launcher.output()
    assert re.search(r'^\[front/cam\s*\] \[INFO\] .*publishing \d+ frame\(s\) 64x48 bgr8 at 20.0 Hz '
                     r'on /launch_test/image', out, re.M), out
    assert 'all nodes stopped (exit code 0)' in out


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM], ids=['SIGINT', 'SIGTERM'])
def test_signal_stops_every_node(tmp_path, launch, sig):
    graph = write_graph(tmp_path, 'nodes: [{executable: image_publisher}, {executable: detection_listener}]\n')
    launcher = launch(graph)
    assert launcher.wait_for('publishing', 30), launcher.output()
    pids = launcher.node_pids()
    assert set(pids) == {'image_publisher', 'detection_listener'} and not any(gone(p) for p in pids.values())
    launcher.proc.send_signal(sig)
    assert launcher.wait(timeout=20) == 0, launcher.output()
    assert all(gone(p) for p in pids.values()), launcher.output()
    assert 'stop requested' in launcher.output()


def test_duration_stops_the_graph(tmp_path, launch):
    graph = write_graph(tmp_path, 'nodes: [{executable: image_publisher}, {executable: detection_listener}]\n')
    started = time.monotonic()
    launcher = launch(graph, '--duration', '4')
    assert launcher.wait(timeout=30) == 0, launcher.output()
    assert 4 <= time.monotonic() - started < 20
    assert 'duration reached' in launcher.output() and all(gone(p) for p in launcher.node_pids().values())


def test_failing_node_stops_the_graph_with_its_exit_code(tmp_path, launch):
    graph = write_graph(tmp_path, """
nodes:
  - {executable: detection_listener}
  - {executable: image_publisher, parameters: {images: [/no/such/photo.png]}}
""")
    launcher = launch(graph, '--duration', '60')
    assert launcher.wait(timeout=40) == 2, launcher.output()
    out = launcher.output()
    assert 'cannot read image file /no/such/photo.png' in out
    assert 'image_publisher failed with exit code 2; stopping the graph' in out
    assert all(gone(p) for p in launcher.node_pids().values())


def test_invalid_graph_starts_nothing(tmp_path, launch):
    graph = write_graph(tmp_path, 'nodes: [{executable: image_publisher, parameters: {rate: 3.0, count: -1}}]\n')
    launcher = launch(graph)
    assert launcher.wait(timeout=20) == 2
    out = launcher.output()
    assert "parameter 'rate' (from inline parameters) is not declared by image_publisher" in out
    assert "parameter 'count' (from inline parameters) must be >= 0, got -1" in out
    assert 'started' not in out


def pretrained_bundle() -> Path:
    """The pretrained bundle (`python -m aiat_perception.prepare_data` builds it before the tests)."""
    from aiat_perception.cli.detect import ensure_default_bundle
    return ensure_default_bundle(quiet=True)


def test_demo_graph_prints_detections_of_a_real_photo(launch):
    from aiat_perception import assets

    pretrained_bundle()
    dog = assets.darknet_image('dog.jpg')
    launcher = launch('demo', f"images:=['{dog}']", 'rate_hz:=4', 'max_messages:=3', '--duration', '120')
    assert launcher.wait(timeout=150) == 0, launcher.output()
    out = launcher.output()
    lines = re.findall(r'^\[detection_listener\s*\] (.*)$', out, re.M)
    assert len(lines) == 3, out
    for line in lines:  # dog.jpg: bicycle, dog and truck (see FACTS)
        assert 'camera_optical_frame' in line and 'bicycle' in line and 'dog' in line, line
    assert 'detection_listener finished; it is required, stopping the graph' in out
    assert 'all nodes stopped (exit code 0)' in out


def test_ros2_launch_runs_the_same_demo_graph():
    pytest.importorskip('launch_ros', reason='launch_ros is not on PyPI; it comes with a ROS 2 distribution')
    if shutil.which('ros2') is None:
        pytest.skip('the ros2 command (ros2cli) is not installed')
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    try:
        get_package_share_directory('aiat_perception')
    except PackageNotFoundError:
        pytest.skip('aiat_perception is not installed in a ROS 2 workspace (colcon build; source install/setup.bash)')
    pretrained_bundle()
    result = subprocess.run(['ros2', 'launch', 'aiat_perception', 'demo.launch.py', 'max_messages:=3', 'rate_hz:=4'],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=180)
    assert result.returncode == 0, result.stdout
    assert len(re.findall(r'latency [\d.]+ ms: \d+ detection', result.stdout)) == 3, result.stdout


def test_launch_file_declares_the_graph_arguments():
    pytest.importorskip('launch_ros', reason='launch_ros is not on PyPI; it comes with a ROS 2 distribution')
    import importlib.util

    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    for path in sorted((ROOT / 'launch').glob('*.launch.py')):
        spec = importlib.util.spec_from_file_location(path.stem.replace('.', '_'), path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        description = module.generate_launch_description()
        declared = [e.name for e in description.entities if isinstance(e, DeclareLaunchArgument)]
        graph = lg.load_graph(lg.graph_path(module.GRAPH))
        assert declared == list(graph.arguments)
        assert any(isinstance(e, OpaqueFunction) for e in description.entities)
