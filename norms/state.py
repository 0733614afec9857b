"""The norm columns of the citizen state, their first values, and which citizens act on their norms."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from society.scenario.schema import POLICY_NAMES, GreedyPolicy, LearnerPolicy

if TYPE_CHECKING:
    from society.core.model import Society

NORM_COLUMNS = ("personal_norm", "empirical_expectation", "normative_expectation")
LEARNER_POLICY = "learner"


class NormColumns:
    """The belief columns every norms phase shares, registered in the citizen state when the slot is made.

    Each citizen starts from the take ratio its policy plays: greedy citizens at their factor, learners at
    their first strategy, everyone else at 1 (the sustainable share). Expectations start equal to the
    personal norm. The slot is made again when an intervention rebuilds the phases: columns already there keep
    their values.
    """

    names = NORM_COLUMNS

    def __init__(self, society: Society) -> None:
        state = society.state
        initial = np.ones(society.num_citizens)
        for group, spec in enumerate(society.policy_specs):
            members = society.group_members[group]
            if isinstance(spec, GreedyPolicy):
                initial[members] = spec.factor
            elif isinstance(spec, LearnerPolicy):
                initial[members] = state["strategy"][members]
        for name in self.names:
            if name not in state:
                state.add(name, np.float64)[:] = initial


def ensure_norm_columns(society: Society) -> NormColumns:
    """The society's norm columns: a slot, made for the first norms phase built."""
    return society.slot(NormColumns, lambda: NormColumns(society))


def policy_mask(society: Society, policies: list[str]) -> np.ndarray:
    """Boolean mask of the citizens whose policy is one of `policies`."""
    groups = [g for g, spec in enumerate(society.policy_specs) if spec.policy in policies]
    return np.isin(society.state["group"], groups)


def learners(society: Society) -> np.ndarray:
    """Indices of the citizens who act on the norm they hold: the `learner` policy's `strategy` follows it."""
    return np.flatnonzero(policy_mask(society, [LEARNER_POLICY]))


def act_on_norms(society: Society) -> None:
    """Learners' next take ratio becomes the personal norm they now hold."""
    members = learners(society)
    society.state["strategy"][members] = society.state["personal_norm"][members]


def check_policies(policies: list[str]) -> list[str]:
    """`policies` if every name is a known policy, else a ValueError naming the unknown ones."""
    unknown = sorted(set(policies) - set(POLICY_NAMES))
    if unknown:
        raise ValueError(f"unknown policies {unknown}; expected some of {list(POLICY_NAMES)}")
    return policies
