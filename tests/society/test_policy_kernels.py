"""The policies' request kernel equals its numpy reference bit for bit, on one thread and on all of them."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from society import graph as graphs
from society import policy_kernels as pk
from society.kernel_threads import PARALLEL_MIN_WORK, kernel_threads

RULES = [pk.SCALED_SHARE, pk.NEIGHBOUR_RATIO, pk.OWN_RATIO, pk.FIXED_AMOUNT]


def case(seed: int, n: int) -> dict:
    """A random graph (with isolated nodes), shares with zeros, caps that bind for some, and a random group."""
    rng = np.random.default_rng([31, seed, n])
    g = graphs.erdos_renyi(n, min(1.0, 4.0 / max(n, 1)), rng)
    fair_share = rng.uniform(0.0, 10.0, n)
    fair_share[rng.random(n) < 0.1] = 0.0
    return {
        "members": np.flatnonzero(rng.random(n) < 0.6),
        "values": rng.uniform(0.0, 3.0, n),
        "indptr": g.indptr,
        "indices": g.indices,
        "fair_share": fair_share,
        "max_take": np.where(rng.random(n) < 0.2, rng.uniform(0.0, 5.0, n), 1e9),
    }


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("noise", [0.0, 0.3, 1.5])  # 1.5: many negative requests, clipped to 0
@pytest.mark.parametrize(("seed", "n"), [(0, 0), (1, 1), (2, 7), (3, 300), (4, 5000)])
def test_group_requests_equal_reference(rule: int, noise: float, seed: int, n: int) -> None:
    data = case(seed, n)
    members = data.pop("members")
    draws = np.random.default_rng(seed).standard_normal(members.size) if noise else np.empty(0)
    expected, got = np.full(n, -1.0), np.full(n, -1.0)  # non-members must stay untouched
    args = (rule, 2.5, data["values"], data["indptr"], data["indices"], data["fair_share"], noise, draws,
            data["max_take"])
    pk.group_requests_reference(members, *args, expected)
    pk.group_requests(members, *args, got)
    assert np.array_equal(got, expected)
    assert not np.signbit(got[members]).any()  # np.clip's +0.0, never -0.0


def test_group_requests_on_one_thread_and_on_all() -> None:
    data = case(5, 40_000)
    members = data.pop("members")
    draws = np.random.default_rng(5).standard_normal(members.size)
    args = (pk.NEIGHBOUR_RATIO, 0.0, data["values"], data["indptr"], data["indices"], data["fair_share"], 0.2, draws,
            data["max_take"])
    one, every = np.zeros(40_000), np.zeros(40_000)
    with kernel_threads(0):
        pk.group_requests(members, *args, one)
    pk.group_requests(members, *args, every)
    assert np.array_equal(one, every)


def test_kernel_threads_uses_one_thread_for_small_work_and_restores() -> None:
    before = numba.get_num_threads()
    with kernel_threads(PARALLEL_MIN_WORK - 1):
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == before
    with kernel_threads(PARALLEL_MIN_WORK):
        assert numba.get_num_threads() == before
    with pytest.raises(RuntimeError), kernel_threads(0):
        raise RuntimeError
    assert numba.get_num_threads() == before


@pytest.mark.parametrize("size", [0, 1, 1000, 100_000])
def test_standard_normals_equal_numpy_and_leave_the_same_state(size: int) -> None:
    kernel_rng, reference_rng = np.random.default_rng(size), np.random.default_rng(size)
    got = pk.standard_normals(kernel_rng, size)
    assert np.array_equal(got, pk.standard_normals_reference(reference_rng, size))
    assert kernel_rng.bit_generator.state == reference_rng.bit_generator.state
