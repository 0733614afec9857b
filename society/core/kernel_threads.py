"""How many threads Numba's parallel kernels get (all of them for large inputs, one for small ones) and how the
idle ones wait."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import numba

WAIT_POLICY = "PASSIVE"
"""How Numba's OpenMP threads wait between parallel kernels (`OMP_WAIT_POLICY`, unless the environment sets it).

OpenMP's default keeps each idle thread spinning for milliseconds after a kernel, holding a core that the run's
writer thread needs to encode the round's tables: at 100,000 citizens with events recorded, a round took
29-30 ms spinning and 24-25 ms passive (bench/RESULTS.md). Waking a sleeping thread costs microseconds, next to
the milliseconds a kernel large enough to run in parallel takes.
"""


def _start_threads() -> None:
    """Start Numba's thread pool now, its OpenMP runtime reading `WAIT_POLICY` unless the environment names one.

    The runtime reads the variable once, as Numba loads it; it is then removed again, so processes this one starts
    (the LLM server) do not inherit it. Every module with parallel kernels imports this one, so no kernel starts the
    pool first. Where the pool was already started (a parallel kernel run before `society` was imported) or Numba
    uses another threading layer (TBB), the threads wait as they would anyway.
    """
    if "OMP_WAIT_POLICY" in os.environ:
        return
    os.environ["OMP_WAIT_POLICY"] = WAIT_POLICY
    try:
        numba.get_num_threads()  # loads Numba's threading layer, and with it the OpenMP runtime
    finally:
        del os.environ["OMP_WAIT_POLICY"]


_start_threads()

PARALLEL_MIN_WORK = 300_000
"""Element visits (citizens plus neighbour look-ups) from which a parallel kernel runs on every thread.

Measured with the benchmark's rules on two cores (bench/bench_bandwidth.py, harvest's median round): at 100,000
citizens (400k visits) two threads took 2.0-2.3 ms where one took 2.65; at 50,000 (200k visits) they were no
faster (0.80-0.87 ms against 0.77-0.79)."""


@contextmanager
def kernel_threads(work: int) -> Iterator[None]:
    """Run the parallel kernels called inside on a single thread when `work` is below `PARALLEL_MIN_WORK`.

    Waking and joining the other threads costs more than it saves on small inputs, and far more on a busy
    machine, where a kernel waits for a descheduled thread to get its turn. Results do not depend on it.
    """
    if work >= PARALLEL_MIN_WORK:
        yield
        return
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(previous)
