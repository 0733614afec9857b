"""The norms kernels equal their numpy references on random graphs and inputs."""

from __future__ import annotations

import numpy as np
import pytest

from norms import kernels
from society.world.graph import neighbor_mean
from tests.norms import references as ref

SEEDS = range(6)
SIZES = [0, 1, 7, 60, 400]


def random_csr(rng: np.random.Generator, n: int, max_degree: int) -> tuple[np.ndarray, np.ndarray]:
    """A random directed graph in CSR form, isolated nodes and repeated neighbours included."""
    degree = rng.integers(0, max_degree + 1, n)
    indptr = np.concatenate([[0], np.cumsum(degree)]).astype(np.int64)
    return indptr, rng.integers(0, max(n, 1), indptr[-1]).astype(np.int64)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("seed", SEEDS)
def test_imitation_sources_equals_reference(seed: int, n: int) -> None:
    rng = np.random.default_rng([seed, n])
    indptr, indices = random_csr(rng, n, 9)
    payoff = np.round(rng.normal(0, 5, n), 1)  # rounded, so equal payoffs (no gain) occur
    rows = np.sort(rng.choice(n, size=n // 2, replace=False)).astype(np.int64) if n else np.zeros(0, np.int64)
    pick, accept = rng.random(rows.size), rng.random(rows.size)
    scale = float(np.ptp(payoff)) if n else 0.0
    got = kernels.imitation_sources(indptr, indices, payoff, rows, pick, accept, scale)
    want = ref.imitation_sources_reference(indptr, indices, payoff, rows, pick, accept, scale)
    np.testing.assert_array_equal(got, want)
    copied = got >= 0
    assert np.all(payoff[got[copied]] > payoff[rows[copied]])


def test_imitation_copies_only_better_paid_and_never_with_zero_scale() -> None:
    indptr = np.array([0, 1, 2], np.int64)
    indices = np.array([1, 0], np.int64)
    payoff = np.array([1.0, 3.0])
    rows = np.array([0, 1], np.int64)
    sure = np.zeros(2)
    np.testing.assert_array_equal(kernels.imitation_sources(indptr, indices, payoff, rows, sure, sure, 2.0), [1, -1])
    np.testing.assert_array_equal(kernels.imitation_sources(indptr, indices, payoff, rows, sure, sure, 0.0), [-1, -1])
    # accepted only when accept < gain / scale = 0.5
    np.testing.assert_array_equal(
        kernels.imitation_sources(indptr, indices, payoff, rows, sure, np.array([0.6, 0.0]), 4.0), [-1, -1]
    )


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("seed", SEEDS)
def test_neighbour_median_equals_reference(seed: int, n: int) -> None:
    rng = np.random.default_rng([seed, n, 1])
    indptr, indices = random_csr(rng, n, 8)
    values = rng.uniform(0, 3, n)
    rows = np.arange(n, dtype=np.int64)
    np.testing.assert_array_equal(
        kernels.neighbour_median(indptr, indices, values, rows),
        ref.neighbour_median_reference(indptr, indices, values, rows),
    )


@pytest.mark.parametrize(("probability", "max_targets"), [(1.0, 0), (0.5, 0), (0.7, 2), (1.0, 1)])
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("seed", SEEDS)
def test_norm_punishments_equals_reference(seed: int, n: int, probability: float, max_targets: int) -> None:
    data = np.random.default_rng([seed, n, 2])
    indptr, indices = random_csr(data, n, 8)
    is_punisher = data.random(n) < 0.6
    norm, ratio = data.uniform(0.5, 2.0, n), data.uniform(0.0, 3.0, n)
    kernel_rng, reference_rng = np.random.default_rng(seed), np.random.default_rng(seed)
    got = kernels.norm_punishments(indptr, indices, is_punisher, norm, ratio, 0.1, probability, max_targets, kernel_rng)
    want = ref.norm_punishments_reference(
        indptr, indices, is_punisher, norm, ratio, 0.1, probability, max_targets, reference_rng
    )
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert kernel_rng.bit_generator.state == reference_rng.bit_generator.state
    actors, targets = got
    assert np.all(is_punisher[actors]) and np.all(ratio[targets] > norm[actors] * 1.1)
    if max_targets:
        assert np.bincount(actors, minlength=n).max(initial=0) <= max_targets


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("seed", SEEDS)
def test_heard_mean_equals_reference_and_with_everyone_speaking_the_neighbour_mean(seed: int, n: int) -> None:
    rng = np.random.default_rng([seed, n, 1])
    indptr, indices = random_csr(rng, n, 9)
    values = rng.normal(1.0, 0.5, n)
    spoke = rng.random(n) < 0.7
    got, count = kernels.heard_mean(indptr, indices, values, spoke)
    want, want_count = ref.heard_mean_reference(indptr, indices, values, spoke)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(count, want_count)
    assert np.all(np.isnan(got) == (count == 0))
    everyone, heard = kernels.heard_mean(indptr, indices, values, np.ones(n, dtype=bool))
    linked = np.diff(indptr) > 0
    np.testing.assert_array_equal(heard, np.diff(indptr))
    np.testing.assert_array_equal(everyone[linked], neighbor_mean(indptr, indices, values, values)[linked])
