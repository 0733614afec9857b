"""LLM ballots: the decision each voting rule asks for, narrowed to the election's candidates, and how answers
become ballot rows.

Forms: plurality asks for one `choice`; two_round, instant_runoff, borda and condorcet ask for a `ranking`
(best first); approval asks for an `approve` set. Each election builds its own decision types whose fields
may only hold that election's candidate numbers (so guided decoding can name nothing else). A candidate named
twice counts at its first mention (guided decoding cannot exclude repeats: xgrammar has no `uniqueItems`, and
small models repeat names). A rejected or missing answer falls back to the voter's **utility ballot**
(the ballot the heuristic voter model gives it, see `institutions.elections`).

Partial rankings are completed: the candidates the voter named come first, in its order, then the others in
the order of its utility ballot. A plurality choice is completed the same way (it is a ranking of length 1),
so every ranked ballot is a full ranking. Approval sets are kept as given: unnamed candidates are not approved.
How many places of each LLM voter's ballot were so filled in, not named by the model (all of them after a
fallback), is recorded: `completed_places`, the `ballot_completed` column of the citizens table (as of
the latest election).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Literal

import numpy as np
from pydantic import Field, create_model, field_validator

from institutions.voting import PADDING
from society.phases.decisions import Decision

BallotForm = Literal["choice", "ranking", "approval"]


def ballot_form(rule: str) -> BallotForm:
    """The ballot a voting rule counts: one choice, a ranking, or an approval set."""
    if rule == "plurality":
        return "choice"
    return "approval" if rule == "approval" else "ranking"


def _first_mentions(names: object) -> object:
    """A list of names with repeats dropped after their first mention (anything else is left to validation)."""
    return list(dict.fromkeys(names)) if isinstance(names, list) else names


class ChoiceBallot(Decision):
    """The one candidate a plurality voter votes for."""

    choice: int = Field(description="the candidate you vote for")


class RankingBallot(Decision):
    """The candidates ranked, best first (a ranking may stop early)."""

    ranking: list[int] = Field(min_length=1, description="candidates, best first")

    _once = field_validator("ranking", mode="before")(_first_mentions)


class ApprovalBallot(Decision):
    """The candidates the voter approves of."""

    approve: list[int] = Field(min_length=1, description="candidates you approve of")

    _once = field_validator("approve", mode="before")(_first_mentions)


@cache
def ballot_decision(form: BallotForm, candidates: tuple[int, ...]) -> type[Decision]:
    """The decision type of `form` whose answers may only name `candidates`."""
    named = Literal[candidates]  # type: ignore[valid-type]
    listing = ", ".join(map(str, candidates))
    if form == "choice":
        return create_model("ChoiceBallot", __base__=ChoiceBallot,
                            choice=(named, Field(description=f"the candidate you vote for: one of {listing}")))
    if form == "ranking":
        return create_model("RankingBallot", __base__=RankingBallot, ranking=(
            list[named], Field(min_length=1, max_length=len(candidates),
                               description=f"candidates {listing} in your order of preference, best first")))
    return create_model("ApprovalBallot", __base__=ApprovalBallot, approve=(
        list[named], Field(min_length=1, max_length=len(candidates),
                           description=f"the candidates among {listing} you approve of")))


def complete_ranking(named: Sequence[int], default: np.ndarray) -> np.ndarray:
    """A full ranking: `named` first, in its order, then the rest of `default` (a full ranking) in its order."""
    first = np.asarray(named, dtype=np.int64)
    return np.concatenate([first, default[~np.isin(default, first)]])


def completed_places(decisions: Sequence[Decision | None], candidates: int) -> np.ndarray:
    """Per voter, the places of its ballot filled from its utility ballot rather than named by the model: all
    `candidates` after a failed answer, those after the named ones for a ranking or a choice, none for approval."""
    places = np.full(len(decisions), candidates, dtype=np.int16)
    for k, decision in enumerate(decisions):
        if isinstance(decision, ApprovalBallot):
            places[k] = 0
        elif isinstance(decision, ChoiceBallot):
            places[k] = candidates - 1
        elif isinstance(decision, RankingBallot):
            places[k] = candidates - len(decision.ranking)
    return places


def approval_row(approved: Sequence[int], width: int) -> np.ndarray:
    """An approval set as a ballot row of `width` places, padded at the end."""
    row = np.full(width, PADDING, dtype=np.int64)
    row[:len(approved)] = approved
    return row


def answered_ballots(decisions: Sequence[Decision | None], defaults: np.ndarray, form: BallotForm) -> np.ndarray:
    """Ballot rows from LLM answers (one per voter, in order); a None answer gives the voter's `defaults` row.

    `defaults` holds each voter's utility ballot in the form the rule needs (full rankings, or approval sets).
    """
    rows = defaults.copy()
    for k, decision in enumerate(decisions):
        if decision is None:
            continue
        if isinstance(decision, ApprovalBallot):
            rows[k] = approval_row(decision.approve, rows.shape[1])
        else:
            named = [decision.choice] if isinstance(decision, ChoiceBallot) else decision.ranking
            rows[k] = complete_ranking(named, defaults[k])
    return rows
