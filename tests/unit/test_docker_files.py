"""docker/: every Dockerfile passes hadolint; the compose file validates against the Compose
specification's JSON schema (not merely parsed). No Docker daemon here: images are never built.

The schema is the ``compose_spec.json`` shipped in the ``docker-compose`` 1.29.2 wheel on PyPI,
fetched once with pip into the cache (sha256-pinned), since installing that package would downgrade
jsonschema and PyYAML.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / 'docker'
DOCKERFILES = sorted(DOCKER.glob('*/Dockerfile'))
WHEEL = 'docker_compose-1.29.2-py2.py3-none-any.whl'
WHEEL_SHA256 = '8d5589373b35c8d3b1c8c1182c6e4a4ff14bffa3dd0b605fcd08f73c94cef809'
SCHEMA_MEMBER = 'compose/config/compose_spec.json'
SCHEMA_SHA256 = '0dc04bd346dcfee1b1419628fff79937bbf076925f298f272a2b490e2b112bac'


def _hadolint() -> str:
    local = Path(sys.executable).parent / 'hadolint'
    return str(local) if local.is_file() else shutil.which('hadolint')


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope='module')
def compose_schema():
    from aiat_perception.assets import cache_dir
    folder = cache_dir('compose-spec')
    schema_file = folder / 'compose_spec-docker-compose-1.29.2.json'
    if not schema_file.is_file() or _sha256(schema_file.read_bytes()) != SCHEMA_SHA256:
        wheel = folder / WHEEL
        if not wheel.is_file():
            subprocess.run([sys.executable, '-m', 'pip', 'download', '--no-deps', '--quiet',
                            '--disable-pip-version-check', 'docker-compose==1.29.2', '-d', str(folder)],
                           check=True, timeout=300)
        assert _sha256(wheel.read_bytes()) == WHEEL_SHA256, f'{wheel}: unexpected sha256'
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(SCHEMA_MEMBER)
        assert _sha256(data) == SCHEMA_SHA256
        schema_file.write_bytes(data)
    return json.loads(schema_file.read_text())


@pytest.fixture(scope='module')
def compose():
    return yaml.safe_load((DOCKER / 'compose.yaml').read_text())


def _validator(schema):
    from jsonschema import Draft201909Validator
    # the schema declares draft 2019-09 by a non-canonical URI ('http://.../draft/2019-09/schema#')
    assert '2019-09' in schema['$schema']
    Draft201909Validator.check_schema(schema)
    return Draft201909Validator(schema)


def test_the_three_images_exist():
    assert [p.parent.name for p in DOCKERFILES] == ['jetson', 'training', 'x86_64']


@pytest.mark.parametrize('dockerfile', DOCKERFILES, ids=lambda p: p.parent.name)
def test_hadolint_passes(dockerfile):
    result = subprocess.run([_hadolint(), '--config', str(DOCKER / '.hadolint.yaml'), '--no-color',
                             str(dockerfile)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_does_flag_problems(tmp_path):
    """The lint is live: a Dockerfile with known faults fails it."""
    bad = tmp_path / 'Dockerfile'
    bad.write_text('FROM ubuntu\nRUN apt-get install curl\nRUN cd /tmp && ls\n')
    result = subprocess.run([_hadolint(), '--config', str(DOCKER / '.hadolint.yaml'), '--no-color', str(bad)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    for rule in ('DL3006', 'DL3015', 'DL3003'):
        assert rule in result.stdout


def test_images_follow_the_documented_bases():
    text = {p.parent.name: p.read_text() for p in DOCKERFILES}
    assert 'nvcr.io/nvidia/l4t-jetpack:r36.' in text['jetson'] and 'ros-humble-ros-base' in text['jetson']
    assert 'ros:jazzy-ros-base' in text['x86_64'] and 'ARG GPU=none' in text['x86_64']
    assert 'requirements/training.txt' in text['training']
    for name in ('jetson', 'x86_64'):
        assert 'colcon build --packages-select aiat_perception' in text[name]
        assert 'rosdep install --from-paths src' in text[name]


def test_compose_file_validates_against_the_compose_schema(compose, compose_schema):
    errors = sorted(_validator(compose_schema).iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, '\n'.join(f'{list(e.path)}: {e.message}' for e in errors)


@pytest.mark.parametrize('mutate, where', [
    (lambda c: c['services']['camera'].update(netwrk_mode='host'), 'netwrk_mode'),
    (lambda c: c['services']['detector'].update(ipc=['host']), 'ipc'),
    (lambda c: c['services']['detector'].update(devices='/dev/video0'), 'devices'),
    (lambda c: c.update(volumes=['engine-cache']), 'volumes'),
])
def test_schema_rejects_broken_compose_files(compose, compose_schema, mutate, where):
    broken = copy.deepcopy(compose)
    mutate(broken)
    assert list(_validator(compose_schema).iter_errors(broken)), f'{where}: a broken file validated'


def test_compose_wires_the_vehicle_graph(compose):
    services = compose['services']
    assert {'camera', 'detector', 'detector-gpu', 'detector-jetson', 'engine-builder'} <= set(services)
    for name, service in services.items():
        assert service['network_mode'] == 'host' and service['ipc'] == 'host', name
    assert services['camera']['devices'][0].endswith(':/dev/video0')
    for name in ('detector', 'detector-gpu', 'detector-jetson', 'engine-builder'):
        targets = {v['target']: v for v in services[name]['volumes']}
        assert targets['/var/cache/aiat/engines']['source'] == 'engine-cache'
        assert targets['/models']['read_only'] is True
        assert services[name]['environment']['AIAT_ENGINE_CACHE'] == '/var/cache/aiat/engines'
    assert services['detector-gpu']['deploy']['resources']['reservations']['devices'][0]['capabilities'] == ['gpu']
    assert services['detector-jetson']['runtime'] == 'nvidia'
    assert 'engine-cache' in compose['volumes']
    assert services['engine-builder']['command'][:2] == ['aiat-engine', 'build']


def test_entrypoint_sources_ros_and_the_workspace():
    text = (DOCKER / 'entrypoint.sh').read_text()
    assert 'source "/opt/ros/${ROS_DISTRO}/setup.bash"' in text and 'exec "$@"' in text
    assert os.access(DOCKER / 'entrypoint.sh', os.X_OK)
