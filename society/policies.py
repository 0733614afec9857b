"""Heuristic citizen policies, each deciding for all of its citizens at once."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from society import policy_kernels as kernels
from society.graph import best_neighbor_of
from society.kernel_threads import kernel_threads
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

NO_VALUES = np.empty(0, dtype=np.float64)


def requested_takes(society: Society, fair_share: np.ndarray, max_take: np.ndarray) -> np.ndarray:
    """What every citizen asks to take this round, given its fair share and the most it can take.

    Policies think in ratios to the fair share (`ratio` holds what each citizen took last round relative to
    its share), so their behaviour carries across rounds as the stock rises and falls. LLM citizens are left
    at 0: the phase asks the model for them.
    """
    graph = society.graph
    fair_share = np.asarray(fair_share, dtype=np.float64)
    max_take = np.asarray(max_take, dtype=np.float64)
    requests = np.zeros(society.num_citizens, dtype=np.float64)
    for group, spec in enumerate(society.policy_specs):
        members = society.group_members[group]
        if members.size == 0 or isinstance(spec, LLMPolicy):
            continue
        if isinstance(spec, ImitatorPolicy):
            _imitate(society, members)
        rule, factor, values = _rule_of(spec, society)
        draws = NO_VALUES
        if spec.noise > 0:
            draws = kernels.standard_normals(society.rng_tree(f"policy:{group}"), members.size)
        work = members.size * (1 + _mean_degree(society) if rule == kernels.NEIGHBOUR_RATIO else 1)
        with kernel_threads(int(work)):
            kernels.group_requests(members, rule, factor, values, graph.indptr, graph.indices, fair_share,
                                   spec.noise, draws, max_take, requests)
    return requests


def _rule_of(spec: object, society: Society) -> tuple[int, float, np.ndarray]:
    """The kernel's (rule, factor, values) for one heuristic policy."""
    if isinstance(spec, SustainablePolicy):
        return kernels.SCALED_SHARE, 1.0, NO_VALUES
    if isinstance(spec, GreedyPolicy):
        return kernels.SCALED_SHARE, float(spec.factor), NO_VALUES
    if isinstance(spec, ConditionalPolicy):
        return kernels.NEIGHBOUR_RATIO, 0.0, society.state["ratio"]
    if isinstance(spec, ImitatorPolicy | LearnerPolicy):
        return kernels.OWN_RATIO, 0.0, society.state["strategy"]
    if isinstance(spec, FixedPolicy):
        return kernels.FIXED_AMOUNT, float(spec.amount), NO_VALUES
    raise TypeError(f"no heuristic rule for policy {spec!r}")


def _mean_degree(society: Society) -> float:
    return society.graph.indices.size / max(society.num_citizens, 1)


def _imitate(society: Society, members: np.ndarray) -> None:
    """Imitators adopt the last take ratio of their best-paid neighbour if it earned more than they did."""
    state = society.state
    payoff = state["payoff"]
    with kernel_threads(int(members.size * (1 + _mean_degree(society)))):
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
