"""Signals and crash reports for a node process, and how ``aiat-launch`` starts one:
``python -c "from aiat_perception.nodes.node_process import start; start('aiat_perception.nodes.fusion', 'main')"``.

A node stops in order: the first SIGINT or SIGTERM only sets :data:`STOP`; :func:`~aiat_perception.nodes.common.run_node`
sees it within one spin (0.1 s), lets the running callback and the worker threads finish, destroys the
node and then shuts rclpy down. rclpy's own handlers would instead shut the context down from the
signal and raise KeyboardInterrupt wherever the main thread happens to be (inside a callback, inside
``destroy_node``), while worker threads may still be publishing. A second signal raises
KeyboardInterrupt, for a node stuck in its cleanup.

:func:`start` also holds a stop that arrives while the node is still importing rclpy, numpy or OpenCV
until the imports are done and then exits with code 0; left to Python, the KeyboardInterrupt lands
inside a C extension's initialisation, which rclpy reports as ``ImportError: initialization failed``
(exit code 1) on a machine too busy to start quickly. Both turn on :mod:`faulthandler`: a crash prints
every thread's Python stack, and SIGUSR1 prints them without stopping, which the launcher sends to a
node that has not stopped in time before it kills it.
"""
from __future__ import annotations

import faulthandler
import importlib
import signal
import sys
import threading
from typing import List, Optional

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """The signal handler behind an orderly stop (see the module's docstring)."""

    def __init__(self):
        self.signal: Optional[int] = None

    def __call__(self, signum, _frame) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt
        self.signal = signum

    @property
    def requested(self) -> bool:
        return self.signal is not None

    def name(self) -> str:
        return signal.Signals(self.signal).name if self.signal is not None else ''


STOP = StopRequest()


def hold_stop_signals() -> bool:
    """Route SIGINT and SIGTERM to :data:`STOP`. Python lets only the main thread set handlers, so
    elsewhere nothing changes and False is returned."""
    if threading.current_thread() is not threading.main_thread():
        return False
    for sig in STOP_SIGNALS:
        signal.signal(sig, STOP)
    return True


def enable_stack_dumps() -> None:
    """Print all threads' stacks on a fatal signal and on SIGUSR1 (idempotent)."""
    if not faulthandler.is_enabled():
        faulthandler.enable(all_threads=True)
    faulthandler.register(signal.SIGUSR1, all_threads=True, chain=False)


def command(module: str, function: str = 'main', python: Optional[str] = None) -> List[str]:
    """The command line that runs ``module.function`` as a node process through :func:`start`."""
    return [python or sys.executable, '-c',
            f'from aiat_perception.nodes.node_process import start; start("{module}", "{function}")']


def start(module: str, function: str = 'main') -> None:
    """Import ``module`` and run ``function`` (a node's main, which runs :func:`run_node`), as a process."""
    enable_stack_dumps()
    hold_stop_signals()
    entry = getattr(importlib.import_module(module), function)
    if STOP.requested:
        print(f'[{module.rsplit(".", 1)[-1]}] stopped by {STOP.name()} while starting', file=sys.stderr, flush=True)
        sys.exit(0)
    sys.exit(entry())
