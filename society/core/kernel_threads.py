"""How many threads Numba's parallel kernels get: all of them for large inputs, one for small ones."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numba

PARALLEL_MIN_WORK = 1_000_000
"""Element visits (citizens plus neighbour look-ups) from which a parallel kernel runs on every thread."""


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
