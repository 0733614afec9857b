"""Round metrics: the Gini coefficient against its definition, alone and computed in pairs."""

from __future__ import annotations

import multiprocessing
import time

import numba
import numpy as np
import pytest

from society.core import metrics
from society.core.metrics import (
    BLAS_ONE_THREAD_MAX,
    CONCURRENT_SORT_MIN,
    ColumnGinis,
    blockwise_dot,
    gini,
    gini_pair,
    sorted_positive,
)
from society.core.state import CitizenState
from tests.society.references import sorted_positive_reference


def gini_by_definition(values: np.ndarray) -> float:
    """Mean absolute difference over all pairs, divided by twice the mean (negatives count as 0)."""
    x = np.clip(values, 0.0, None)
    if x.size == 0 or x.sum() == 0:
        return 0.0
    return float(np.abs(x[:, None] - x[None, :]).mean() / (2 * x.mean()))


@pytest.mark.parametrize("seed", range(5))
def test_gini_equals_its_definition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = rng.lognormal(0.0, 1.0, 400) - 0.2  # some negative values, counted as 0
    assert gini(values) == pytest.approx(gini_by_definition(values), rel=1e-12)


def test_gini_edge_cases() -> None:
    assert gini(np.array([])) == 0.0
    assert gini(np.zeros(5)) == 0.0
    assert gini(np.array([-3.0, -1.0])) == 0.0
    assert gini(np.full(7, 2.5)) == pytest.approx(0.0, abs=1e-15)
    assert gini(np.array([0.0, 0.0, 0.0, 12.0])) == pytest.approx(0.75)


def test_gini_leaves_its_input_alone() -> None:
    values = np.array([3.0, -1.0, 2.0])
    gini(values)
    assert values.tolist() == [3.0, -1.0, 2.0]


@pytest.mark.parametrize("n", [0, 1, 9_999, BLAS_ONE_THREAD_MAX, BLAS_ONE_THREAD_MAX + 1, 123_457])
def test_blockwise_dot_is_np_dot_up_to_one_block_and_its_blocks_in_order_beyond(n: int) -> None:
    rng = np.random.default_rng(n)
    first, second = rng.random(n), rng.pareto(2.0, n)
    blocks = [np.dot(first[start:start + BLAS_ONE_THREAD_MAX], second[start:start + BLAS_ONE_THREAD_MAX])
              for start in range(0, n, BLAS_ONE_THREAD_MAX)]
    expected = float(np.dot(first, second)) if n <= BLAS_ONE_THREAD_MAX else float(sum(blocks, 0.0))
    assert blockwise_dot(first, second) == expected
    assert blockwise_dot(first, second) == pytest.approx(float(np.dot(first, second)), rel=1e-13)


def test_a_large_gini_leaves_no_blas_thread_spinning() -> None:
    """A dot product over more than 10,000 values wakes OpenBLAS's threads, which then spin on a core for about a
    tenth of a second: after every round's Gini, a core the run's writer thread needed. The process must stay
    idle while it sleeps."""
    values = np.random.default_rng(0).random(100_000)
    time.sleep(0.2)  # threads an earlier test woke go back to sleep
    quiet = cpu_while_sleeping(0.2)  # what other threads of this process use anyway
    gini(values)
    assert cpu_while_sleeping(0.2) < quiet + 0.05


def cpu_while_sleeping(seconds: float) -> float:
    """CPU seconds every thread of this process uses while this one sleeps."""
    started = time.process_time()
    time.sleep(seconds)
    return time.process_time() - started


@pytest.mark.parametrize("n", [1000, CONCURRENT_SORT_MIN])  # the second sorts on two threads
def test_gini_pair_equals_two_ginis(n: int) -> None:
    rng = np.random.default_rng(n)
    first, second = rng.random(n) - 0.2, rng.pareto(2.0, n + 7)  # some negatives; lengths apart
    second[::3] = 0.0
    assert gini_pair(first, second) == (gini(first), gini(second))
    assert gini_pair(-first, np.zeros(n)) == (gini(-first), 0.0)


def test_gini_pair_keeps_to_one_thread_where_the_run_may_use_only_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """A sweep gives each run its share of the CPUs as Numba's thread count; with one, both sorts stay here."""
    monkeypatch.setattr(metrics, "_sort_thread", lambda: pytest.fail("sorted on the worker thread"))
    first, second = np.random.default_rng(5).random((2, CONCURRENT_SORT_MIN))
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        assert gini_pair(first, second) == (gini(first), gini(second))
    finally:
        numba.set_num_threads(previous)


def test_gini_pair_sorts_here_once_no_thread_may_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """After the interpreter began shutting down (a run in a thread outliving the main one) no task may start."""

    class ShutDown:
        def submit(self, *args: object) -> None:
            raise RuntimeError("cannot schedule new futures after interpreter shutdown")

    monkeypatch.setattr(metrics, "_sort_thread", ShutDown)
    first, second = np.random.default_rng(6).random((2, CONCURRENT_SORT_MIN))
    assert gini_pair(first, second) == (gini(first), gini(second))


def _gini_pair_of_ones(queue: multiprocessing.Queue) -> None:
    queue.put(gini_pair(np.ones(CONCURRENT_SORT_MIN), np.ones(CONCURRENT_SORT_MIN)))


def test_gini_pair_in_a_forked_child_sorts_on_a_thread_of_its_own() -> None:
    """A forked child has none of its parent's threads: its pair must not wait on the parent's sorting thread."""
    gini_pair(np.ones(CONCURRENT_SORT_MIN), np.ones(CONCURRENT_SORT_MIN))  # the parent's thread exists
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_gini_pair_of_ones, args=(queue,))
    child.start()
    child.join(30)
    if child.is_alive():
        child.kill()
    assert queue.get(timeout=1) == (0.0, 0.0)


def test_column_ginis_sort_again_only_the_columns_that_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    state = CitizenState(500)
    state.add("wealth", np.float64)[:] = rng.pareto(2.0, 500)
    state.add("take", np.float64)[:] = rng.random(500)
    sorted_arrays: list[int] = []
    real_gini = metrics.gini
    monkeypatch.setattr(metrics, "gini", lambda values: sorted_arrays.append(values.size) or real_gini(values))
    ginis = ColumnGinis("wealth", "take")

    assert ginis(state) == (real_gini(state["wealth"]), real_gini(state["take"]))
    assert len(sorted_arrays) == 2
    assert ginis(state) == (real_gini(state["wealth"]), real_gini(state["take"]))
    assert len(sorted_arrays) == 2  # nothing changed: nothing sorted
    state["take"][7] += 1.0  # changed in place, as phases do
    assert ginis(state) == (real_gini(state["wealth"]), real_gini(state["take"]))
    assert len(sorted_arrays) == 3
    state["wealth"][:] = 1.0
    state["take"][:] = np.nan  # a NaN never equals itself: always sorted again
    assert ginis(state)[0] == pytest.approx(0.0, abs=1e-15)
    ginis(state)
    assert len(sorted_arrays) == 6


@pytest.mark.parametrize("n", [0, 1, 2, 17, 5000])
@pytest.mark.parametrize("seed", range(4))
def test_sorted_positive_equals_reference(seed: int, n: int) -> None:
    """Negatives, -0.0, ties, and values spanning many exponents (every byte of the keys in play)."""
    rng = np.random.default_rng([seed, n])
    values = rng.normal(0.0, 1.0, n) * 10.0 ** rng.integers(-5, 6, n)
    values[rng.random(n) < 0.1] = -0.0
    values[rng.random(n) < 0.1] = 3.0
    got = sorted_positive(values)
    assert np.array_equal(got, sorted_positive_reference(values))
    assert not np.signbit(got).any()


def test_sorted_positive_when_every_value_shares_most_bytes() -> None:
    values = np.array([1.0, 1.0 + 2.0**-52, 1.0, 0.5])  # only the lowest and highest bytes differ
    assert sorted_positive(values).tolist() == [0.5, 1.0, 1.0, 1.0 + 2.0**-52]


@pytest.mark.parametrize("run", [5, 5000])
def test_sorted_positive_of_near_equal_values_and_ties(run: int) -> None:
    rng = np.random.default_rng(run)
    values = np.r_[1.0 + rng.random(run) * 1e-9, np.repeat(2.0, run), rng.random(run)]
    assert np.array_equal(sorted_positive(rng.permutation(values)), sorted_positive_reference(values))
