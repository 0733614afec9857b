"""Plain numpy twins of the society kernels: each `X_reference` equals kernel `X` bit for bit, which the tests check.

They follow the kernels' conventions (`society.world.commons_kernels`): the same scalar ``rng.random()`` draws in
the same order, and sums accumulated sequentially in index order (``np.bincount``, ``np.add.at``).
"""

from __future__ import annotations

import functools
import math
import operator

import numpy as np

from society.policies.kernels import FIXED_AMOUNT, NEIGHBOUR_RATIO, NO_REQUEST, OWN_RATIO, SCALED_SHARE
from society.world.commons_kernels import BoolArray, FloatArray, IntArray

# ---- society.world.graph --------------------------------------------------------------------------------------


def neighbor_mean_reference(indptr: IntArray, indices: IntArray, values: FloatArray,
                            default: FloatArray) -> FloatArray:
    """Reference for `neighbor_mean`."""
    degree = np.diff(indptr)
    rows = np.repeat(np.arange(degree.size), degree)
    sums = np.bincount(rows, weights=values[indices], minlength=degree.size)
    out = np.array(default, dtype=np.float64)
    linked = degree > 0
    out[linked] = sums[linked] / degree[linked]
    return out


def best_neighbor_reference(indptr: IntArray, indices: IntArray, score: FloatArray) -> IntArray:
    """Reference for `best_neighbor`."""
    out = np.full(indptr.size - 1, -1, dtype=np.int64)
    for i in range(out.size):
        neighbours = indices[indptr[i] : indptr[i + 1]]
        if neighbours.size:
            out[i] = neighbours[np.argmax(score[neighbours])]
    return out


# ---- society.world.commons_kernels ----------------------------------------------------------------------------


def allocate_proportional_reference(requests: FloatArray, patch: IntArray, stock: FloatArray) -> FloatArray:
    """Reference for `allocate_proportional`."""
    demand = np.bincount(patch, weights=requests, minlength=stock.size)
    scale = np.ones(stock.size)
    over = demand > stock
    scale[over] = stock[over] / demand[over]
    return requests * scale[patch]


def patch_totals_reference(patch: IntArray, values: FloatArray, n_patches: int) -> FloatArray:
    """Reference for `patch_totals`."""
    return np.bincount(patch, weights=values, minlength=n_patches)


def allocate_random_units_reference(
    requests: FloatArray, patch: IntArray, stock: FloatArray, rng: np.random.Generator
) -> FloatArray:
    """Reference for `allocate_random_units`."""
    wanted = np.floor(requests).astype(np.int64)
    granted = np.zeros(requests.size, np.int64)
    for p in range(stock.size):
        members = np.flatnonzero(patch == p)
        units = math.floor(stock[p])
        if wanted[members].sum() <= units:
            granted[members] = wanted[members]
            continue
        candidates = [i for i in members if wanted[i] > 0]
        for _ in range(units):
            pos = int(rng.random() * len(candidates))
            i = candidates[pos]
            granted[i] += 1
            if granted[i] == wanted[i]:
                candidates[pos] = candidates[-1]
                candidates.pop()
    return granted.astype(np.float64)


def record_takes_reference(
    fair_share: FloatArray, requests: FloatArray, granted: FloatArray,
    fair_out: FloatArray, requested_out: FloatArray, take_out: FloatArray, ratio_out: FloatArray,
    total_take: FloatArray,
) -> None:
    """Reference for `record_takes`."""
    fair_out[...] = fair_share
    requested_out[...] = requests
    take_out[...] = granted
    ratio_out[...] = np.divide(granted, fair_share, out=np.ones_like(granted), where=fair_share > 0)
    total_take += granted


def settle_harvest_reference(
    requests: FloatArray, granted: FloatArray, fair_share: FloatArray, memory: float,
    wealth: FloatArray, reputation: FloatArray,
) -> int:
    """Reference for `settle_harvest`."""
    wealth += granted
    compliant = (requests <= fair_share + 1e-9).astype(np.float64)
    reputation[...] = memory * reputation + (1 - memory) * compliant
    return int(np.count_nonzero(compliant == 0.0))


def regrow_logistic_reference(stock: FloatArray, capacity: FloatArray, rate: float) -> FloatArray:
    """Reference for `regrow_logistic`."""
    return np.clip(stock + rate * stock * (1.0 - stock / capacity), 0.0, capacity)


def regrow_doubling_reference(stock: FloatArray, capacity: FloatArray) -> FloatArray:
    """Reference for `regrow_doubling`."""
    return np.minimum(capacity, 2.0 * stock)


def diffuse_ring_reference(stock: FloatArray, rate: float) -> FloatArray:
    """Reference for `diffuse_ring`."""
    n_patches = stock.size
    left = np.arange(n_patches if n_patches > 2 else max(n_patches - 1, 0))
    right = (left + 1) % n_patches
    flow = rate * (stock[right] - stock[left])
    new_stock = stock.copy()
    np.add.at(new_stock, left, flow)
    np.subtract.at(new_stock, right, flow)
    return new_stock


def apply_shocks_reference(
    stock: FloatArray, probability: float, severity: float, rng: np.random.Generator
) -> tuple[FloatArray, BoolArray]:
    """Reference for `apply_shocks`."""
    hit = np.array([rng.random() < probability for _ in range(stock.size)], dtype=np.bool_)
    return np.where(hit, stock * (1.0 - severity), stock), hit


def mark_collapse_reference(
    stock: FloatArray, threshold: float, collapsed: BoolArray
) -> tuple[FloatArray, BoolArray]:
    """Reference for `mark_collapse`."""
    new_collapsed = collapsed | (stock < threshold)
    return np.where(new_collapsed, 0.0, stock), new_collapsed


def cpr_returns_reference(investment: FloatArray, a: float, b: float) -> FloatArray:
    """Reference for `cpr_returns`."""
    total = functools.reduce(operator.add, investment.tolist(), 0.0)  # left to right, like the kernel
    if total == 0.0:
        return np.zeros(investment.size)
    return investment / total * (a * total - b * total * total)


# ---- society.policies.kernels ---------------------------------------------------------------------------------


def noise_draws_reference(rng: np.random.Generator, noisy: BoolArray, max_take: FloatArray) -> FloatArray:
    """Reference for `noise_draws`."""
    drawing = noisy & ~(max_take <= 0.0)
    out = np.zeros(noisy.size)
    out[drawing] = rng.standard_normal(int(np.count_nonzero(drawing)))
    return out


def citizen_requests_reference(
    members: IntArray,
    starts: IntArray,
    rule: IntArray,
    factor: FloatArray,
    noise: FloatArray,
    ratio: FloatArray,
    strategy: FloatArray,
    indptr: IntArray,
    indices: IntArray,
    fair_share: FloatArray,
    draws: FloatArray,
    max_take: FloatArray,
    out: FloatArray,
) -> None:
    """Reference for `citizen_requests`."""
    group = np.repeat(np.arange(rule.size), np.diff(starts))[np.argsort(members)]
    kind, scale = rule[group], noise[group]
    requests = np.zeros(group.size)
    scaled = kind == SCALED_SHARE
    requests[scaled] = factor[group][scaled] * fair_share[scaled]
    neighbour = kind == NEIGHBOUR_RATIO
    mean = neighbor_mean_reference(indptr, indices, ratio, np.ones(indptr.size - 1))
    requests[neighbour] = mean[neighbour] * fair_share[neighbour]
    own = kind == OWN_RATIO
    requests[own] = strategy[own] * fair_share[own]
    fixed = kind == FIXED_AMOUNT
    requests[fixed] = factor[group][fixed]
    noisy = scale > 0.0
    if noisy.any():
        requests[noisy] = requests[noisy] * (1.0 + scale[noisy] * draws[noisy])
    asks = (kind != NO_REQUEST) & ~(max_take <= 0.0)
    out[:] = 0.0
    out[asks] = np.clip(requests[asks], 0.0, max_take[asks])


# ---- society.sanctioning --------------------------------------------------------------------------------------


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


def settle_punishments_reference(
    actors: IntArray, targets: IntArray, n: int, cost: float, impact: float
) -> tuple[FloatArray, FloatArray]:
    """Reference for `settle_punishments`."""
    paid = np.zeros(n)
    received = np.zeros(n)
    np.add.at(paid, actors, cost)
    np.add.at(received, targets, impact)
    return paid, received


def charge_punishments_reference(
    paid: FloatArray, received: FloatArray, wealth: FloatArray, paid_total: FloatArray, received_total: FloatArray
) -> int:
    """Reference for `charge_punishments`."""
    wealth -= paid + received
    paid_total += paid
    received_total += received
    return int(np.count_nonzero(received))


# ---- society.core.metrics -------------------------------------------------------------------------------------


def sorted_positive_reference(values: np.ndarray) -> np.ndarray:
    """Reference for `sorted_positive`."""
    return np.sort(values[~(values <= 0.0)])
