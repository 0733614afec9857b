"""Heuristic citizen policies, each deciding for all of its citizens at once."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from society.graph import best_neighbor_of, neighbor_mean_of
from society.scenario import (
    ConditionalPolicy,
    FixedPolicy,
    GreedyPolicy,
    ImitatorPolicy,
    LearnerPolicy,
    LLMPolicy,
    SustainablePolicy,
)

if TYPE_CHECKING:
    from society.model import Society


def requested_takes(society: Society, fair_share: np.ndarray, max_take: np.ndarray) -> np.ndarray:
    """What every citizen asks to take this round, given its fair share and the most it can take.

    Policies think in ratios to the fair share (`ratio` holds what each citizen took last round relative to
    its share), so their behaviour carries across rounds as the stock rises and falls. LLM citizens are left
    at 0: the phase asks the model for them.
    """
    state = society.state
    requests = np.zeros(society.num_citizens, dtype=np.float64)
    for group, spec in enumerate(society.policy_specs):
        members = society.group_members[group]
        if members.size == 0 or isinstance(spec, LLMPolicy):
            continue
        share = fair_share[members]
        if isinstance(spec, SustainablePolicy):
            requests[members] = share
        elif isinstance(spec, GreedyPolicy):
            requests[members] = spec.factor * share
        elif isinstance(spec, ConditionalPolicy):
            graph, isolated_default = society.graph, np.ones(society.num_citizens)
            ratio = neighbor_mean_of(graph.indptr, graph.indices, state["ratio"], isolated_default, members)
            requests[members] = ratio * share
        elif isinstance(spec, ImitatorPolicy):
            _imitate(society, members)
            requests[members] = state["strategy"][members] * share
        elif isinstance(spec, LearnerPolicy):
            requests[members] = state["strategy"][members] * share
        elif isinstance(spec, FixedPolicy):
            requests[members] = spec.amount
        if spec.noise > 0:
            rng = society.rng_tree(f"policy:{group}")
            requests[members] *= 1.0 + spec.noise * rng.standard_normal(members.size)
    return np.clip(requests, 0.0, max_take)


def _imitate(society: Society, members: np.ndarray) -> None:
    """Imitators adopt the last take ratio of their best-paid neighbour if it earned more than they did."""
    state = society.state
    payoff = state["payoff"]
    best = best_neighbor_of(society.graph.indptr, society.graph.indices, payoff, members)
    has_best = best >= 0
    better = np.zeros(members.size, dtype=np.bool_)
    better[has_best] = payoff[best[has_best]] > payoff[members[has_best]]
    state["strategy"][members[better]] = state["ratio"][best[better]]


def initial_strategies(society: Society) -> None:
    """Give imitators and learners their first take ratio, drawn from their policy's range."""
    rng = society.rng_tree("population")
    for group, spec in enumerate(society.policy_specs):
        if isinstance(spec, ImitatorPolicy | LearnerPolicy):
            members = society.group_members[group]
            low, high = spec.initial_ratio
            society.state["strategy"][members] = rng.uniform(low, high, members.size)
