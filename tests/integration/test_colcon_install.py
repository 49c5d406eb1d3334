"""The install a robot uses: ``colcon build`` of a clean copy of the tree into a temporary prefix, then
the installed package is used with the source tree out of reach (not importable, not the cwd).

colcon-core and colcon-ros come from PyPI (requirements/test.txt); ``ros2 launch`` itself does not
(launch_ros is not on PyPI), so the installed ``aiat-launch`` runs the lockstep episode.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
COLCON = Path(sys.executable).parent / 'colcon'
NODES = {  # executable -> a start value its parameter table refuses (the node stops with exit code 2)
    'image_publisher': 'rate_hz:=0.0', 'detection_listener': 'save_every:=0', 'iou_monitor': 'window:=0',
    'sim': 'mode:=turbo', 'camera_detector': 'num_threads:=-1'}

pytestmark = pytest.mark.slow  # colcon comes with requirements/test.txt: a missing one fails, never skips


@pytest.fixture(scope='module')
def install(tmp_path_factory):
    """(install prefix, environment that reaches only the install) after a colcon build."""
    work = tmp_path_factory.mktemp('colcon')
    src = work / 'src' / 'aiat_perception'
    listed = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], cwd=ROOT,
                            capture_output=True)
    if listed.returncode == 0:  # the files git knows (no venvs, caches or build output)
        for name in filter(None, listed.stdout.decode().split('\0')):
            if (ROOT / name).is_file():  # deleted but not yet committed files are listed too
                (src / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, src / name)
    else:  # not a git checkout (e.g. an unpacked archive)
        shutil.copytree(ROOT, src, symlinks=True, ignore=shutil.ignore_patterns(
            '.venv*', '.git', '__pycache__', 'build', 'install', 'log', '*.egg-info', 'out'))
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'AMENT_PREFIX_PATH')}
    build = subprocess.run([str(COLCON), '--log-base', 'log', 'build', '--base-paths', 'src', '--build-base',
                            'build', '--install-base', 'install', '--merge-install'],
                           cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    shutil.rmtree(src)  # the clean copy is gone, too
    prefix = work / 'install'
    site = prefix / 'lib' / f'python{sys.version_info[0]}.{sys.version_info[1]}' / 'site-packages'
    # The development venv holds an editable install of the source tree: drop its import hook.
    guard = work / 'guard'
    guard.mkdir()
    (guard / 'sitecustomize.py').write_text(
        "import sys\nsys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in getattr(f, '__module__', '')]\n")
    env['PYTHONPATH'] = f'{guard}{os.pathsep}{site}'
    run_dir = work / 'run'
    run_dir.mkdir()
    return prefix, env, run_dir


def test_share_directory_holds_every_data_file(install):
    prefix, _, _ = install
    share = prefix / 'share' / 'aiat_perception'
    expected = ([ROOT / 'package.xml'] + sorted((ROOT / 'launch').glob('*.launch.py'))
                + sorted((ROOT / 'config').rglob('*.yaml')))
    missing = [str(p.relative_to(ROOT)) for p in expected if not (share / p.relative_to(ROOT)).is_file()]
    assert not missing, f'not installed: {missing}'
    assert (prefix / 'share' / 'ament_index' / 'resource_index' / 'packages' / 'aiat_perception').is_file()


def test_installed_package_is_the_one_imported(install):
    prefix, env, run_dir = install
    out = subprocess.run([sys.executable, '-c', 'import sys, aiat_perception; print(aiat_perception.__file__); '
                          'print(*sys.path, sep="\\n"); print(*(getattr(f, "__module__", "") for f in sys.meta_path))'],
                         cwd=run_dir, env=env, capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert lines[0].startswith(str(prefix)), out
    # the venv may live in the tree (.venv); the tree itself and its packages are not on the path
    assert not any(line and (Path(line) == ROOT or Path(line).is_dir() and (Path(line) / 'aiat_perception' / 'nodes').is_dir()
                   and not line.startswith(str(prefix))) for line in lines[1:-1]), out
    assert 'editable' not in lines[-1], out


def test_installed_executables_start(install):
    prefix, env, run_dir = install
    bin_dir = prefix / 'lib' / 'aiat_perception'
    procs = {name: subprocess.Popen([str(bin_dir / name), '--ros-args', '-p', bad], cwd=run_dir, env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for name, bad in NODES.items()}
    for name, proc in procs.items():
        try:
            out, _ = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f'{name} did not stop within 120 s: {proc.communicate()[0]}')
        parameter = NODES[name].split(':=')[0]
        assert proc.returncode == 2 and 'invalid parameters' in out and parameter in out, f'{name}: {out}'
    check = subprocess.run([str(bin_dir / 'aiat-launch'), 'sim_demo', '--check'], cwd=run_dir, env=env,
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0 and 'OK' in check.stdout, check.stdout + check.stderr


def test_installed_aiat_launch_runs_a_lockstep_episode(install):
    from aiat_perception.cli.detect import ensure_default_bundle
    ensure_default_bundle(quiet=True)  # the detector's pretrained bundle lives in the user cache
    prefix, env, run_dir = install
    cmd = [str(prefix / 'lib' / 'aiat_perception' / 'aiat-launch'), 'sim_demo', 'mode:=lockstep',
           'max_frames:=3', "save_dir:=''", '--duration', '150']
    proc = subprocess.Popen(cmd, cwd=run_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    share = prefix / 'share' / 'aiat_perception'
    assert proc.returncode == 0, out
    assert f'from {share}/config/scenarios/photo_actors.yaml, mode lockstep' in out, out
    assert 'published 3 frames (0 timeouts), done' in out and 'all nodes stopped (exit code 0)' in out, out
    assert not list(run_dir.iterdir()), 'save_dir:=\'\' must mean no folder'
