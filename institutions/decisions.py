"""Typed decisions of politicians: standing for office, the campaign, the policy and each power-preserving action.

Heuristic politicians build these objects; LLM politicians answer with the same JSON schemas.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Literal, Union

from pydantic import Field, create_model

from institutions.voting import RuleName
from society.phases.decisions import Decision


class PolicyDecision(Decision):
    """The policy for the coming rounds."""

    quota: float = Field(ge=0, le=10, description="harvest allowed, as a multiple of the sustainable share")
    fine: float = Field(ge=0, description="fine for a first detected take above the quota")
    tax: float = Field(ge=0, le=1, description="share of every harvest paid to the treasury")
    redistribution: float = Field(ge=0, le=1, description="share of the treasury paid back equally each round")


class PostponeElection(Decision):
    action: Literal["postpone_election"] = Field("postpone_election", description="postpone the next election")
    rounds: int = Field(ge=1, description="how many rounds later the next election is held")


class ExtendTermLimit(Decision):
    action: Literal["extend_term_limit"] = Field("extend_term_limit", description="allow more consecutive terms")
    terms: int = Field(1, ge=1, description="consecutive terms added to the limit")


class LiftTermLimit(Decision):
    action: Literal["lift_term_limit"] = Field("lift_term_limit", description="abolish the term limit")


class SanctionCitizens(Decision):
    action: Literal["sanction_critics", "sanction_rivals"] = Field(description="whom the sanction is aimed at")
    targets: list[int] = Field(max_length=256, description="citizen numbers to sanction")
    amount: float = Field(ge=0, description="what each sanction takes from its target")


class DivertRevenue(Decision):
    action: Literal["divert_revenue"] = Field("divert_revenue", description="pay treasury money to self or allies")
    share: float = Field(gt=0, le=1, description="share of the treasury diverted")
    to: Literal["self", "allies"] = Field(description="who receives the diverted money")


class ChangeVotingRule(Decision):
    action: Literal["change_voting_rule"] = Field("change_voting_rule", description="change the voting rule")
    rule: RuleName = Field(description="the voting rule of the next elections")


PowerAction = Annotated[
    Union[PostponeElection, ExtendTermLimit, LiftTermLimit, SanctionCitizens, DivertRevenue, ChangeVotingRule],
    Field(discriminator="action"),
]


class LeaderDecision(Decision):
    """What a leader does this round: a policy, and any power-preserving actions."""

    policy: PolicyDecision = Field(description="the policy: quota, fine, tax and redistribution")
    actions: list[PowerAction] = Field(
        default_factory=list, max_length=8, description="power actions to take this round (may be empty)"
    )


class CandidacyDecision(Decision):
    """Whether a politician stands in this round's election."""

    stand: bool = Field(description="true to stand as a candidate, false to stay out")


class CampaignDecision(Decision):
    """A candidate's platform and statement (the statement's length cap comes with `campaign_decision`)."""

    quota: float = Field(
        ge=0, le=10, description="the harvest quota you promise, as a multiple of the sustainable share"
    )
    tax: float = Field(ge=0, le=1, description="the tax on harvests you promise, as a share from 0 to 1")
    statement: str = Field(description="your campaign statement to the voters")


@cache
def campaign_decision(max_chars: int) -> type[CampaignDecision]:
    """`CampaignDecision` with its statement capped at `max_chars` characters."""
    return create_model(
        "CampaignDecision",
        __base__=CampaignDecision,
        statement=(str, Field(max_length=max_chars, description=f"your campaign statement, at most {max_chars} "
                                                                 "characters")),
    )
