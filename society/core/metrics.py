"""Round metrics of the core model: the commons, wealth and GovSim's measures."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numba
import numpy as np

from society.core import kernel_threads  # noqa: F401 -- starts Numba's threads before any kernel here runs

if TYPE_CHECKING:
    from society.core.model import Society
    from society.core.state import CitizenState

CONCURRENT_SORT_MIN = 30_000
"""From this many citizens on, the two columns of a round's Gini coefficients are sorted on two threads at once.
Measured on two cores, both sorts with cold caches: 0.32 ms against 0.40 one after the other at 30,000 citizens,
0.77 against 1.13 at 100,000; at 10,000, 0.20 against 0.14 (waking the second thread costs more)."""


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

    The values at or below 0 take the lowest ranks and add nothing, so only the positive ones are sorted.
    """
    return _gini_of_sorted(values.size, sorted_positive(np.ascontiguousarray(values, dtype=np.float64)))


def _gini_of_sorted(n: int, positive: np.ndarray) -> float:
    """`gini` of `n` values whose positive ones are `positive`, sorted."""
    total = positive.sum()
    if n == 0 or total == 0:
        return 0.0
    return float((2 * blockwise_dot(_ranks(n)[n - positive.size:], positive)) / (n * total) - (n + 1) / n)


DIGITS = ((32, 11), (43, 11), (54, 10))
"""(shift, width) of the radix digits of the keys' upper 32 bits, least significant first."""

SHORT_RUN = 32
"""Runs of keys sharing their upper 32 bits up to this long are finished by insertion sort, longer ones by `np.sort`."""


@numba.njit(cache=True, nogil=True)
def sorted_positive(values: np.ndarray) -> np.ndarray:
    """The values (contiguous float64) above 0, sorted: an LSD radix sort on their bits.

    Positive doubles order as their bit patterns do, read as unsigned integers. The radix passes sort on the
    upper 32 bits only (sign, exponent and 20 mantissa bits, in 11-bit digits; a digit every value shares needs
    no pass), whose three histograms come from one pass; then each run of keys sharing those bits, rare and short
    unless values are equal, is sorted on its full key. On the two-core machine the benchmarks run on this is
    about three times as fast as `np.sort`. NaNs are kept and sort last, as with `np.sort`.
    """
    bits = values.view(np.uint64)
    keys = np.empty(values.size, np.uint64)
    n = 0
    for i in range(values.size):  # without a branch: negatives come in no order a branch predictor could learn
        keys[n] = bits[i]
        n += not values[i] <= 0.0
    keys = keys[:n]
    counts = np.zeros((3, 2048), np.int64)
    for i in range(n):
        key = keys[i]
        for d in range(3):
            shift, width = DIGITS[d]
            counts[d, (key >> np.uint64(shift)) & np.uint64((1 << width) - 1)] += 1
    spare = np.empty(n, np.uint64)
    for d in range(3):
        shift, width = DIGITS[d]
        mask = np.uint64((1 << width) - 1)
        if n == 0 or counts[d, (keys[0] >> np.uint64(shift)) & mask] == n:
            continue
        start = np.empty(1 << width, np.int64)
        total = 0
        for digit in range(1 << width):
            start[digit] = total
            total += counts[d, digit]
        for i in range(n):
            digit = (keys[i] >> np.uint64(shift)) & mask
            spare[start[digit]] = keys[i]
            start[digit] += 1
        keys, spare = spare, keys
    _sort_runs(keys)
    return keys.view(np.float64)


@numba.njit(cache=True, nogil=True)
def _sort_runs(keys: np.ndarray) -> None:
    """Sort, in place, each run of `keys` (already ordered on their upper 32 bits) that shares those bits."""
    n = keys.size
    first = 0
    while first < n:
        upper = keys[first] >> np.uint64(32)
        last = first + 1
        while last < n and keys[last] >> np.uint64(32) == upper:
            last += 1
        if last - first > SHORT_RUN:
            if not _is_sorted(keys, first, last):  # a long run is most often one repeated value
                keys[first:last] = np.sort(keys[first:last])
        else:
            for i in range(first + 1, last):
                key = keys[i]
                j = i - 1
                while j >= first and keys[j] > key:
                    keys[j + 1] = keys[j]
                    j -= 1
                keys[j + 1] = key
        first = last


@numba.njit(cache=True, nogil=True)
def _is_sorted(keys: np.ndarray, first: int, last: int) -> bool:
    for i in range(first + 1, last):
        if keys[i - 1] > keys[i]:
            return False
    return True


def gini_pair(first: np.ndarray, second: np.ndarray) -> tuple[float, float]:
    """`gini` of two arrays; from `CONCURRENT_SORT_MIN` values on, both are sorted at once on two threads."""
    if max(first.size, second.size) < CONCURRENT_SORT_MIN:
        return gini(first), gini(second)
    first_sorted, second_sorted = _sorted_positive_pair(
        np.ascontiguousarray(first, dtype=np.float64), np.ascontiguousarray(second, dtype=np.float64))
    return _gini_of_sorted(first.size, first_sorted), _gini_of_sorted(second.size, second_sorted)


@numba.njit(cache=True, parallel=True, nogil=True)
def _sorted_positive_pair(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`sorted_positive` of both arrays, each on its own thread."""
    sorted_first, sorted_second = np.empty(first.size), np.empty(second.size)
    sizes = np.zeros(2, np.int64)
    for which in numba.prange(2):
        if which == 0:
            found = sorted_positive(first)
            sorted_first[:found.size] = found
        else:
            found = sorted_positive(second)
            sorted_second[:found.size] = found
        sizes[which] = found.size
    return sorted_first[:sizes[0]], sorted_second[:sizes[1]]


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
