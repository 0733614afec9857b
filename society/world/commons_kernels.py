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


@numba.njit(cache=True)
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


@numba.njit(cache=True)
def patch_totals(patch: IntArray, values: FloatArray, n_patches: int) -> FloatArray:
    """Per patch, the sum of its citizens' values, in citizen order (`np.bincount` without its checks)."""
    totals = np.zeros(n_patches)
    _add_by_patch(patch, values, totals)
    return totals


@numba.njit(cache=True)
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


@numba.njit(cache=True)
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


@numba.njit(cache=True)
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


@numba.njit(cache=True)
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


@numba.njit(cache=True)
def regrow_logistic(stock: FloatArray, capacity: FloatArray, rate: float) -> FloatArray:
    """Logistic regrowth s + rate*s*(1 - s/capacity), clipped to [0, capacity]; capacities must be positive."""
    new_stock = np.empty(stock.size)
    for p in range(stock.size):
        s = stock[p] + rate * stock[p] * (1.0 - stock[p] / capacity[p])
        new_stock[p] = min(max(s, 0.0), capacity[p])
    return new_stock


@numba.njit(cache=True)
def regrow_doubling(stock: FloatArray, capacity: FloatArray) -> FloatArray:
    """GovSim's regrowth: the stock doubles, up to capacity."""
    new_stock = np.empty(stock.size)
    for p in range(stock.size):
        new_stock[p] = min(capacity[p], 2.0 * stock[p])
    return new_stock


@numba.njit(cache=True)
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


@numba.njit(cache=True)
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


@numba.njit(cache=True)
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


# ---- punishment -----------------------------------------------------------------------------------------------


BY_TARGET_MAX_CITIZENS = 65_536
"""Largest population whose punishments are found from the violators' side. Its writes go to scattered
punishers' slots: measured in the benchmark's rounds (a quarter of citizens violating), 1.4-1.9x as fast as the
scan at 10,000 and 100,000 citizens in isolation but no faster inside a round at 100,000, and 2x slower at
1,000,000, where those writes miss the cache."""


def select_punishments(
    indptr: IntArray,
    indices: IntArray,
    is_punisher: BoolArray,
    violation: BoolArray,
    probability: float,
    max_targets: int,
    rng: np.random.Generator,
    undirected: bool = False,
) -> tuple[IntArray, IntArray]:
    """Punishers, in index order, punish each violating neighbour (CSR order) with `probability`, up to `max_targets`.

    Returns (actors, targets), sorted by actor and then in CSR order. Self-loops are never punished and a punisher
    stops once it has `max_targets` targets (``max_targets <= 0``: no limit).

    With ``probability >= 1`` every such neighbour is punished and no random numbers are drawn: `rng` is left
    untouched. Otherwise one ``rng.random()`` is drawn per violating neighbour considered; self-loops are skipped
    without a draw and a punisher stops drawing once it has `max_targets` targets.

    A thin wrapper around sequential passes over the edges: the outputs are allocated by numpy (only the pages
    written are ever touched; numpy backs large arrays with huge pages, where numba's own allocations fault in
    4 KiB pages). With no violation anywhere it returns at once: there is nobody to punish and nothing to draw.
    `undirected` says the graph is a `SocialGraph`'s (every edge in both directions, neighbour lists sorted, no
    self-loops); then, when every violating neighbour is punished, violators' edges are fewer than half the
    punishers' and the population is small, the acts are found from the violators' side (`_acts_by_target`),
    which gives the same arrays.
    """
    if not violation.any():
        return np.empty(0, np.int64), np.empty(0, np.int64)
    bound, violator_edges = _edge_totals(indptr, is_punisher, violation, max_targets)
    if (undirected and probability >= 1.0 and max_targets <= 0 and 2 * violator_edges < bound
            and violation.size <= BY_TARGET_MAX_CITIZENS):
        return _acts_by_target(indptr, indices, is_punisher, violation)
    actors = np.empty(bound, np.int64)
    targets = np.empty(bound, np.int64)
    k = _scan_punishments(indptr, indices, is_punisher, violation, probability, max_targets, rng, actors, targets)
    # Shrink to the k acts in place (a realloc, no copy); nothing else refers to these fresh buffers.
    actors.resize(k, refcheck=False)
    targets.resize(k, refcheck=False)
    return actors, targets


def _acts_by_target(
    indptr: IntArray, indices: IntArray, is_punisher: BoolArray, violation: BoolArray
) -> tuple[IntArray, IntArray]:
    """Every (punisher, violating neighbour) pair of an undirected graph, found from the violators' side.

    One pass over the violators' edges counts each punisher's acts, a second writes each act at its punisher's
    next slot. Violators are visited in index order, so each punisher's targets come out ascending, which is its
    CSR order in a `SocialGraph`.
    """
    slots = _act_starts(indptr, indices, is_punisher, violation)
    acts = int(slots[-1])
    actors = np.empty(acts, np.int64)
    targets = np.empty(acts, np.int64)
    _fill_acts_by_target(indptr, indices, is_punisher, violation, slots, actors, targets)
    return actors, targets


@numba.njit(cache=True)
def _act_starts(indptr: IntArray, indices: IntArray, is_punisher: BoolArray, violation: BoolArray) -> IntArray:
    """Where each punisher's acts begin in the output (`starts[i]`), and their total (`starts[n]`)."""
    n = violation.size
    starts = np.zeros(n + 1, np.int64)
    for j in range(n):
        if violation[j]:
            for e in range(indptr[j], indptr[j + 1]):
                i = indices[e]
                starts[i + 1] += is_punisher[np.uint64(i)]
    for i in range(n):
        starts[i + 1] += starts[i]
    return starts


@numba.njit(cache=True)
def _fill_acts_by_target(
    indptr: IntArray,
    indices: IntArray,
    is_punisher: BoolArray,
    violation: BoolArray,
    slots: IntArray,
    actors: IntArray,
    targets: IntArray,
) -> None:
    """Write each act at its punisher's next slot (advancing `slots`, which `_act_starts` returned)."""
    for j in range(violation.size):
        if violation[j]:
            for e in range(indptr[j], indptr[j + 1]):
                i = indices[e]
                if is_punisher[np.uint64(i)]:
                    slot = slots[i]
                    actors[slot] = i
                    targets[slot] = j
                    slots[i] = slot + 1


@numba.njit(cache=True)
def _edge_totals(indptr: IntArray, is_punisher: BoolArray, violation: BoolArray, max_targets: int) -> tuple[int, int]:
    """An upper bound on the number of acts (the punishers' degrees, each capped at `max_targets` if positive) and
    the violators' degrees summed."""
    bound = 0
    violator_edges = 0
    for i in range(is_punisher.size):
        degree = indptr[i + 1] - indptr[i]
        if is_punisher[i]:
            bound += degree if max_targets <= 0 else min(degree, max_targets)
        if violation[i]:
            violator_edges += degree
    return bound, violator_edges


@numba.njit(cache=True)
def _scan_punishments(
    indptr: IntArray,
    indices: IntArray,
    is_punisher: BoolArray,
    violation: BoolArray,
    probability: float,
    max_targets: int,
    rng: np.random.Generator,
    actors: IntArray,
    targets: IntArray,
) -> int:
    """One sequential scan writing the acts to actors/targets; returns their number.

    Sequential on purpose: a count pass and a fill pass split over two threads read the edges twice, and on a
    busy machine each parallel launch waits for a descheduled thread. When every violating neighbour is punished
    (no draws, no cap) the scan is branch-free, since whether a neighbour violates is unpredictable: each edge
    writes its target at position k and k advances only for an act (k stays below the bound, so the write
    fits); the punisher's id then fills its acts.
    """
    draw = probability < 1.0
    k = 0
    if not draw and max_targets <= 0:
        for i in range(is_punisher.size):
            if not is_punisher[i]:
                continue
            first = k
            for e in range(indptr[i], indptr[i + 1]):
                j = indices[e]
                targets[k] = j
                k += (j != i) & violation[np.uint64(j)]  # ids are >= 0: unsigned skips the wraparound
            for act in range(first, k):
                actors[act] = i
        return k
    for i in range(is_punisher.size):
        if not is_punisher[i]:
            continue
        punished = 0
        for e in range(indptr[i], indptr[i + 1]):
            j = indices[e]
            if j == i or not violation[np.uint64(j)]:
                continue
            if draw and not rng.random() < probability:
                continue
            actors[k] = i
            targets[k] = j
            k += 1
            punished += 1
            if punished == max_targets:  # never true for max_targets <= 0, as punished >= 1 here
                break
    return k


def select_punishments_reference(
    indptr: IntArray,
    indices: IntArray,
    is_punisher: BoolArray,
    violation: BoolArray,
    probability: float,
    max_targets: int,
    rng: np.random.Generator,
) -> tuple[IntArray, IntArray]:
    """Reference for `select_punishments` (with ``probability >= 1`` it draws nothing, like the kernel)."""
    draw = probability < 1.0
    acts: list[tuple[int, int]] = []
    for i in np.flatnonzero(is_punisher):
        punished = 0
        for j in indices[indptr[i] : indptr[i + 1]]:
            if max_targets > 0 and punished == max_targets:
                break
            if j != i and violation[j] and (not draw or rng.random() < probability):
                acts.append((i, j))
                punished += 1
    pairs = np.array(acts, dtype=np.int64).reshape(-1, 2)
    return pairs[:, 0].copy(), pairs[:, 1].copy()


def settle_punishments(
    actors: IntArray, targets: IntArray, n: int, cost: float, impact: float
) -> tuple[FloatArray, FloatArray]:
    """Per citizen: `cost` paid per punishment given and `impact` suffered per punishment received.

    A thin wrapper: the totals are numpy-allocated zeros (see `select_punishments`) that a kernel adds into.
    """
    paid = np.zeros(n)
    received = np.zeros(n)
    _settle_into(actors, targets, cost, impact, paid, received)
    return paid, received


@numba.njit(cache=True)
def _settle_into(
    actors: IntArray, targets: IntArray, cost: float, impact: float, paid: FloatArray, received: FloatArray
) -> None:
    """Add `cost` to paid[actors[k]] and `impact` to received[targets[k]] for every k, in order, one side at a time.

    Deliberately sequential: split over two threads it saved little on an idle two-core machine and lost a
    scheduler time slice whenever the other core was busy.
    """
    for k in range(actors.size):
        paid[actors[k]] += cost
    for k in range(targets.size):
        received[targets[k]] += impact


def settle_punishments_reference(
    actors: IntArray, targets: IntArray, n: int, cost: float, impact: float
) -> tuple[FloatArray, FloatArray]:
    """Reference for `settle_punishments`."""
    paid = np.zeros(n)
    received = np.zeros(n)
    np.add.at(paid, actors, cost)
    np.add.at(received, targets, impact)
    return paid, received


@numba.njit(cache=True)
def charge_punishments(
    paid: FloatArray, received: FloatArray, wealth: FloatArray, paid_total: FloatArray, received_total: FloatArray
) -> int:
    """Charge a round's punishments in one pass; returns how many citizens were punished.

    Takes what each citizen paid and suffered from its wealth and adds both to its running totals, in place.
    """
    punished = 0
    for i in range(wealth.size):
        wealth[i] -= paid[i] + received[i]
        paid_total[i] += paid[i]
        received_total[i] += received[i]
        punished += received[i] != 0.0
    return punished


def charge_punishments_reference(
    paid: FloatArray, received: FloatArray, wealth: FloatArray, paid_total: FloatArray, received_total: FloatArray
) -> int:
    """Reference for `charge_punishments`."""
    wealth -= paid + received
    paid_total += paid
    received_total += received
    return int(np.count_nonzero(received))


# ---- Ostrom's laboratory CPR game -----------------------------------------------------------------------------


@numba.njit(cache=True)
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
