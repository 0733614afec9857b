"""Every commons kernel equals its numpy reference bit for bit, and the kernels keep their documented promises."""

from __future__ import annotations

import numpy as np
import pytest

from society.world import commons_kernels as ck
from society.world import graph as graphs
from tests.society import references as ref

SEEDS = range(5)
# (citizens, patches), edge cases first: nobody anywhere, nobody on a patch, a single citizen, a single patch.
SIZES = [(0, 0), (0, 3), (1, 1), (6, 1), (9, 2), (40, 3), (250, 7), (600, 25)]
STOCKS = ["random", "zero", "exact", "ample", "scarce"]


def twin_generators(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Two identically seeded generators: one for the kernel, one for its reference."""
    return np.random.default_rng(seed), np.random.default_rng(seed)


def assert_same_state(a: np.random.Generator, b: np.random.Generator) -> None:
    assert a.bit_generator.state == b.bit_generator.state


def data_rng(*key: int) -> np.random.Generator:
    return np.random.default_rng([7919, *key])


def random_requests(rng: np.random.Generator, n: int) -> np.ndarray:
    """Fractional requests in [0, 12), a fifth exactly zero and a fifth whole numbers."""
    requests = rng.uniform(0.0, 12.0, n)
    requests[rng.random(n) < 0.2] = 0.0
    whole = rng.random(n) < 0.2
    requests[whole] = np.floor(requests[whole])
    return requests


def random_stock(rng: np.random.Generator, demand: np.ndarray, kind: str) -> np.ndarray:
    """Per-patch stock relative to per-patch `demand`: exactly equal, ample, scarce, zero or unrelated."""
    match kind:
        case "random":
            return rng.uniform(0.0, 60.0, demand.size)
        case "zero":
            return np.zeros(demand.size)
        case "exact":
            return demand.astype(np.float64)
        case "ample":
            return 2.0 * demand + 1.0
        case "scarce":
            return 0.4 * demand
    raise ValueError(kind)


def random_allocation_case(
    seed: int, n: int, n_patches: int, kind: str, whole: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Requests, patches, stock and per-patch demand (in whole units when `whole`) for one test case."""
    rng = data_rng(seed, n, n_patches, STOCKS.index(kind))
    requests = random_requests(rng, n)
    patch = rng.integers(0, n_patches, n) if n_patches else np.zeros(0, np.int64)
    basis = np.floor(requests) if whole else requests
    demand = np.bincount(patch, weights=basis, minlength=n_patches)
    return requests, patch, random_stock(rng, demand, kind), demand


def random_csr(rng: np.random.Generator, n: int, max_degree: int) -> tuple[np.ndarray, np.ndarray]:
    """A random directed graph in CSR form; self-loops and repeated neighbours included."""
    degree = rng.integers(0, max_degree + 1, n)
    indptr = np.concatenate([[0], np.cumsum(degree)]).astype(np.int64)
    return indptr, rng.integers(0, max(n, 1), indptr[-1])


# ---- allocate_proportional ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", STOCKS)
@pytest.mark.parametrize(("n", "n_patches"), SIZES)
@pytest.mark.parametrize("seed", SEEDS)
def test_allocate_proportional(seed: int, n: int, n_patches: int, kind: str) -> None:
    requests, patch, stock, demand = random_allocation_case(seed, n, n_patches, kind, whole=False)
    granted = ck.allocate_proportional(requests, patch, stock)
    np.testing.assert_array_equal(granted, ref.allocate_proportional_reference(requests, patch, stock))

    assert np.all(granted >= 0.0) and np.all(granted <= requests)
    taken = np.bincount(patch, weights=granted, minlength=n_patches)
    assert np.all(taken <= stock * (1 + 1e-12))
    fits = (demand <= stock)[patch]
    np.testing.assert_array_equal(granted[fits], requests[fits])
    if kind in ("exact", "ample"):
        np.testing.assert_array_equal(granted, requests)


def test_allocate_proportional_shares_pro_rata() -> None:
    granted = ck.allocate_proportional(np.array([1.0, 3.0, 5.0]), np.array([0, 0, 1]), np.array([2.0, 9.0]))
    np.testing.assert_allclose(granted, [0.5, 1.5, 5.0])


@pytest.mark.parametrize(("n", "n_patches"), SIZES)
@pytest.mark.parametrize("seed", SEEDS)
def test_patch_totals(seed: int, n: int, n_patches: int) -> None:
    requests, patch, _, _ = random_allocation_case(seed, n, n_patches, "random", whole=False)
    expected = ref.patch_totals_reference(patch, requests, n_patches)
    np.testing.assert_array_equal(ck.patch_totals(patch, requests, n_patches), expected)


# ---- harvest accounting ---------------------------------------------------------------------------------------


def harvest_case(seed: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shares (a fifth zero), requests around them (some exactly equal) and takes of at most the requests."""
    rng = data_rng(seed, n)
    fair_share = rng.uniform(0.0, 10.0, n)
    fair_share[rng.random(n) < 0.2] = 0.0
    requests = fair_share * rng.uniform(0.5, 2.0, n)
    equal = rng.random(n) < 0.2
    requests[equal] = fair_share[equal]
    return fair_share, requests, requests * rng.uniform(0.0, 1.0, n)


@pytest.mark.parametrize("n", [0, 1, 9, 600])
@pytest.mark.parametrize("seed", SEEDS)
def test_record_takes(seed: int, n: int) -> None:
    fair_share, requests, granted = harvest_case(seed, n)
    before = data_rng(seed, n, 1).uniform(0.0, 50.0, (5, n))
    kernel, reference = before.copy(), before.copy()
    ck.record_takes(fair_share, requests, granted, *kernel)
    ref.record_takes_reference(fair_share, requests, granted, *reference)
    np.testing.assert_array_equal(kernel, reference)
    np.testing.assert_array_equal(kernel[4], before[4] + granted)


@pytest.mark.parametrize("memory", [0.0, 0.8, 1.0])
@pytest.mark.parametrize("n", [0, 1, 9, 600])
@pytest.mark.parametrize("seed", SEEDS)
def test_settle_harvest(seed: int, n: int, memory: float) -> None:
    fair_share, requests, granted = harvest_case(seed, n)
    before = data_rng(seed, n, 2).uniform(0.0, 1.0, (2, n))
    kernel, reference = before.copy(), before.copy()
    over = ck.settle_harvest(requests, granted, fair_share, memory, *kernel)
    assert over == ref.settle_harvest_reference(requests, granted, fair_share, memory, *reference)
    np.testing.assert_array_equal(kernel, reference)
    assert over == np.count_nonzero(requests > fair_share + 1e-9)


# ---- allocate_random_units ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", STOCKS)
@pytest.mark.parametrize(("n", "n_patches"), SIZES)
@pytest.mark.parametrize("seed", SEEDS)
def test_allocate_random_units(seed: int, n: int, n_patches: int, kind: str) -> None:
    requests, patch, stock, demand = random_allocation_case(seed, n, n_patches, kind, whole=True)
    inputs = (requests.copy(), patch.copy(), stock.copy())
    kernel_rng, reference_rng = twin_generators(seed)
    granted = ck.allocate_random_units(requests, patch, stock, kernel_rng)
    np.testing.assert_array_equal(granted, ref.allocate_random_units_reference(requests, patch, stock, reference_rng))
    assert_same_state(kernel_rng, reference_rng)
    for before, after in zip(inputs, (requests, patch, stock)):
        np.testing.assert_array_equal(before, after)

    np.testing.assert_array_equal(granted, np.floor(granted))
    assert np.all(granted >= 0.0) and np.all(granted <= np.floor(requests))
    taken = np.bincount(patch, weights=granted, minlength=n_patches)
    np.testing.assert_array_equal(taken, np.minimum(demand, np.floor(stock)))
    if kind in ("exact", "ample"):
        np.testing.assert_array_equal(granted, np.floor(requests))


@pytest.mark.parametrize("seed", SEEDS)
def test_allocate_random_units_floors_stock(seed: int) -> None:
    requests = np.array([3.9, 2.0, 0.7, 5.5])
    stock = np.array([9.99])  # 9 whole units for a demand of 3 + 2 + 0 + 5 = 10
    kernel_rng, reference_rng = twin_generators(seed)
    patch = np.zeros(requests.size, np.int64)
    granted = ck.allocate_random_units(requests, patch, stock, kernel_rng)
    np.testing.assert_array_equal(granted, ref.allocate_random_units_reference(requests, patch, stock, reference_rng))
    assert granted.sum() == 9.0 and granted[2] == 0.0
    assert_same_state(kernel_rng, reference_rng)


def test_allocate_random_units_draws_only_when_rationing() -> None:
    rng = np.random.default_rng(1)
    ck.allocate_random_units(np.array([2.0, 3.0]), np.array([0, 0]), np.array([5.0]), rng)
    assert_same_state(rng, np.random.default_rng(1))


def test_allocate_random_units_one_crowded_patch() -> None:
    rng = data_rng(99)
    requests = rng.integers(0, 5, 5000).astype(np.float64)
    patch = np.zeros(requests.size, np.int64)
    stock = np.array([0.5 * requests.sum() + 0.25])
    kernel_rng, reference_rng = twin_generators(3)
    granted = ck.allocate_random_units(requests, patch, stock, kernel_rng)
    np.testing.assert_array_equal(granted, ref.allocate_random_units_reference(requests, patch, stock, reference_rng))
    assert_same_state(kernel_rng, reference_rng)
    assert granted.sum() == np.floor(stock[0])


# ---- regrowth, shocks, diffusion, collapse --------------------------------------------------------------------


PATCH_COUNTS = [0, 1, 2, 3, 10, 257]


def random_patch_stock(seed: int, n_patches: int) -> tuple[np.ndarray, np.ndarray]:
    """Capacities and stocks on [0, 1.3 capacity], with some patches empty and some exactly full."""
    rng = data_rng(seed, n_patches)
    capacity = rng.uniform(1.0, 200.0, n_patches)
    stock = capacity * rng.uniform(0.0, 1.3, n_patches)
    stock[rng.random(n_patches) < 0.15] = 0.0
    full = rng.random(n_patches) < 0.15
    stock[full] = capacity[full]
    return stock, capacity


@pytest.mark.parametrize("rate", [0.0, 0.15, 1.0, 2.5])
@pytest.mark.parametrize("n_patches", PATCH_COUNTS)
@pytest.mark.parametrize("seed", SEEDS)
def test_regrow_logistic(seed: int, n_patches: int, rate: float) -> None:
    stock, capacity = random_patch_stock(seed, n_patches)
    new_stock = ck.regrow_logistic(stock, capacity, rate)
    np.testing.assert_array_equal(new_stock, ref.regrow_logistic_reference(stock, capacity, rate))
    assert np.all((new_stock >= 0.0) & (new_stock <= capacity))


@pytest.mark.parametrize("n_patches", PATCH_COUNTS)
@pytest.mark.parametrize("seed", SEEDS)
def test_regrow_doubling(seed: int, n_patches: int) -> None:
    stock, capacity = random_patch_stock(seed, n_patches)
    new_stock = ck.regrow_doubling(stock, capacity)
    np.testing.assert_array_equal(new_stock, ref.regrow_doubling_reference(stock, capacity))
    np.testing.assert_array_equal(new_stock, np.minimum(capacity, 2.0 * stock))


def test_regrow_doubling_caps_at_capacity() -> None:
    np.testing.assert_array_equal(ck.regrow_doubling(np.array([10.0, 60.0]), np.array([100.0, 100.0])), [20.0, 100.0])


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.5])
@pytest.mark.parametrize("n_patches", PATCH_COUNTS)
@pytest.mark.parametrize("seed", SEEDS)
def test_diffuse_ring(seed: int, n_patches: int, rate: float) -> None:
    stock, _ = random_patch_stock(seed, n_patches)
    new_stock = ck.diffuse_ring(stock, rate)
    np.testing.assert_array_equal(new_stock, ref.diffuse_ring_reference(stock, rate))
    np.testing.assert_allclose(new_stock.sum(), stock.sum(), rtol=1e-9)


def test_diffuse_ring_small_rings() -> None:
    np.testing.assert_array_equal(ck.diffuse_ring(np.array([7.0]), 0.3), [7.0])
    np.testing.assert_allclose(ck.diffuse_ring(np.array([0.0, 10.0]), 0.1), [1.0, 9.0])  # one pair, not two
    np.testing.assert_allclose(ck.diffuse_ring(np.array([0.0, 10.0, 0.0]), 0.1), [1.0, 8.0, 1.0])


@pytest.mark.parametrize("probability", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("n_patches", PATCH_COUNTS)
@pytest.mark.parametrize("seed", SEEDS)
def test_apply_shocks(seed: int, n_patches: int, probability: float) -> None:
    stock, _ = random_patch_stock(seed, n_patches)
    kernel_rng, reference_rng = twin_generators(seed)
    new_stock, hit = ck.apply_shocks(stock, probability, 0.4, kernel_rng)
    expected_stock, expected_hit = ref.apply_shocks_reference(stock, probability, 0.4, reference_rng)
    np.testing.assert_array_equal(new_stock, expected_stock)
    np.testing.assert_array_equal(hit, expected_hit)
    assert_same_state(kernel_rng, reference_rng)

    assert hit.dtype == np.bool_
    np.testing.assert_array_equal(new_stock[~hit], stock[~hit])
    np.testing.assert_array_equal(new_stock[hit], stock[hit] * 0.6)
    if probability in (0.0, 1.0):
        assert np.all(hit == bool(probability))
    untouched = np.random.default_rng(seed)
    untouched.random(n_patches)  # one draw per patch, whatever the probability
    assert_same_state(kernel_rng, untouched)


@pytest.mark.parametrize("threshold", [0.0, 1.0, 50.0])
@pytest.mark.parametrize("n_patches", PATCH_COUNTS)
@pytest.mark.parametrize("seed", SEEDS)
def test_mark_collapse(seed: int, n_patches: int, threshold: float) -> None:
    stock, _ = random_patch_stock(seed, n_patches)
    collapsed = data_rng(seed, n_patches, 1).random(n_patches) < 0.2
    stock_before, collapsed_before = stock.copy(), collapsed.copy()
    new_stock, new_collapsed = ck.mark_collapse(stock, threshold, collapsed)
    expected_stock, expected_collapsed = ref.mark_collapse_reference(stock, threshold, collapsed)
    np.testing.assert_array_equal(new_stock, expected_stock)
    np.testing.assert_array_equal(new_collapsed, expected_collapsed)
    np.testing.assert_array_equal(stock, stock_before)
    np.testing.assert_array_equal(collapsed, collapsed_before)

    assert np.all(new_collapsed[collapsed])
    assert np.all(new_stock[new_collapsed] == 0.0)
    np.testing.assert_array_equal(new_collapsed, collapsed | (stock < threshold))


# ---- Ostrom's CPR game ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 8, 1000])
@pytest.mark.parametrize("seed", SEEDS)
def test_cpr_returns(seed: int, n: int) -> None:
    rng = data_rng(seed, n)
    investment = rng.uniform(0.0, 25.0, n)
    investment[rng.random(n) < 0.2] = 0.0
    payoff = ck.cpr_returns(investment, 23.0, 0.25)
    np.testing.assert_array_equal(payoff, ref.cpr_returns_reference(investment, 23.0, 0.25))

    total = investment.sum()
    np.testing.assert_allclose(payoff.sum(), 23.0 * total - 0.25 * total**2, rtol=1e-9, atol=1e-9)
    assert np.all(payoff[investment == 0.0] == 0.0)


def test_cpr_returns_ostrom_group() -> None:
    payoff = ck.cpr_returns(np.full(8, 8.0), 23.0, 0.25)
    assert payoff.sum() == 23 * 64 - 0.25 * 64**2 == 448.0
    np.testing.assert_array_equal(payoff, np.full(8, 56.0))


def test_cpr_returns_nobody_invests() -> None:
    np.testing.assert_array_equal(ck.cpr_returns(np.zeros(5), 23.0, 0.25), np.zeros(5))
