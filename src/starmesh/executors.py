"""Where chunks are computed: in this process, in local worker processes, or on a Dask cluster.

A work unit is ``(variant, start, stop)``: one time chunk of one plan. Chunks are independent of
each other (each recomputes the step before it), so any executor may compute them in any order;
results come back in the order of the units, a few at a time, and one writer in the calling
process writes them. Every executor returns what a run keeps of each chunk
(:func:`starmesh.results.keep_chunk`: the series pairs' rows, every pair's RTT and the
summary's counters), made where the chunk was computed, so workers send a W4 chunk as 4.5 MB
instead of 21.5 MB. Local processes are started with ``spawn`` (numba's thread pools are not
fork-safe) and each uses one routing thread, so two processes fill two cores.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Protocol

from .engine import compute_chunk, release_tree_arrays, set_workers
from .errors import StarmeshError
from .plan import RunPlan
from .propagation import Propagator
from .results import KeptChunk, keep_chunk

Unit = tuple[int, int, int]


class Executor(Protocol):
    """Computes chunks of plans, yielding results in the order of the units."""

    def run(self, plans: Sequence[RunPlan], units: Sequence[Unit]) -> Iterator[KeptChunk]: ...

    def close(self) -> None: ...


def _compute(plan: RunPlan, a: int, b: int, prop: Propagator) -> KeptChunk:
    """One work unit, as every executor computes it: the chunk, and what the run keeps of it."""
    return keep_chunk(plan, compute_chunk(plan, a, b, prop))


class SerialExecutor:
    """Chunks one after the other in this process; routing threads use every core."""

    def __init__(self, workers: int | None = None) -> None:
        set_workers(workers)

    def run(self, plans: Sequence[RunPlan], units: Sequence[Unit]) -> Iterator[KeptChunk]:
        props: dict[int, Any] = {}
        for v, a, b in units:
            plan = plans[v]
            if v not in props:
                props[v] = plan.propagator()
            yield _compute(plan, a, b, props[v])

    def close(self) -> None:
        release_tree_arrays()


# --- Local worker processes ------------------------------------------------------------------

_PLANS: Sequence[RunPlan] = ()
_PROPS: dict[int, Any] = {}


def _exit_with_parent(parent_pid: int) -> None:
    """End this worker process when the process that started it dies (SIGKILL included).

    Linux's ``prctl(PR_SET_PDEATHSIG)`` makes the kernel send SIGKILL when the parent dies; a
    daemon thread that watches ``getppid()`` covers other systems and the moment before the
    ``prctl`` call. Without this, a killed run leaves its workers (and their memory) behind.
    """
    import ctypes
    import signal
    import sys
    import threading
    import time

    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            pr_set_pdeathsig = 1
            libc.prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no libc prctl
            pass

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(0.5)

    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(target=watch, name="starmesh-parent-watch", daemon=True).start()


def _init_worker(plans_file: str, parent_pid: int) -> None:
    global _PLANS
    import pickle

    _exit_with_parent(parent_pid)
    with open(plans_file, "rb") as f:
        _PLANS = pickle.load(f)
    _PROPS.clear()
    set_workers(1)


def _chunk_task(v: int, a: int, b: int) -> KeptChunk:
    plan = _PLANS[v]
    if v not in _PROPS:
        _PROPS[v] = plan.propagator()
    return _compute(plan, a, b, _PROPS[v])


def _ordered(submit: Any, units: Sequence[Unit], window: int) -> Iterator[Any]:
    """Submit units ahead (at most ``window`` in flight); yield results in unit order."""
    pending: deque[Future[Any]] = deque()
    it = iter(units)
    for unit in it:
        pending.append(submit(*unit))
        if len(pending) >= window:
            break
    while pending:
        result = pending.popleft().result()
        nxt = next(it, None)
        if nxt is not None:
            pending.append(submit(*nxt))
        yield result


#: Prefix of the temporary folders holding a run's plans for its workers, then the pid of the
#: process that wrote them.
_PLANS_PREFIX = "starmesh-plans-"


def _remove_orphaned_plan_files() -> None:
    """Delete the plan folders of runs whose process is gone (a killed run cannot clean up)."""
    import shutil
    import tempfile
    from pathlib import Path

    for d in Path(tempfile.gettempdir()).glob(f"{_PLANS_PREFIX}*"):
        pid = d.name.removeprefix(_PLANS_PREFIX).split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except OSError:  # alive, or not ours to signal
            pass


def _broken_pool_as_error(results: Iterator[KeptChunk]) -> Iterator[KeptChunk]:
    """Results, with a worker that died turned into one clear error."""
    from concurrent.futures.process import BrokenProcessPool

    try:
        yield from results
    except BrokenProcessPool:
        raise StarmeshError(
            "a worker process died (its own error, if any, is printed above); chunks already "
            "written are kept (--resume continues). Workers start by importing the script that "
            'called starmesh: guard its entry point with if __name__ == "__main__":, or use '
            "executor='serial'"
        ) from None


class ProcessExecutor:
    """Chunks in ``workers`` local processes (one routing thread each).

    The plans reach the workers through a temporary pickle file, not through the start-up
    pipe: ``spawn`` writes a worker's start-up arguments into a pipe that the parent itself
    holds open until the write ends, so a worker that dies while starting (a script without an
    ``if __name__ == "__main__":`` guard, memory exhausted) would leave the parent blocked on
    megabytes of plans forever. With a path in the pipe the parent sees the dead worker and
    fails instead.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._plans_dir: Any = None

    def run(self, plans: Sequence[RunPlan], units: Sequence[Unit]) -> Iterator[KeptChunk]:
        import pickle
        import tempfile

        _remove_orphaned_plan_files()
        self._plans_dir = tempfile.TemporaryDirectory(prefix=f"{_PLANS_PREFIX}{os.getpid()}-")
        plans_file = os.path.join(self._plans_dir.name, "plans.pickle")
        with open(plans_file, "wb") as f:
            pickle.dump(list(plans), f, protocol=pickle.HIGHEST_PROTOCOL)
        pool = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(plans_file, os.getpid()),
        )
        self._pool = pool
        return _broken_pool_as_error(
            _ordered(lambda v, a, b: pool.submit(_chunk_task, v, a, b), units, 2 * self.workers)
        )

    def close(self) -> None:
        try:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None
        finally:
            if self._plans_dir is not None:
                self._plans_dir.cleanup()
                self._plans_dir = None


# --- Dask ------------------------------------------------------------------------------------


def _dask_chunk(plans: Sequence[RunPlan], v: int, a: int, b: int) -> KeptChunk:
    set_workers(1)
    plan = plans[v]
    return _compute(plan, a, b, plan.propagator())


class DaskExecutor:
    """Chunks as tasks on a Dask cluster: a new LocalCluster, or an existing scheduler."""

    def __init__(self, address: str, workers: int | None) -> None:
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise StarmeshError(
                "Dask is not installed: pip install 'starmesh[dask]' (or drop --dask)"
            ) from None
        self._cluster = None
        try:
            if address == "local":
                self._cluster = LocalCluster(
                    n_workers=workers or os.cpu_count() or 1,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                )
                self.client = Client(self._cluster)
            else:
                self.client = Client(address, timeout="10s")
        except (OSError, TimeoutError) as exc:
            if self._cluster is not None:
                self._cluster.close()
            raise StarmeshError(
                f"cannot reach the Dask scheduler at {address!r} ({exc}): start one with "
                "'dask scheduler' and 'dask worker tcp://HOST:8786', or use --dask local"
            ) from None

    def run(self, plans: Sequence[RunPlan], units: Sequence[Unit]) -> Iterator[KeptChunk]:
        [plans_f] = self.client.scatter([list(plans)], broadcast=True)
        n = max(len(self.client.scheduler_info().get("workers", {})), 1)
        return _ordered(
            lambda v, a, b: self.client.submit(_dask_chunk, plans_f, v, a, b, pure=False),
            units,
            2 * n,
        )

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def make_executor(kind: str, workers: int | None, *, n_units: int) -> Executor:
    """The executor for ``kind`` (see :func:`starmesh.runner.run_plan`)."""
    cores = os.cpu_count() or 1
    if kind.startswith("dask:") or kind.startswith("tcp://"):
        return DaskExecutor(kind.removeprefix("dask:"), workers)
    n = workers or cores
    # Processes pay a start-up (spawn, imports, compiled-kernel load) worth a few chunks.
    if kind == "processes" or (kind == "auto" and n > 1 and n_units >= 4 * n):
        return ProcessExecutor(n)
    if kind in ("auto", "serial", "processes"):
        return SerialExecutor(workers)
    raise StarmeshError(
        f"unknown executor {kind!r}: use auto, serial, processes, dask:local or tcp://HOST:PORT"
    )
