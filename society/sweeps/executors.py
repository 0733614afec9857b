"""Where a sweep's runs are played: in this process, in a local process pool, or on a Ray cluster."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from typing import Any, Protocol

from society.sweeps.cell import CellOutcome, CellTask, run_cell

RAY_OBJECT_STORE_BYTES = 256 * 1024**2
"""Object store of a Ray started for a sweep: runs return only their status, so a small one is plenty."""

RAY_CONNECT_TIMEOUT_S = 5.0
"""How long to wait for a cluster address to accept a connection (Ray itself retries for minutes)."""

RAY_STOP_WAIT_S = 60.0
"""How long a stopped Ray sweep waits for its runs in flight to write their last round."""


class ExecutorError(Exception):
    """An executor that cannot start (e.g. a Ray cluster that does not answer)."""


class Executor(Protocol):
    """Plays tasks and yields each task's outcome (or the exception that lost it) as it finishes."""

    description: str
    threads_per_run: int
    same_machine: bool
    """Whether runs play on this machine (and so can reach a server on 127.0.0.1)."""

    def runs_at_once(self) -> int:
        """How many runs play at the same time (asked inside the with-block)."""

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc: object) -> None: ...

    def run(self, tasks: list[CellTask]) -> Iterator[tuple[CellTask, CellOutcome | BaseException]]: ...

    def stop(self) -> None:
        """Cancel what has not started and wait for runs in flight to stop at a round boundary."""


def cpu_count() -> int:
    """CPUs this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class SerialExecutor:
    """One run after another in this process; its kernels use `threads` (default: every CPU, as `society run`)."""

    description = "serial"
    same_machine = True

    def __init__(self, threads: int | None = None) -> None:
        self.threads_per_run = threads or cpu_count()

    def runs_at_once(self) -> int:
        return 1

    def __enter__(self) -> SerialExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def run(self, tasks: list[CellTask]) -> Iterator[tuple[CellTask, CellOutcome | BaseException]]:
        for task in tasks:
            yield task, run_cell(task)

    def stop(self) -> None:
        return None


class LocalExecutor:
    """A pool of `workers` processes kept for the whole sweep; each run's kernels get an equal share of the CPUs.

    Workers are spawned, not forked: the thread pools of Polars and Numba do not survive a fork. Each worker
    imports the engine and loads its compiled kernels once, with its first run, and plays every later run it
    is given warm. Idle workers ignore Ctrl-C, from the moment they start (the initializer is `signal.signal`
    itself, so setting it imports nothing); a worker playing a run turns it into a clean stop (see run_cell).
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.description = f"local, {workers} workers"
        self.threads_per_run = max(1, cpu_count() // workers)
        self.same_machine = True
        self._pool: ProcessPoolExecutor | None = None

    def runs_at_once(self) -> int:
        return self.workers

    def __enter__(self) -> LocalExecutor:
        self._pool = ProcessPoolExecutor(
            self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=signal.signal,
            initargs=(signal.SIGINT, signal.SIG_IGN),
        )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def run(self, tasks: list[CellTask]) -> Iterator[tuple[CellTask, CellOutcome | BaseException]]:
        assert self._pool is not None, "use the executor in a with-block"
        futures: dict[Future[CellOutcome], CellTask] = {self._pool.submit(run_cell, task): task for task in tasks}
        for future in as_completed(futures):
            error = future.exception()
            yield futures[future], future.result() if error is None else error

    def stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


class RayExecutor:
    """Ray tasks of one CPU each: on the cluster at `address`, or on a fresh local Ray of `workers` CPUs (never
    on another Ray already running here)."""

    def __init__(self, workers: int, address: str | None = None) -> None:
        self.workers = workers
        self.address = address
        self.description = f"ray at {address}" if address else f"ray, local, {workers} CPUs"
        self.threads_per_run = 1
        self.same_machine = address is None
        self._pending: dict[Any, CellTask] = {}

    def runs_at_once(self) -> int:
        """The local Ray's CPUs, or the whole cluster's (each run takes one CPU)."""
        import ray

        return self.workers if self.address is None else max(1, int(ray.cluster_resources().get("CPU", 1)))

    def __enter__(self) -> RayExecutor:
        import ray

        if self.address:
            _check_reachable(self.address)
        options: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
        if not self.address:
            options |= {"num_cpus": self.workers, "include_dashboard": False,
                        "object_store_memory": RAY_OBJECT_STORE_BYTES}
        try:
            ray.init(address=self.address or "local", **options)
        except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as error:
            where = f"the Ray cluster at {self.address}" if self.address else "a local Ray"
            raise ExecutorError(f"cannot start {where}: {str(error).splitlines()[0]}") from None
        return self

    def __exit__(self, *exc: object) -> None:
        import ray

        ray.shutdown()

    def run(self, tasks: list[CellTask]) -> Iterator[tuple[CellTask, CellOutcome | BaseException]]:
        import ray

        remote = ray.remote(num_cpus=1, max_retries=0)(run_cell)
        self._pending = {remote.remote(task): task for task in tasks}
        while self._pending:
            (ready,), _ = ray.wait(list(self._pending), num_returns=1)
            task = self._pending.pop(ready)
            try:
                outcome: CellOutcome | BaseException = ray.get(ready)
            except ray.exceptions.RayError as error:
                outcome = error
            yield task, outcome

    def stop(self) -> None:
        import ray

        for ref in self._pending:
            ray.cancel(ref)
        ray.wait(list(self._pending), num_returns=len(self._pending), timeout=RAY_STOP_WAIT_S)
        self._pending = {}


def _check_reachable(address: str) -> None:
    """Fail fast when nothing listens at a `host:port` (or `ray://host:port`) cluster address."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=RAY_CONNECT_TIMEOUT_S).close()
    except OSError as error:
        raise ExecutorError(f"nothing answers at the Ray cluster address {address} ({error})") from None


def make_executor(kind: str, workers: int, ray_address: str | None = None) -> Executor:
    """The executor a sweep was asked for: `local` (serial when workers is 1) or `ray`."""
    if kind == "ray":
        return RayExecutor(workers, ray_address)
    return SerialExecutor() if workers == 1 else LocalExecutor(workers)
