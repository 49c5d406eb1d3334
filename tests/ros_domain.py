"""ROS domain ids held per process (an flock per id in /tmp), so that concurrent test sessions and
benchmarks on one machine never hear each other's nodes. Used by tests/conftest.py and benchmarks."""
from __future__ import annotations

from typing import Iterable

_held = []   # the lock files stay open (and locked) for the life of the process


def claim_ros_domain(ids: Iterable[int], error: type = RuntimeError) -> int:
    """The first id of ``ids`` that no other process holds, held until this process exits;
    ``error`` when all are held."""
    import fcntl
    ids = list(ids)
    for domain in ids:
        handle = open(f'/tmp/aiat-ros-domain-{domain}.lock', 'w')
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        _held.append(handle)
        return domain
    raise error(f'no free ROS domain id in {min(ids)}..{max(ids)}')
