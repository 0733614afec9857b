"""The sanctioning kernels against their numpy references, bit for bit (random streams included)."""

from __future__ import annotations

import numpy as np
import pytest

from society import sanctioning
from society.core.kernel_threads import PARALLEL_MIN_WORK
from society.world import graph as graphs
from tests.society import references

from .test_commons_kernels import SEEDS, assert_same_state, data_rng, random_csr, twin_generators


@pytest.mark.parametrize("max_targets", [-1, 0, 1, 2])
@pytest.mark.parametrize("probability", [0.0, 0.4, 1.0])
@pytest.mark.parametrize("n", [0, 1, 2, 15, 300])
@pytest.mark.parametrize("seed", SEEDS)
def test_select_punishments(seed: int, n: int, probability: float, max_targets: int) -> None:
    rng = data_rng(seed, n)
    indptr, indices = random_csr(rng, n, max_degree=6)
    is_punisher = rng.random(n) < 0.5
    violation = rng.random(n) < 0.5
    kernel_rng, reference_rng = twin_generators(seed)
    args = (indptr, indices, is_punisher, violation, probability, max_targets)
    actors, targets = sanctioning.select_punishments(*args, kernel_rng)
    expected_actors, expected_targets = references.select_punishments_reference(*args, reference_rng)
    np.testing.assert_array_equal(actors, expected_actors)
    np.testing.assert_array_equal(targets, expected_targets)
    assert_same_state(kernel_rng, reference_rng)

    assert actors.dtype == targets.dtype == np.int64
    assert np.all(np.diff(actors) >= 0)
    assert np.all(is_punisher[actors]) and np.all(violation[targets]) and np.all(actors != targets)
    source = np.repeat(np.arange(n), np.diff(indptr))
    assert set(zip(actors.tolist(), targets.tolist())) <= set(zip(source.tolist(), indices.tolist()))
    if max_targets > 0:
        assert np.all(np.bincount(actors, minlength=n) <= max_targets)
    if probability == 1.0 and max_targets <= 0:
        eligible = is_punisher[source] & violation[indices] & (source != indices)
        assert actors.size == np.count_nonzero(eligible)
    if probability == 0.0:
        assert actors.size == 0
    if probability == 1.0:
        assert_same_state(kernel_rng, np.random.default_rng(seed))  # certain punishment draws nothing


@pytest.mark.parametrize("probability", [1.0, 1.5])
@pytest.mark.parametrize("max_targets", [-1, 0, 1, 3])
@pytest.mark.parametrize("seed", SEEDS)
def test_select_punishments_certain_draws_nothing(seed: int, max_targets: int, probability: float) -> None:
    rng = data_rng(seed, 4000)
    indptr, indices = random_csr(rng, 4000, max_degree=12)
    is_punisher = rng.random(4000) < 0.7
    violation = rng.random(4000) < 0.3
    args = (indptr, indices, is_punisher, violation)
    kernel_rng, reference_rng = twin_generators(seed)
    actors, targets = sanctioning.select_punishments(*args, probability, max_targets, kernel_rng)
    expected_actors, expected_targets = references.select_punishments_reference(*args, probability, max_targets, reference_rng)
    np.testing.assert_array_equal(actors, expected_actors)
    np.testing.assert_array_equal(targets, expected_targets)
    assert_same_state(kernel_rng, np.random.default_rng(seed))  # the random stream is untouched
    assert_same_state(reference_rng, np.random.default_rng(seed))

    # The parallel no-draw path gives what the sequential drawing path gives when every draw succeeds.
    just_below = np.nextafter(1.0, 0.0)  # rng.random() < just_below fails only for a draw of exactly 1 - 2**-53
    drawn_actors, drawn_targets = sanctioning.select_punishments(*args, just_below, max_targets, np.random.default_rng(seed))
    np.testing.assert_array_equal(actors, drawn_actors)
    np.testing.assert_array_equal(targets, drawn_targets)
    assert actors.dtype == targets.dtype == np.int64


@pytest.mark.parametrize("violators", [0.02, 0.2, 0.6])  # few: found from the violators' side; many: by the scan
@pytest.mark.parametrize("probability", [0.5, 1.0])
@pytest.mark.parametrize("max_targets", [0, 2])
@pytest.mark.parametrize(("seed", "n"), [(0, 1), (1, 40), (2, 3000)])
def test_select_punishments_on_an_undirected_graph(
    seed: int, n: int, max_targets: int, probability: float, violators: float
) -> None:
    rng = data_rng(seed, n)
    social = graphs.erdos_renyi(n, min(1.0, 8.0 / n), rng)
    is_punisher = rng.random(n) < 0.7
    violation = rng.random(n) < violators
    args = (social.indptr, social.indices, is_punisher, violation, probability, max_targets)
    kernel_rng, reference_rng = twin_generators(seed)
    actors, targets = sanctioning.select_punishments(*args, kernel_rng, undirected=True)
    expected_actors, expected_targets = references.select_punishments_reference(*args, reference_rng)
    np.testing.assert_array_equal(actors, expected_actors)
    np.testing.assert_array_equal(targets, expected_targets)
    assert_same_state(kernel_rng, reference_rng)
    assert actors.dtype == targets.dtype == np.int64


@pytest.mark.parametrize("runs", [2, 3, 7])
def test_the_scan_split_into_runs_finds_the_acts_of_one_scan(runs: int) -> None:
    """Above PARALLEL_MIN_WORK punisher edges each thread scans a run of citizens; the runs' acts, moved together,
    are one scan's (here more runs than the machine may have threads, some of them empty)."""
    rng = data_rng(12)
    social = graphs.watts_strogatz(3000, 10, 0.1, rng)
    is_punisher = rng.random(3000) < 0.8
    is_punisher[:500] = False  # the first runs hold no punisher edges
    violation = rng.random(3000) < 0.3
    bound, _ = sanctioning._edge_totals(social.indptr, is_punisher, violation, 0)
    found = []
    for split in (1, runs):
        actors, targets = np.empty(bound, np.int64), np.empty(bound, np.int64)
        k = sanctioning._scan_every_violator(social.indptr, social.indices, is_punisher, violation, bound, actors,
                                             targets, runs=split)
        found.append((actors[:k], targets[:k]))
    expected = references.select_punishments_reference(social.indptr, social.indices, is_punisher, violation, 1.0, 0,
                                                       np.random.default_rng(0))
    for actors, targets in found:
        np.testing.assert_array_equal(actors, expected[0])
        np.testing.assert_array_equal(targets, expected[1])


def test_a_scan_space_kept_across_rounds_gives_the_same_acts() -> None:
    rng = data_rng(14)
    social = graphs.watts_strogatz(2000, 10, 0.1, rng)
    space = sanctioning.ScanSpace()
    is_punisher = rng.random(2000) < 0.8
    rooms = []
    for violators, probability in [(0.6, 1.0), (0.9, 1.0), (0.7, 0.5), (0.7, 1.0)]:
        violation = rng.random(2000) < violators
        args = (social.indptr, social.indices, is_punisher, violation, probability, 0)
        kept = sanctioning.select_punishments(*args, np.random.default_rng(1), undirected=True, space=space)
        fresh = sanctioning.select_punishments(*args, np.random.default_rng(1), undirected=True)
        np.testing.assert_array_equal(kept[0], fresh[0])
        np.testing.assert_array_equal(kept[1], fresh[1])
        assert not np.shares_memory(kept[0], space.actors) and not np.shares_memory(kept[1], space.targets)
        rooms.append(space.actors)
    assert all(room is rooms[0] for room in rooms)  # the same punishers' edges: allocated once


def test_a_large_scan_runs_on_every_thread_and_finds_the_same_acts() -> None:
    rng = data_rng(13)
    n = sanctioning.BY_TARGET_MAX_CITIZENS + 1000
    social = graphs.watts_strogatz(n, 10, 0.1, rng)
    is_punisher = rng.random(n) < 0.9
    violation = rng.random(n) < 0.25
    bound, violator_edges = sanctioning._edge_totals(social.indptr, is_punisher, violation, 0)
    assert bound >= PARALLEL_MIN_WORK and n > sanctioning.BY_TARGET_MAX_CITIZENS  # the scan, on every thread
    actors, targets = sanctioning.select_punishments(social.indptr, social.indices, is_punisher, violation, 1.0, 0,
                                                     np.random.default_rng(0), undirected=True)
    expected = references.select_punishments_reference(social.indptr, social.indices, is_punisher, violation, 1.0, 0,
                                                       np.random.default_rng(0))
    np.testing.assert_array_equal(actors, expected[0])
    np.testing.assert_array_equal(targets, expected[1])


def test_punishments_from_the_violators_side_equal_the_scan() -> None:
    rng = data_rng(11)
    social = graphs.watts_strogatz(5000, 10, 0.1, rng)
    is_punisher = rng.random(5000) < 0.8
    violation = rng.random(5000) < 0.1  # violators' edges well under half the punishers': the violators' side
    bound, violator_edges = sanctioning._edge_totals(social.indptr, is_punisher, violation, 0)
    assert 2 * violator_edges < bound
    by_target = sanctioning._acts_by_target(social.indptr, social.indices, is_punisher, violation)
    scanned = sanctioning.select_punishments(social.indptr, social.indices, is_punisher, violation, 1.0, 0,
                                    np.random.default_rng(0))
    np.testing.assert_array_equal(by_target[0], scanned[0])
    np.testing.assert_array_equal(by_target[1], scanned[1])
    assert by_target[0].size > 1000


@pytest.mark.parametrize("probability", [0.0, 0.5, 1.0])
def test_select_punishments_nobody_to_punish(probability: float) -> None:
    indptr, indices = random_csr(data_rng(5), 50, max_degree=4)
    kernel_rng = np.random.default_rng(0)
    for is_punisher, violation in [(np.zeros(50, bool), np.ones(50, bool)), (np.ones(50, bool), np.zeros(50, bool))]:
        actors, targets = sanctioning.select_punishments(indptr, indices, is_punisher, violation, probability, 0, kernel_rng)
        assert actors.shape == targets.shape == (0,) and actors.dtype == targets.dtype == np.int64
    assert_same_state(kernel_rng, np.random.default_rng(0))  # nobody considered, so nothing drawn


@pytest.mark.parametrize("n", [0, 1, 10, 500])
@pytest.mark.parametrize("seed", SEEDS)
def test_settle_punishments(seed: int, n: int) -> None:
    rng = data_rng(seed, n)
    acts = rng.integers(0, 4 * n + 1)
    actors = rng.integers(0, max(n, 1), acts if n else 0)
    targets = rng.integers(0, max(n, 1), actors.size)
    paid, received = sanctioning.settle_punishments(actors, targets, n, 0.7, 2.3)
    expected_paid, expected_received = references.settle_punishments_reference(actors, targets, n, 0.7, 2.3)
    np.testing.assert_array_equal(paid, expected_paid)
    np.testing.assert_array_equal(received, expected_received)

    assert paid.shape == received.shape == (n,)
    np.testing.assert_allclose(paid.sum(), actors.size * 0.7, rtol=1e-12)
    np.testing.assert_allclose(received.sum(), actors.size * 2.3, rtol=1e-12)


@pytest.mark.parametrize("n", [0, 1, 9, 600])
@pytest.mark.parametrize("seed", SEEDS)
def test_charge_punishments(seed: int, n: int) -> None:
    rng = data_rng(seed, n, 3)
    paid, received = rng.uniform(0.0, 4.0, (2, n))
    paid[rng.random(n) < 0.5] = 0.0
    received[rng.random(n) < 0.5] = 0.0
    before = rng.uniform(-10.0, 10.0, (3, n))
    kernel, reference = before.copy(), before.copy()
    punished = sanctioning.charge_punishments(paid, received, *kernel)
    assert punished == references.charge_punishments_reference(paid, received, *reference) == np.count_nonzero(received)
    np.testing.assert_array_equal(kernel, reference)
