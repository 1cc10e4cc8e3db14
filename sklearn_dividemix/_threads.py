"""Torch threads of a fit that runs in a Dask worker next to other tasks.

A Dask worker runs ``nthreads`` tasks at once, and torch gives each of them as
many intra-op threads as the process may use CPUs. Started by a nanny (the
default, ``processes=True``), a worker process has ``OMP_NUM_THREADS=1`` in
its environment and torch takes one thread per task, so that is already
right. In a worker without a nanny (``Client(processes=False)``, ``dask
worker --no-nanny``) nothing limits torch: two tasks on two cores run four
threads. Ray's workers are started with ``OMP_NUM_THREADS`` set to the CPUs
given to them, which torch follows.

Torch's intra-op thread count is set per calling thread (it is OpenMP's
``nthreads`` of that thread), so a task can lower its own count without
touching the other tasks of the same process.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from joblib import cpu_count

__all__ = ["limit_torch_threads", "worker_thread_budget"]


def worker_thread_budget() -> int | None:
    """Intra-op threads one task may use in the current Dask worker process.

    The CPUs this process may run on (``joblib.cpu_count``: affinity and
    cgroup quota) divided by the tasks this process runs at once, the sum of
    ``nthreads`` of the Dask workers living in it. Tasks of other worker
    processes on the same host are not counted: a nanny keeps those to one
    thread each through ``OMP_NUM_THREADS``.

    Returns
    -------
    budget : int or None
        At least 1; None outside a Dask task (distributed not imported, or
        not called from a task).
    """
    # Only look for a worker if distributed is already loaded: importing it
    # costs a second, and a process without it runs no Dask task.
    if "distributed" not in sys.modules:
        return None
    from distributed import Status, Worker, get_worker

    try:
        get_worker()
    except ValueError:
        return None
    slots = sum(
        worker.state.nthreads
        for worker in list(Worker._instances)
        if worker.status in (Status.running, Status.paused)
    )
    return max(1, cpu_count() // max(1, slots))


@contextmanager
def limit_torch_threads(n_threads: int | None) -> Iterator[None]:
    """Cap torch's intra-op threads of the calling thread for the block.

    The count is lowered to ``n_threads`` if it is higher, never raised, and
    restored on exit (exception or not). Other threads keep theirs.

    Parameters
    ----------
    n_threads : int or None
        The cap; None leaves the count as it is.

    Yields
    ------
    None
    """
    previous = torch.get_num_threads()
    if n_threads is None or n_threads >= previous:
        yield
        return
    torch.set_num_threads(max(1, n_threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)
