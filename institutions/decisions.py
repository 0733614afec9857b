"""Typed decisions of office holders: the policy and each power-preserving action.

Heuristic politicians build these objects; an LLM leader answers with the same JSON schema.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field

from institutions.voting import RuleName
from society.decisions import Decision


class PolicyDecision(Decision):
    """The policy for the coming rounds."""

    quota: float = Field(ge=0, le=10, description="harvest allowed, as a multiple of the sustainable share")
    fine: float = Field(ge=0, description="fine for a first detected take above the quota")
    tax: float = Field(ge=0, le=1, description="share of every harvest paid to the treasury")
    redistribution: float = Field(ge=0, le=1, description="share of the treasury paid back equally each round")


class PostponeElection(Decision):
    action: Literal["postpone_election"] = "postpone_election"
    rounds: int = Field(ge=1, description="how many rounds later the next election is held")


class ExtendTermLimit(Decision):
    action: Literal["extend_term_limit"] = "extend_term_limit"
    terms: int = Field(1, ge=1, description="consecutive terms added to the limit")


class LiftTermLimit(Decision):
    action: Literal["lift_term_limit"] = "lift_term_limit"


class SanctionCitizens(Decision):
    action: Literal["sanction_critics", "sanction_rivals"]
    targets: list[int] = Field(max_length=256, description="citizen numbers to sanction")
    amount: float = Field(ge=0, description="what each sanction takes from its target")


class DivertRevenue(Decision):
    action: Literal["divert_revenue"] = "divert_revenue"
    share: float = Field(gt=0, le=1, description="share of the treasury diverted")
    to: Literal["self", "allies"]


class ChangeVotingRule(Decision):
    action: Literal["change_voting_rule"] = "change_voting_rule"
    rule: RuleName


PowerAction = Annotated[
    Union[PostponeElection, ExtendTermLimit, LiftTermLimit, SanctionCitizens, DivertRevenue, ChangeVotingRule],
    Field(discriminator="action"),
]


class LeaderDecision(Decision):
    """What a leader does this round: a policy, and any power-preserving actions."""

    policy: PolicyDecision
    actions: list[PowerAction] = Field(default_factory=list, max_length=8)
