"""How aiat-launch starts and stops node processes: a stop while a node is still importing is a clean
exit, and a node that ignores the stop prints its thread stacks before it is killed."""
from __future__ import annotations

import io
import subprocess
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

from aiat_perception import launcher
from aiat_perception.nodes import node_process

ROOT = Path(__file__).resolve().parent.parent.parent


def write_module(folder: Path, name: str, text: str) -> None:
    (folder / f'{name}.py').write_text(textwrap.dedent(text))


def run(tmp_path: Path, module: str) -> subprocess.CompletedProcess:
    env = {'PYTHONPATH': f'{tmp_path}:{ROOT}', 'PATH': '/usr/bin:/bin'}
    return subprocess.run(node_process.command(module), env=env, capture_output=True, text=True, timeout=60)


def test_a_stop_during_imports_ends_the_process_cleanly_before_main(tmp_path):
    # the module interrupts its own import, as a launcher's SIGINT reaches a node still loading rclpy
    write_module(tmp_path, 'interrupted_node', """
        import os, signal, time
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)
        import json  # the import goes on to the end
        def main():
            print('main ran')
            return 3
    """)
    done = run(tmp_path, 'interrupted_node')
    assert done.returncode == 0, done.stderr
    assert 'main ran' not in done.stdout
    assert 'stopped by SIGINT while starting' in done.stderr


def test_after_the_imports_a_stop_signal_only_asks_the_node_to_stop(tmp_path):
    # run_node's loop polls STOP; a second signal is the hard stop
    write_module(tmp_path, 'polling_node', """
        import os, signal
        from aiat_perception.nodes.node_process import STOP
        def main():
            os.kill(os.getpid(), signal.SIGTERM)
            print('asked', STOP.requested, STOP.name())
            try:
                os.kill(os.getpid(), signal.SIGINT)
            except KeyboardInterrupt:
                print('second signal interrupts')
            return 3
    """)
    done = run(tmp_path, 'polling_node')
    assert done.returncode == 3, done.stderr
    assert done.stdout.split('\n')[:2] == ['asked True SIGTERM', 'second signal interrupts']


def test_launcher_prints_the_stacks_of_a_node_that_does_not_stop_then_kills_it(tmp_path, monkeypatch):
    write_module(tmp_path, 'stuck_node', """
        import signal, time
        def wait_forever():
            while True:
                time.sleep(0.05)
        def main():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            print('ready', flush=True)
            wait_forever()
    """)
    monkeypatch.setenv('PYTHONPATH', f'{tmp_path}:{ROOT}')
    monkeypatch.setattr(launcher, 'node_command', lambda node: node_process.command('stuck_node'))
    out = io.StringIO()
    launch = launcher.Launch([SimpleNamespace(fqn='/stuck', required=False)], grace_s=1.0, out=out)
    launch.start()
    proc = launch.procs[0]
    deadline = time.monotonic() + 30
    while 'ready' not in out.getvalue() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert 'ready' in out.getvalue(), out.getvalue()
    launch.stop()
    text = out.getvalue()
    assert proc.returncode == -9 and launch.failure == 1
    assert 'stuck did not stop within 1 s' in text
    assert 'in wait_forever' in text and 'stuck_node.py' in text, text  # faulthandler's dump of the thread
