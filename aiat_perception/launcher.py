"""``aiat-launch``: start a node graph (``config/launch/*.yaml``) as processes, like ``ros2 launch``.

    aiat-launch camera_detector image_topic:=/camera/image_raw
    aiat-launch demo --duration 20
    aiat-launch config/launch/perception.yaml use_iou_monitor:=true
    aiat-launch demo --show-args | --print | --check

Each node runs as ``python -c "from aiat_perception.nodes.node_process import start; start('<module>', 'main')"
--ros-args -r __node:=NAME --params-file F -p k:=v``
with the same DDS settings as the nodes themselves; its output is prefixed with ``[NAME]``. Ctrl-C,
SIGTERM or the end of ``--duration`` stop every node (SIGINT; after ``--grace`` seconds SIGUSR1, which
prints the node's thread stacks, then SIGKILL).
A node that exits with an error stops the graph, and so does any exit of a node marked
``required``. The exit code is 0 when every node ended cleanly, else the first failure's code.
"""
from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from typing import List, Optional

from aiat_perception import launch_graph as lg
from aiat_perception.nodes import node_process

CLEAN_EXIT = (0, -signal.SIGINT, 128 + signal.SIGINT)


def node_command(node: lg.ResolvedNode, python: Optional[str] = None) -> List[str]:
    module, function = lg.executable_target(node.executable)
    return [*node_process.command(module, function, python), *node.ros_args()]


class Launch:
    """The running processes of one graph."""

    def __init__(self, nodes: List[lg.ResolvedNode], grace_s: float = 10.0, out=None):
        self.nodes = nodes
        self.grace_s = grace_s
        self.out = out or sys.stdout
        self.lock = threading.Lock()
        self.procs: List[subprocess.Popen] = []
        self.readers: List[threading.Thread] = []
        self.stopping = False
        self.failure: Optional[int] = None
        self.width = max(len(n.fqn.lstrip('/')) for n in nodes)

    def say(self, label: str, line: str) -> None:
        with self.lock:
            self.out.write(f'[{label.ljust(self.width)}] {line}\n')
            self.out.flush()

    def start(self) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED='1')
        for node in self.nodes:
            cmd = node_command(node)
            label = node.fqn.lstrip('/')
            # Own session: a terminal Ctrl-C reaches only the launcher, which then stops each node once.
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True)
            self.say('launch', f'started {label} (pid {proc.pid}): {shlex.join(cmd)}')
            self.procs.append(proc)
            reader = threading.Thread(target=self._pump, args=(proc, label), daemon=True)
            reader.start()
            self.readers.append(reader)

    def _pump(self, proc: subprocess.Popen, label: str) -> None:
        for raw in iter(proc.stdout.readline, b''):
            self.say(label, raw.decode(errors='replace').rstrip('\n'))
        proc.stdout.close()

    def watch(self, deadline: Optional[float], stop_requested: threading.Event) -> None:
        reported = set()
        while True:
            if stop_requested.is_set():
                self.say('launch', 'stop requested')
                break
            if deadline is not None and time.monotonic() >= deadline:
                self.say('launch', 'duration reached')
                break
            stop = False
            for node, proc in zip(self.nodes, self.procs):
                code = proc.poll()
                if code is None or proc.pid in reported:
                    continue
                reported.add(proc.pid)
                label = node.fqn.lstrip('/')
                if code != 0:
                    self.say('launch', f'{label} failed with exit code {code}; stopping the graph')
                    self.failure = self.failure or (code if code > 0 else 1)
                    stop = True
                else:
                    self.say('launch', f'{label} finished' + ('; it is required, stopping the graph'
                                                              if node.required else ''))
                    stop = stop or node.required
            if stop or len(reported) == len(self.procs):
                break
            stop_requested.wait(0.1)

    def stop(self) -> None:
        running = [(n, p) for n, p in zip(self.nodes, self.procs) if p.poll() is None]
        for _, proc in running:
            self._signal(proc, signal.SIGINT)
        deadline = time.monotonic() + self.grace_s
        for node, proc in running:
            try:
                code = proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say('launch', f'{node.fqn.lstrip("/")} did not stop within {self.grace_s:g} s; '
                                   "printing its threads' stacks (SIGUSR1), then killing it")
                self._signal(proc, signal.SIGUSR1)  # node_process: faulthandler prints every thread's stack
                try:
                    proc.wait(timeout=1.0)
                except subprocess.TimeoutExpired:
                    pass
                self._signal(proc, signal.SIGKILL)
                proc.wait()
                self.failure = self.failure or 1
                continue
            if code not in CLEAN_EXIT:
                self.say('launch', f'{node.fqn.lstrip("/")} exited with code {code} while stopping')
                self.failure = self.failure or (code if code > 0 else 1)
        for reader in self.readers:
            reader.join(timeout=2.0)

    @staticmethod
    def _signal(proc: subprocess.Popen, sig: int) -> None:
        try:
            os.killpg(proc.pid, sig)  # the node and anything it started
        except ProcessLookupError:
            pass


def run(nodes: List[lg.ResolvedNode], duration: Optional[float] = None, grace_s: float = 10.0) -> int:
    from aiat_perception.nodes.common import configure_dds

    configure_dds()  # the children inherit the same RMW and Fast DDS profile as standalone nodes
    stop_requested = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop_requested.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    launch = Launch(nodes, grace_s)
    try:
        launch.start()
        launch.watch(time.monotonic() + duration if duration else None, stop_requested)
    finally:
        launch.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    code = launch.failure or 0
    launch.say('launch', f'all nodes stopped (exit code {code})')
    return code


def describe_arguments(graph: lg.Graph) -> str:
    lines = [f'Arguments of {graph.path} ({graph.description.strip()}):' if graph.description
             else f'Arguments of {graph.path}:']
    for arg in graph.arguments.values():
        default = 'required' if arg.default is None else f'default: {arg.default!r}'
        choices = f', one of {arg.choices}' if arg.choices else ''
        lines.append(f"    '{arg.name}': {arg.description} ({default}{choices})")
    return '\n'.join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog='aiat-launch', description=__doc__.replace('``', ''),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f'Graphs in {lg.config_dir() / "launch"}: {", ".join(lg.available_graphs()) or "none"}')
    parser.add_argument('graph', help='graph name (e.g. camera_detector) or path to a graph YAML file')
    parser.add_argument('arguments', nargs='*', metavar='name:=value', help='launch arguments')
    parser.add_argument('--duration', type=float, default=None, help='stop all nodes after this many seconds')
    parser.add_argument('--grace', type=float, default=10.0,
                        help='seconds between SIGINT and SIGKILL when stopping (default 10)')
    parser.add_argument('--show-args', '-s', action='store_true', help='list the launch arguments and exit')
    parser.add_argument('--print', dest='print_only', action='store_true',
                        help='print the node commands and exit')
    parser.add_argument('--no-check', action='store_true',
                        help='start without validating parameter files and parameter names first')
    parser.add_argument('--check', action='store_true',
                        help='validate the graph (executables, parameter files, parameter names) and exit')
    args = parser.parse_intermixed_args(argv)
    try:
        graph = lg.load_graph(lg.graph_path(args.graph))
        given = lg.parse_argument_assignments(args.arguments)
        if args.show_args:
            print(describe_arguments(graph))
            return 0
        if args.check:
            report = lg.validate(graph, given)
            for warning in report.warnings:
                print(f'warning: {warning}')
            for error in report.errors:
                print(f'error: {error}', file=sys.stderr)
            print(f'{graph.path}: {"OK" if not report.errors else f"{len(report.errors)} error(s)"}')
            return 1 if report.errors else 0
        nodes, warnings = lg.checked_nodes(graph, given, check=not args.no_check)
        for warning in warnings:
            print(f'aiat-launch: warning: {warning}', file=sys.stderr)
        if args.print_only:
            for node in nodes:
                print(shlex.join(node_command(node)))
            return 0
    except lg.GraphError as exc:
        print(f'aiat-launch: {exc}', file=sys.stderr)
        return 2
    return run(nodes, args.duration, args.grace)


if __name__ == '__main__':
    sys.exit(main())
