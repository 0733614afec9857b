"""Heuristic citizen policies, each deciding for all of its citizens at once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from society.core.kernel_threads import PARALLEL_MIN_WORK, kernel_threads
from society.policies import kernels
from society.scenario.schema import (
    ConditionalPolicy,
    FixedPolicy,
    GreedyPolicy,
    ImitatorPolicy,
    LearnerPolicy,
    LLMPolicy,
    SustainablePolicy,
)
from society.world.graph import SocialGraph, best_neighbor_of

if TYPE_CHECKING:
    from society.core.model import Society

NO_DRAWS = np.empty(0, dtype=np.float64)


@dataclass(frozen=True)
class PolicyRules:
    """The population's heuristic rules as arrays the requests kernel reads: per group, and per citizen."""

    rule: np.ndarray
    """Per group: one of the kernel's rule constants (`NO_REQUEST` for LLM citizens)."""
    factor: np.ndarray
    """Per group: the share multiple (sustainable 1, greedy its factor) or the fixed amount."""
    noise: np.ndarray
    """Per group: the relative noise on its requests (0: none)."""
    members: np.ndarray
    """The citizens, group by group (each group in index order)."""
    starts: np.ndarray
    """Where each group begins in `members`, and where the last one ends."""
    noisy: np.ndarray
    """Per citizen: whether its group has noise, i.e. whether it draws a standard normal each time it asks."""
    imitator_groups: tuple[int, ...]
    """Groups whose citizens imitate their best-paid neighbour before asking."""
    work: int
    """Element visits of one pass (citizens, plus their neighbours where a rule reads them)."""

    @classmethod
    def of(cls, specs: list[object], group: np.ndarray, graph: SocialGraph) -> PolicyRules:
        """The rules of the policy groups `specs`, for citizens in groups `group`, on `graph`."""
        rule = np.array([_rule_of(spec)[0] for spec in specs], dtype=np.int64)
        noise = np.array([getattr(spec, "noise", 0.0) for spec in specs], dtype=np.float64)
        reads_neighbours = (rule == kernels.NEIGHBOUR_RATIO)[group]
        return cls(
            rule=rule,
            factor=np.array([_rule_of(spec)[1] for spec in specs], dtype=np.float64),
            noise=noise,
            members=np.argsort(group, kind="stable").astype(np.int64),
            starts=np.concatenate([[0], np.cumsum(np.bincount(group, minlength=len(specs)))]).astype(np.int64),
            noisy=noise[group] > 0.0,
            imitator_groups=tuple(g for g, spec in enumerate(specs) if isinstance(spec, ImitatorPolicy)),
            work=int(group.size + graph.degrees[reads_neighbours].sum()),
        )


def requested_takes(society: Society, fair_share: np.ndarray, max_take: np.ndarray) -> np.ndarray:
    """What every citizen asks to take this round, given its fair share and the most it can take.

    Policies think in ratios to the fair share (`ratio` holds what each citizen took last round relative to
    its share), so their behaviour carries across rounds as the stock rises and falls. LLM citizens are left
    at 0: the phase asks the model for them, as are citizens who may take nothing (their patch is empty). Noise
    is one standard normal per noisy citizen who may take something, in citizen order, from the run's
    `policy_noise` stream.
    """
    rules, state, graph = society.policy_rules, society.state, society.graph
    for group in rules.imitator_groups:
        _imitate(society, society.group_members[group])
    fair_share = np.asarray(fair_share, dtype=np.float64)
    max_take = np.asarray(max_take, dtype=np.float64)
    draws = NO_DRAWS
    if rules.noisy.any():
        draws = kernels.noise_draws(society.rng_tree("policy_noise"), rules.noisy, max_take)
    requests = np.empty(society.num_citizens, dtype=np.float64)
    requests_kernel = (
        kernels.citizen_requests_parallel if rules.work >= PARALLEL_MIN_WORK else kernels.citizen_requests
    )
    requests_kernel(rules.members, rules.starts, rules.rule, rules.factor, rules.noise, state["ratio"], state["strategy"],
                    graph.indptr, graph.indices, fair_share, draws, max_take, requests)
    return requests


def followed_takes(
    society: Society, spec: object, citizens: np.ndarray, fair_share: np.ndarray, max_take: np.ndarray
) -> np.ndarray:
    """What `citizens` ask to take following the heuristic policy `spec` (with activation, LLM citizens not asked
    this round): the requests kernel with that policy's rule, as for a group of it. Noise, if the policy has any, is
    one standard normal per citizen who may take something, in citizen order, from the `inactive_noise` stream."""
    rule, factor = _rule_of(spec)
    state, graph = society.state, society.graph
    citizens = np.asarray(citizens, dtype=np.int64)
    fair_share = np.asarray(fair_share, dtype=np.float64)
    max_take = np.asarray(max_take, dtype=np.float64)
    noise = float(getattr(spec, "noise", 0.0))
    draws = NO_DRAWS
    if noise > 0.0:
        noisy = np.zeros(society.num_citizens, dtype=np.bool_)
        noisy[citizens] = True
        draws = kernels.noise_draws(society.rng_tree("inactive_noise"), noisy, max_take)
    requests = np.zeros(society.num_citizens, dtype=np.float64)
    kernels.citizen_requests(citizens, np.array([0, citizens.size], dtype=np.int64), np.array([rule], dtype=np.int64),
                             np.array([factor]), np.array([noise]), state["ratio"], state["strategy"], graph.indptr,
                             graph.indices, fair_share, draws, max_take, requests)
    return requests[citizens]


def _rule_of(spec: object) -> tuple[int, float]:
    """The kernel's (rule, factor) for one policy."""
    if isinstance(spec, SustainablePolicy):
        return kernels.SCALED_SHARE, 1.0
    if isinstance(spec, GreedyPolicy):
        return kernels.SCALED_SHARE, float(spec.factor)
    if isinstance(spec, ConditionalPolicy):
        return kernels.NEIGHBOUR_RATIO, 0.0
    if isinstance(spec, ImitatorPolicy | LearnerPolicy):
        return kernels.OWN_RATIO, 0.0
    if isinstance(spec, FixedPolicy):
        return kernels.FIXED_AMOUNT, float(spec.amount)
    if isinstance(spec, LLMPolicy):
        return kernels.NO_REQUEST, 0.0
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
