"""Numba kernels of the common-pool resource, each paired with a plain numpy reference it equals bit for bit.

Conventions shared by every kernel:

* Citizens are indexed ``0..n-1`` and patches ``0..P-1``; ``patch[i]`` (int64) is citizen ``i``'s patch and must
  lie in ``[0, P)``. Kernels do no bounds checks: validating indices is the caller's job.
* Kernels never modify their inputs; they return fresh arrays (the harvest-accounting kernels, which update the
  state columns they are given in place, say so).
* Randomness comes from the caller's ``numpy.random.Generator``, drawn only as scalar ``rng.random()`` calls in a
  documented order, integers as ``int(u * k)``. Numba advances the generator it is passed, so a kernel and its
  reference given identically seeded generators return identical results and leave identical generator states.
* Sums accumulate sequentially in index order (the references use the sequential ``np.bincount`` and
  ``np.add.at``, never the pairwise ``np.sum``), so floating-point results agree exactly.

The references live with the tests that compare them, in ``tests/society/references.py``.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]


# ---- harvest allocation ---------------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def allocate_proportional(requests: FloatArray, patch: IntArray, stock: FloatArray) -> FloatArray:
    """Grant requests in full where a patch's demand fits its stock, else scale them to share the stock pro rata."""
    demand = np.zeros(stock.size)
    _add_by_patch(patch, requests, demand)
    scale = np.ones(stock.size)
    for p in range(stock.size):
        if demand[p] > stock[p]:
            scale[p] = stock[p] / demand[p]
    granted = np.empty(requests.size)
    for i in range(requests.size):
        granted[i] = requests[i] * scale[patch[i]]
    return granted


@numba.njit(cache=True, nogil=True)
def patch_totals(patch: IntArray, values: FloatArray, n_patches: int) -> FloatArray:
    """Per patch, the sum of its citizens' values, in citizen order (`np.bincount` without its checks)."""
    totals = np.zeros(n_patches)
    _add_by_patch(patch, values, totals)
    return totals


@numba.njit(cache=True, nogil=True)
def _add_by_patch(patch: IntArray, values: FloatArray, totals: FloatArray) -> None:
    """totals[patch[i]] += values[i] for every i in order, the running sum held in a register along a patch's run.

    The additions are the same, in the same order, as adding into memory each time; the register spares each
    one the wait for the previous store (citizens of a patch usually sit next to each other).
    """
    if values.size == 0:
        return
    current = patch[0]
    running = totals[current]
    for i in range(values.size):
        if patch[i] != current:
            totals[current] = running
            current = patch[i]
            running = totals[current]
        running += values[i]
    totals[current] = running


@numba.njit(cache=True, nogil=True)
def allocate_random_units(
    requests: FloatArray, patch: IntArray, stock: FloatArray, rng: np.random.Generator
) -> FloatArray:
    """GovSim's rule: whole units; on an over-demanded patch each unit goes to a random citizen still wanting more.

    Requests and stocks are floored to whole units. Patches are served in index order; one ``rng.random()`` is
    drawn per unit handed out on an over-demanded patch and none elsewhere. O(n + P + units handed out).
    """
    n, n_patches = requests.size, stock.size
    wanted = np.empty(n, np.int64)
    demand = np.zeros(n_patches, np.int64)
    first = np.zeros(n_patches + 1, np.int64)  # patch p's citizens are members[first[p]:first[p + 1]]
    for i in range(n):
        wanted[i] = math.floor(requests[i])
        demand[patch[i]] += wanted[i]
        first[patch[i] + 1] += 1
    for p in range(n_patches):
        first[p + 1] += first[p]
    members = np.empty(n, np.int64)
    filled = first[:-1].copy()
    for i in range(n):
        members[filled[patch[i]]] = i
        filled[patch[i]] += 1

    granted = np.zeros(n)
    for p in range(n_patches):
        units = math.floor(stock[p])
        if demand[p] <= units:
            for k in range(first[p], first[p + 1]):
                granted[members[k]] = wanted[members[k]]
            continue
        # Compact the patch's members wanting at least one unit to the front of its slice: the candidates.
        base, m = first[p], 0
        for k in range(first[p], first[p + 1]):
            if wanted[members[k]] > 0:
                members[base + m] = members[k]
                m += 1
        for _ in range(units):
            pos = base + int(rng.random() * m)
            i = members[pos]
            granted[i] += 1.0
            if granted[i] == wanted[i]:
                m -= 1
                members[pos] = members[base + m]
    return granted


# ---- harvest accounting ---------------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def record_takes(
    fair_share: FloatArray, requests: FloatArray, granted: FloatArray,
    fair_out: FloatArray, requested_out: FloatArray, take_out: FloatArray, ratio_out: FloatArray,
    total_take: FloatArray,
) -> None:
    """Write a round's takes in one pass: share, request, take, take / share (1 where the share is 0), running total.

    Writes into the `*_out` arrays and adds to `total_take`: the citizens' state columns, updated in place.
    """
    for i in range(granted.size):
        fair_out[i] = fair_share[i]
        requested_out[i] = requests[i]
        take_out[i] = granted[i]
        ratio_out[i] = granted[i] / fair_share[i] if fair_share[i] > 0 else 1.0
        total_take[i] += granted[i]


@numba.njit(cache=True, nogil=True)
def settle_harvest(
    requests: FloatArray, granted: FloatArray, fair_share: FloatArray, memory: float,
    wealth: FloatArray, reputation: FloatArray,
) -> int:
    """Add the takes to wealth and move reputation toward compliance (asking at most the share); returns the over-askers.

    reputation = memory * reputation + (1 - memory) * compliant, in place, like `wealth`.
    """
    over = 0
    for i in range(granted.size):
        wealth[i] += granted[i]
        compliant = 1.0 if requests[i] <= fair_share[i] + 1e-9 else 0.0
        reputation[i] = memory * reputation[i] + (1 - memory) * compliant
        over += compliant == 0.0
    return over


# ---- regrowth, shocks, diffusion, collapse --------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def regrow_logistic(stock: FloatArray, capacity: FloatArray, rate: float) -> FloatArray:
    """Logistic regrowth s + rate*s*(1 - s/capacity), clipped to [0, capacity]; capacities must be positive."""
    new_stock = np.empty(stock.size)
    for p in range(stock.size):
        s = stock[p] + rate * stock[p] * (1.0 - stock[p] / capacity[p])
        new_stock[p] = min(max(s, 0.0), capacity[p])
    return new_stock


@numba.njit(cache=True, nogil=True)
def regrow_doubling(stock: FloatArray, capacity: FloatArray) -> FloatArray:
    """GovSim's regrowth: the stock doubles, up to capacity."""
    new_stock = np.empty(stock.size)
    for p in range(stock.size):
        new_stock[p] = min(capacity[p], 2.0 * stock[p])
    return new_stock


@numba.njit(cache=True, nogil=True)
def diffuse_ring(stock: FloatArray, rate: float) -> FloatArray:
    """Each neighbouring pair (i, i+1 mod P) on a ring moves rate*(s[i+1] - s[i]) from i+1 to i; conserves stock.

    The pairs are unordered, so two patches form a single pair and one patch none. Flows use the old stocks.
    """
    n_patches = stock.size
    n_pairs = n_patches if n_patches > 2 else max(n_patches - 1, 0)
    flow = np.empty(n_pairs)
    for k in range(n_pairs):
        flow[k] = rate * (stock[(k + 1) % n_patches] - stock[k])
    new_stock = stock.copy()
    for k in range(n_pairs):
        new_stock[k] += flow[k]
    for k in range(n_pairs):
        new_stock[(k + 1) % n_patches] -= flow[k]
    return new_stock


@numba.njit(cache=True, nogil=True)
def apply_shocks(
    stock: FloatArray, probability: float, severity: float, rng: np.random.Generator
) -> tuple[FloatArray, BoolArray]:
    """Each patch in order draws u and, if u < probability, loses the fraction `severity` of its stock."""
    new_stock = stock.copy()
    hit = np.zeros(stock.size, np.bool_)
    for p in range(stock.size):
        if rng.random() < probability:
            hit[p] = True
            new_stock[p] = stock[p] * (1.0 - severity)
    return new_stock, hit


@numba.njit(cache=True, nogil=True)
def mark_collapse(stock: FloatArray, threshold: float, collapsed: BoolArray) -> tuple[FloatArray, BoolArray]:
    """Patches whose stock falls below `threshold` collapse for good; collapsed patches hold no stock."""
    new_stock = stock.copy()
    new_collapsed = collapsed.copy()
    for p in range(stock.size):
        if stock[p] < threshold:
            new_collapsed[p] = True
        if new_collapsed[p]:
            new_stock[p] = 0.0
    return new_stock, new_collapsed


# ---- Ostrom's laboratory CPR game -----------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def cpr_returns(investment: FloatArray, a: float, b: float) -> FloatArray:
    """Ostrom's CPR game: the group return a*X - b*X^2 on total investment X, shared in proportion to investment."""
    total = 0.0
    for i in range(investment.size):
        total += investment[i]
    payoff = np.zeros(investment.size)
    if total == 0.0:
        return payoff
    group_return = a * total - b * total * total
    for i in range(investment.size):
        payoff[i] = investment[i] / total * group_return
    return payoff
