"""Numba kernels of what neighbours hear, social learning and norm-based punishment over the CSR graph, each with
a numpy reference.

Conventions (as in `society.world.commons_kernels`): citizens are ``0..n-1``; ``indptr``/``indices`` are the social
graph in CSR form; kernels never modify their inputs. Imitation takes its random numbers as arrays drawn by the
caller, so kernel and reference see the same draws; punishment draws scalar ``rng.random()`` calls in a
documented order, so a kernel and its reference given identically seeded generators agree exactly. The
references live with the tests that compare them, in ``tests/norms/references.py``.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

from society.core import kernel_threads  # noqa: F401 -- starts Numba's threads before any kernel here runs

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]


# ---- payoff-biased imitation ----------------------------------------------------------------------------------


@numba.njit(cache=True, parallel=True, nogil=True)
def imitation_sources(
    indptr: IntArray, indices: IntArray, payoff: FloatArray, rows: IntArray,
    pick: FloatArray, accept: FloatArray, scale: float,
) -> IntArray:
    """Schlag's proportional imitation: whom each citizen in `rows` copies this round, or -1.

    Citizen ``i = rows[r]`` looks at neighbour ``indices[indptr[i] + int(pick[r] * degree)]`` and copies it when
    that neighbour earned more and ``accept[r] < (payoff[j] - payoff[i]) / scale``. Output aligned with `rows`;
    isolated citizens and a non-positive `scale` copy nobody.
    """
    out = np.full(rows.size, -1, dtype=np.int64)
    if scale <= 0.0:
        return out
    for r in numba.prange(rows.size):
        i = rows[r]
        lo, hi = indptr[i], indptr[i + 1]
        if hi == lo:
            continue
        j = indices[lo + int(pick[r] * (hi - lo))]
        gain = payoff[j] - payoff[i]
        if gain > 0.0 and accept[r] < gain / scale:
            out[r] = j
    return out


# ---- conformist transmission ----------------------------------------------------------------------------------


@numba.njit(cache=True, parallel=True, nogil=True)
def neighbour_median(indptr: IntArray, indices: IntArray, values: FloatArray, rows: IntArray) -> FloatArray:
    """Median of `values` over each of `rows`' neighbours (the mean of the middle two for an even count).

    Isolated citizens get their own value. Output aligned with `rows`.
    """
    out = np.empty(rows.size)
    for r in numba.prange(rows.size):
        i = rows[r]
        lo, hi = indptr[i], indptr[i + 1]
        if hi == lo:
            out[r] = values[i]
            continue
        sample = np.empty(hi - lo)
        for p in range(lo, hi):
            sample[p - lo] = values[indices[p]]
        sample.sort()
        m = sample.size // 2
        out[r] = sample[m] if sample.size % 2 else 0.5 * (sample[m - 1] + sample[m])
    return out


# ---- what neighbours say ----------------------------------------------------------------------------------------


@numba.njit(cache=True, parallel=True, nogil=True)
def heard_mean(
    indptr: IntArray, indices: IntArray, values: FloatArray, spoke: BoolArray
) -> tuple[FloatArray, IntArray]:
    """Per citizen: the mean of `values` over its neighbours who spoke (NaN where none did), and how many spoke.

    Summed sequentially in CSR order, so where every neighbour spoke it equals `society.world.graph.neighbor_mean`
    bit for bit. Citizens in parallel.
    """
    n = indptr.size - 1
    mean = np.full(n, np.nan)
    count = np.zeros(n, dtype=np.int64)
    for i in numba.prange(n):
        total = 0.0
        heard = 0
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            if spoke[j]:
                total += values[j]
                heard += 1
        count[i] = heard
        if heard:
            mean[i] = total / heard
    return mean, count


# ---- norm-based punishment ------------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def norm_punishments(
    indptr: IntArray, indices: IntArray, is_punisher: BoolArray, norm: FloatArray, ratio: FloatArray,
    tolerance: float, probability: float, max_targets: int, rng: np.random.Generator,
) -> tuple[IntArray, IntArray]:
    """Every punisher sanctions the neighbours whose take ratio exceeds its own norm times (1 + tolerance).

    Punishers go in index order, neighbours in CSR order. When `probability` < 1 one ``rng.random()`` is drawn
    per violating neighbour considered and the act happens if it is below `probability`; a punisher stops after
    `max_targets` acts (0: no limit). Returns the (actor, target) pairs in that order.
    """
    actors = np.empty(indices.size, dtype=np.int64)
    targets = np.empty(indices.size, dtype=np.int64)
    count = 0
    for i in range(indptr.size - 1):
        if not is_punisher[i]:
            continue
        limit = norm[i] * (1.0 + tolerance)
        acts = 0
        for p in range(indptr[i], indptr[i + 1]):
            if max_targets > 0 and acts >= max_targets:
                break
            j = indices[p]
            if ratio[j] <= limit + 1e-9:
                continue
            if probability < 1.0 and rng.random() >= probability:
                continue
            actors[count] = i
            targets[count] = j
            count += 1
            acts += 1
    return actors[:count].copy(), targets[:count].copy()
