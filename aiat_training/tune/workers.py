"""Which worker runs where: one trial per GPU (pinned with ``CUDA_VISIBLE_DEVICES``), or CPU workers
sharing the cores. Pure functions, so the assignment is tested on a machine without GPUs."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence


@dataclass(frozen=True)
class WorkerSlot:
    index: int
    env: dict                 # environment overrides for the worker process
    device: Optional[str]     # train.device inside the worker (None: the config's own)
    torch_threads: int        # 0: torch's default (OMP_NUM_THREADS or all cores)
    trials: int               # this worker's share of the trials


def parse_gpus(text: Optional[str]) -> list[str]:
    """``'0,1,2,3'`` -> ``['0', '1', '2', '3']``; ids must be distinct non-negative integers."""
    if text is None:
        return []
    ids = [part.strip() for part in str(text).split(',')]
    if not ids or any(not part.isdigit() for part in ids):
        raise ValueError(f'--gpus: expected comma-separated GPU indices like 0,1,2,3, got {text!r}')
    if len(set(ids)) != len(ids):
        raise ValueError(f'--gpus: GPU {next(i for i in ids if ids.count(i) > 1)} listed twice in {text!r}')
    return [str(int(part)) for part in ids]


def split_trials(trials: int, workers: int) -> list[int]:
    """``trials`` shared as evenly as possible; the first workers take the remainder."""
    base, extra = divmod(trials, workers)
    return [base + (1 if i < extra else 0) for i in range(workers)]


def assign_workers(trials: int, workers: Optional[int] = None, gpus: Sequence[str] = (),
                   cpu_count: int = 1) -> list[WorkerSlot]:
    """The worker processes of one ``tune`` call.

    With ``gpus``: by default one worker per GPU, each seeing only its GPU (``CUDA_VISIBLE_DEVICES``
    = that id, so inside the worker it is ``cuda:0``); more workers than GPUs go round-robin (several
    trials share a GPU). Without ``gpus``: one worker (default) runs in this process on the config's
    ``train.device``; ``workers`` > 1 are CPU processes with the GPU hidden and the cores divided
    between them (at least one torch thread each). No worker gets zero trials.
    """
    if trials < 1:
        raise ValueError(f'--trials: must be >= 1, got {trials}')
    if workers is not None and workers < 1:
        raise ValueError(f'--workers: must be >= 1, got {workers}')
    n = workers if workers is not None else (len(gpus) or 1)
    n = min(n, trials)
    shares = split_trials(trials, n)
    slots = []
    if gpus:
        for i in range(n):
            gpu = gpus[i % len(gpus)]
            threads = max(1, cpu_count // n)
            slots.append(WorkerSlot(i, {'CUDA_VISIBLE_DEVICES': gpu}, 'cuda:0', threads, shares[i]))
    elif n == 1:            # the plain case: one process, the config's own train.device (auto = GPU if any)
        slots.append(WorkerSlot(0, {}, None, 0, shares[0]))
    else:
        threads = max(1, cpu_count // n)
        for i in range(n):
            slots.append(WorkerSlot(i, {'CUDA_VISIBLE_DEVICES': ''}, 'cpu', threads, shares[i]))
    return slots
