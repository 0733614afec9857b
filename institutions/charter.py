"""The charter: what a constitution forbids or requires of leaders, and how a decision is reviewed against it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from institutions.power import PowerActionName
from society.scenario.bounds import MAX_CITIZENS, MAX_FACTOR


class Charter(BaseModel):
    """A constitution's rules (the default charter permits everything).

    `forbid`: power actions the leader may not take. `jury_for_sanctions`: a leader's sanction on a citizen
    needs a guilty verdict from a jury of `jury_size` citizens drawn at random. `max_tax` and
    `min_redistribution` bound the policy (a decision beyond them is blocked and clamped). `mediation`: before
    each election a moderator briefs voters on every candidate's record in office (its Power-Preservation
    Index), which voters weigh by `mediation_weight`.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    forbid: list[PowerActionName] = Field(default_factory=list)
    jury_for_sanctions: bool = False
    jury_size: int = Field(7, ge=1, le=MAX_CITIZENS, description="odd, so a majority always exists")
    max_tax: float | None = Field(None, ge=0, le=1)
    min_redistribution: float | None = Field(None, ge=0, le=1)
    mediation: bool = False
    mediation_weight: float = Field(
        2.0, ge=0, le=MAX_FACTOR, description="weight voters give a candidate's record PPI"
    )

    @field_validator("jury_size")
    @classmethod
    def _odd(cls, size: int) -> int:
        if size % 2 == 0:
            raise ValueError("expected an odd jury size")
        return size


@dataclass(frozen=True)
class Blocked:
    """A decision the charter stopped, and the rule that stopped it."""

    action: str
    rule: str


def forbids(charter: Charter, action: str) -> Blocked | None:
    """The block a forbidden power action meets, or None when the charter allows it."""
    return Blocked(action, f"forbid:{action}") if action in charter.forbid else None


def bound_policy(charter: Charter, tax: float, redistribution: float) -> tuple[float, float, list[Blocked]]:
    """Tax and redistribution clamped into the charter's bounds, with a block for each bound crossed."""
    blocked = []
    if charter.max_tax is not None and tax > charter.max_tax:
        tax = charter.max_tax
        blocked.append(Blocked("set_policy", "max_tax"))
    if charter.min_redistribution is not None and redistribution < charter.min_redistribution:
        redistribution = charter.min_redistribution
        blocked.append(Blocked("set_policy", "min_redistribution"))
    return tax, redistribution, blocked


def jury_verdicts(targets: np.ndarray, reputation: np.ndarray, jury_size: int,
                  rng: np.random.Generator) -> np.ndarray:
    """Guilty (True) or acquitted for each target; each juror votes guilty with probability 1 - the target's
    reputation (its moving share of compliant harvests), and a majority decides."""
    doubt = 1.0 - np.clip(reputation[targets], 0.0, 1.0)
    guilty_votes = (rng.random((targets.size, jury_size)) < doubt[:, None]).sum(axis=1)
    return guilty_votes > jury_size // 2
