"""Heuristic policies: each one's rule on hand-checkable cases."""

from __future__ import annotations

import numpy as np
import pytest

from society import Society
from society.policies.heuristics import requested_takes
from tests.society.conftest import make_scenario

COMMONS = {"capacity": 1000, "initial_stock": 1000, "regrowth": {"kind": "doubling"}}


def society_of(policies: list[dict], size: int = 12, graph: dict | None = None) -> Society:
    return Society(
        make_scenario(
            population={"size": size, "policies": policies},
            graph=graph or {"kind": "ring", "k": 2},
            commons=COMMONS,
            schedule=["harvest"],
        )
    )


def test_sustainable_takes_govsim_share_and_greedy_a_multiple() -> None:
    society = society_of([{"policy": "sustainable", "fraction": 0.5}, {"policy": "greedy", "fraction": 0.5, "factor": 3}])
    fair = society.commons.fair_share()
    assert fair[0] == (1000 // 2) // 12
    requests = requested_takes(society, fair, np.full(12, 1e9))
    greedy = society.state["group"] == 1
    np.testing.assert_array_equal(requests[~greedy], fair[~greedy])
    np.testing.assert_array_equal(requests[greedy], 3 * fair[greedy])


def test_requests_are_capped_by_the_most_a_citizen_can_take() -> None:
    society = society_of([{"policy": "fixed", "fraction": 1.0, "amount": 50}])
    requests = requested_takes(society, np.full(12, 10.0), np.full(12, 20.0))
    assert requests.tolist() == [20.0] * 12


def test_conditional_matches_its_neighbours_last_ratio() -> None:
    society = society_of([{"policy": "conditional", "fraction": 1.0}])
    society.state["ratio"] = np.arange(12, dtype=np.float64)
    requests = requested_takes(society, np.full(12, 2.0), np.full(12, 1e9))
    for i in range(12):
        left, right = (i - 1) % 12, (i + 1) % 12
        assert requests[i] == pytest.approx(2.0 * (left + right) / 2)


def test_imitator_copies_a_better_paid_neighbour_only() -> None:
    society = society_of([{"policy": "imitator", "fraction": 1.0, "initial_ratio": [1.0, 1.0]}], size=3,
                         graph={"kind": "complete"})
    state = society.state
    state["payoff"] = np.array([5.0, 9.0, 1.0])
    state["ratio"] = np.array([1.0, 1.7, 0.4])
    requests = requested_takes(society, np.full(3, 10.0), np.full(3, 1e9))
    np.testing.assert_allclose(requests, [17.0, 10.0, 17.0])
    np.testing.assert_allclose(state["strategy"], [1.7, 1.0, 1.7])


def test_noise_is_seeded_and_centred() -> None:
    policies = [{"policy": "sustainable", "fraction": 1.0, "noise": 0.2}]
    first = requested_takes(society_of(policies, size=5000), np.full(5000, 10.0), np.full(5000, 1e9))
    second = requested_takes(society_of(policies, size=5000), np.full(5000, 10.0), np.full(5000, 1e9))
    np.testing.assert_array_equal(first, second)
    assert first.mean() == pytest.approx(10.0, rel=0.02)
    assert first.std() == pytest.approx(2.0, rel=0.1)
    assert first.min() >= 0
