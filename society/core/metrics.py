"""Round metrics of the core model: the commons, wealth and GovSim's measures."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numba
import numpy as np

from society.core import kernel_threads  # noqa: F401 -- sets Numba's thread policy before its threads start

if TYPE_CHECKING:
    from society.core.model import Society
    from society.core.state import CitizenState

CONCURRENT_SORT_MIN = 30_000
"""From this many citizens on, the two columns of a round's Gini coefficients are sorted on two threads at once.
Measured on two cores, both sorts of a round's columns: 144 us against 185 one after the other at 30,000 citizens,
0.40 against 0.70 ms at 100,000, 5.2 against 10.2 ms at 1,000,000; at 10,000, 79 against 56 us (handing the sort
to the other thread costs more)."""


@lru_cache(maxsize=4)
def _ranks(n: int) -> np.ndarray:
    """1, 2, ..., n as float64 (read-only; the same values `np.dot` would cast integer ranks to)."""
    ranks = np.arange(1, n + 1, dtype=np.float64)
    ranks.flags.writeable = False
    return ranks


BLAS_ONE_THREAD_MAX = 10_000
"""Longest dot product OpenBLAS (numpy's BLAS) computes on one thread. A longer one wakes its thread pool, whose
threads then spin for about a tenth of a second, holding a core the run's writer thread (or Numba's second thread)
needs; and it adds per-thread partial sums, so its last bits depend on the machine's core count."""


def blockwise_dot(first: np.ndarray, second: np.ndarray) -> float:
    """`np.dot` of two float64 vectors, in blocks of at most `BLAS_ONE_THREAD_MAX` added in order: bit for bit
    `np.dot` up to that length, never threaded, and the same on any number of cores."""
    if first.size <= BLAS_ONE_THREAD_MAX:
        return float(np.dot(first, second))
    total = 0.0
    for start in range(0, first.size, BLAS_ONE_THREAD_MAX):
        block = slice(start, start + BLAS_ONE_THREAD_MAX)
        total += float(np.dot(first[block], second[block]))
    return total


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative values (negatives count as 0); 0 for an empty or all-zero array.

    The values at or below 0 take the lowest ranks and add nothing, so only the positive ones are summed.
    """
    return _gini_of_sorted(values.size, sorted_positive(np.asarray(values, dtype=np.float64)))


def _gini_of_sorted(n: int, positive: np.ndarray) -> float:
    """`gini` of `n` values whose positive ones are `positive`, sorted."""
    total = positive.sum()
    if n == 0 or total == 0:
        return 0.0
    return float((2 * blockwise_dot(_ranks(n)[n - positive.size:], positive)) / (n * total) - (n + 1) / n)


def sorted_positive(values: np.ndarray) -> np.ndarray:
    """The values above 0, sorted (NaNs kept, last, where `np.sort` puts them).

    `np.sort` of every value, then the values at or below 0 cut off the front: on the two-core machine the
    benchmarks run on, numpy's vectorised sort beats a radix sort of the positive values alone at every size
    (56 against 75 us for a round's two columns at 10,000 citizens, 10 against 20 ms at 1,000,000).
    """
    ordered = np.sort(values)
    return ordered[np.searchsorted(ordered, 0.0, side="right"):]


def gini_pair(first: np.ndarray, second: np.ndarray) -> tuple[float, float]:
    """`gini` of two arrays; from `CONCURRENT_SORT_MIN` values on, and where the run may use more than one thread
    (`numba.get_num_threads()`, which a sweep sets to each run's share of the CPUs), the second is sorted on a
    worker thread while this one sorts the first (numpy's sort releases the GIL)."""
    if max(first.size, second.size) < CONCURRENT_SORT_MIN or numba.get_num_threads() < 2:
        return gini(first), gini(second)
    second = np.asarray(second, dtype=np.float64)
    try:
        second_sorted = _sort_thread().submit(sorted_positive, second)
    except RuntimeError:  # the interpreter is shutting down (a run in a thread outliving the main one)
        return gini(first), gini(second)
    first_gini = gini(first)
    return first_gini, _gini_of_sorted(second.size, second_sorted.result())


_sort_threads: dict[int, ThreadPoolExecutor] = {}
_sort_threads_lock = threading.Lock()


def _sort_thread() -> ThreadPoolExecutor:
    """This process's one worker thread for `gini_pair` (a forked child, which has none of its parent's threads,
    starts its own)."""
    pid = os.getpid()
    with _sort_threads_lock:
        if pid not in _sort_threads:
            _sort_threads.clear()
            _sort_threads[pid] = ThreadPoolExecutor(1, thread_name_prefix="gini-sort")
        return _sort_threads[pid]


class ColumnGinis:
    """The Gini coefficients of two state columns, round after round, sorted again only where a column changed.

    Long stretches of a run change neither column (once a commons has collapsed, nobody takes or punishes), so
    each column's last values are kept and compared with the current ones: a comparison and a copy cost a
    fraction of a sort.
    """

    def __init__(self, first: str, second: str) -> None:
        self.names = (first, second)
        self._last: dict[str, tuple[np.ndarray, float]] = {}

    def __call__(self, state: CitizenState, present: np.ndarray | None = None) -> tuple[float, float]:
        """The two coefficients over every citizen, or over those marked in `present`."""
        first, second = (state[name] if present is None else state[name][present] for name in self.names)
        known = self._known(self.names[0], first), self._known(self.names[1], second)
        if known == (None, None):
            ginis = gini_pair(first, second)
        else:
            ginis = tuple(gini(column) if value is None else value for column, value in zip((first, second), known))
        for name, column, value in zip(self.names, (first, second), ginis, strict=True):
            self._last[name] = (column.copy(), value)
        return ginis[0], ginis[1]

    def _known(self, name: str, column: np.ndarray) -> float | None:
        """The coefficient computed last time, if the column still holds the same values."""
        last = self._last.get(name)
        return last[1] if last is not None and np.array_equal(last[0], column) else None


def core_metrics(society: Society) -> dict[str, Any]:
    """Wealth, equality and, when there is a commons, stock, survival and GovSim's efficiency.

    Wealth and equality are over the citizens still there (every citizen while nobody has been removed); the
    cumulative take counts every take, removed citizens' before they left included.
    """
    state, present = society.state, society.present
    wealth_gini, take_gini = society.column_ginis(state, present)
    wealth = state["wealth"] if present is None else state["wealth"][present]
    row: dict[str, Any] = {
        "wealth_mean": float(wealth.mean()),
        "wealth_gini": wealth_gini,
        "equality": 1.0 - take_gini,
        "cumulative_take": float(state["total_take"].sum()),
    }
    commons = society.commons
    if commons is not None:
        horizon_yield = society.scenario.rounds * commons.max_sustainable_yield()
        row |= {
            "stock_total": float(commons.stock.sum()),
            "stock": commons.stock.tolist(),
            "collapsed_patches": int(commons.collapsed.sum()),
            "collapsed": bool(commons.collapsed.all()),
            "survival": society.collapse_round or society.round,
            "efficiency": 1.0 - max(0.0, horizon_yield - row["cumulative_take"]) / horizon_yield,
        }
    return row
