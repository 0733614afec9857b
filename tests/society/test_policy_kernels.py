"""The policies' request and noise kernels equal their numpy references bit for bit (requests: serial and parallel)."""

from __future__ import annotations

import os
import subprocess
import sys

import numba
import numpy as np
import pytest

from society.core.kernel_threads import PARALLEL_MIN_WORK, kernel_threads
from society.policies import kernels as pk
from society.world import graph as graphs
from tests.society import references as ref

RULES = [pk.SCALED_SHARE, pk.NEIGHBOUR_RATIO, pk.OWN_RATIO, pk.FIXED_AMOUNT, pk.NO_REQUEST]


def case(seed: int, n: int, groups: int) -> dict:
    """A random graph (with isolated nodes), shares with zeros, caps that bind for some (zero for some), and
    citizens in random groups with random rules, factors and noise (1.5: many negative requests, clipped to 0)."""
    rng = np.random.default_rng([31, seed, n])
    g = graphs.erdos_renyi(n, min(1.0, 4.0 / max(n, 1)), rng)
    fair_share = rng.uniform(0.0, 10.0, n)
    fair_share[rng.random(n) < 0.1] = 0.0
    max_take = np.where(rng.random(n) < 0.2, rng.uniform(0.0, 5.0, n), 1e9)
    max_take[rng.random(n) < 0.1] = 0.0
    group = rng.integers(0, groups, n)
    noise = rng.choice([0.0, 0.3, 1.5], groups)
    return {
        "members": np.argsort(group, kind="stable").astype(np.int64),
        "starts": np.concatenate([[0], np.cumsum(np.bincount(group, minlength=groups))]).astype(np.int64),
        "rule": rng.choice(RULES, groups).astype(np.int64),
        "factor": rng.uniform(0.0, 3.0, groups),
        "noise": noise,
        "ratio": rng.uniform(0.0, 3.0, n),
        "strategy": rng.uniform(0.0, 3.0, n),
        "indptr": g.indptr,
        "indices": g.indices,
        "fair_share": fair_share,
        "draws": rng.standard_normal(n) if noise.any() else np.empty(0),
        "max_take": max_take,
    }


@pytest.mark.parametrize("groups", [1, 3, 8])
@pytest.mark.parametrize(("seed", "n"), [(0, 0), (1, 1), (2, 7), (3, 300), (4, 5000), (5, 5000), (6, 5000)])
def test_citizen_requests_equal_reference(seed: int, n: int, groups: int) -> None:
    data = case(seed, n, groups)
    expected, got, parallel = np.full(n, -1.0), np.full(n, -1.0), np.full(n, -1.0)  # every entry is written
    ref.citizen_requests_reference(*data.values(), expected)
    pk.citizen_requests(*data.values(), got)
    pk.citizen_requests_parallel(*data.values(), parallel)
    assert np.array_equal(got, expected)
    assert np.array_equal(parallel, expected)
    assert not np.signbit(got).any()  # np.clip's +0.0, never -0.0
    assert np.all(got[data["max_take"] <= 0.0] == 0.0)
    silent = data["rule"][np.repeat(np.arange(groups), np.diff(data["starts"]))] == pk.NO_REQUEST
    assert np.all(got[data["members"][silent]] == 0.0)


@pytest.mark.parametrize("size", [0, 1, 1000, 100_000])
def test_noise_draws_equal_numpy_and_leave_the_same_state(size: int) -> None:
    rng = np.random.default_rng([7, size])
    noisy = rng.random(size) < 0.7
    max_take = np.where(rng.random(size) < 0.2, 0.0, 5.0)
    kernel_rng, reference_rng = np.random.default_rng(size), np.random.default_rng(size)
    got = pk.noise_draws(kernel_rng, noisy, max_take)
    assert np.array_equal(got, ref.noise_draws_reference(reference_rng, noisy, max_take))
    assert kernel_rng.bit_generator.state == reference_rng.bit_generator.state
    drawing = noisy & (max_take > 0)
    assert np.all(got[~drawing] == 0.0)
    assert np.count_nonzero(got) == np.count_nonzero(drawing)


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


SPIN_OF_A_PARALLEL_KERNEL = """
import numpy as np
from society.world import graph
print(__import__("os").environ.get("OMP_WAIT_POLICY"))
graph.neighbor_mean_of(np.array([0, 1, 2]), np.array([1, 0]), np.ones(2), np.zeros(2), np.array([0, 1]))
"""


def threading_layer() -> str:
    numba.get_num_threads()  # starts the layer if nothing has yet
    return numba.threading_layer()


@pytest.mark.skipif(threading_layer() != "omp", reason="the wait policy is OpenMP's")
@pytest.mark.parametrize(("preset", "spins"), [(None, "'0'"), ("ACTIVE", "'30000000000'")])
def test_idle_kernel_threads_sleep_unless_the_environment_says_otherwise(preset: str | None, spins: str) -> None:
    """GNU OpenMP shows its spin count; the variable is not left behind for processes the run starts."""
    environment = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    environment["OMP_DISPLAY_ENV"] = "VERBOSE"
    if preset is not None:
        environment["OMP_WAIT_POLICY"] = preset
    done = subprocess.run([sys.executable, "-c", SPIN_OF_A_PARALLEL_KERNEL], env=environment, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(preset)
    if "GOMP_SPINCOUNT" not in done.stderr:
        pytest.skip("Numba's OpenMP runtime is not GNU's, which shows its spin count")
    assert f"GOMP_SPINCOUNT = {spins}" in done.stderr, done.stderr


def test_a_pass_counts_the_neighbours_only_of_citizens_whose_rule_reads_them() -> None:
    from society.policies.heuristics import PolicyRules
    from society.scenario.schema import ConditionalPolicy, SustainablePolicy

    graph = graphs.barabasi_albert(200, 3, np.random.default_rng(5))
    group = np.random.default_rng(6).integers(0, 2, 200)
    specs = [SustainablePolicy(policy="sustainable", fraction=0.5),
             ConditionalPolicy(policy="conditional", fraction=0.5)]
    assert PolicyRules.of(specs, group, graph).work == 200 + graph.degrees[group == 1].sum()
    assert PolicyRules.of(specs[:1], np.zeros(200, np.int64), graph).work == 200
