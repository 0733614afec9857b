"""The polity: who leads, the policy in force, the treasury, the charter and the record of power.

Institution phases share one `Polity`: a slot on the society, made for the first of them the schedule builds
and kept in the society's checkpoints, so a resumed run continues the same history.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields
from typing import Any

from institutions.charter import Charter
from institutions.decisions import PolicyDecision
from institutions.power import ActionRecord, ElectionRecord
from society.phases import Phase

DEFAULT_POLICY = PolicyDecision(quota=1.0, fine=0.0, tax=0.0, redistribution=1.0)


@dataclass
class Polity:
    """Shared institutional state; per-citizen institutional arrays live in the society's state.

    `base` is the policy in force without a leader (and the one candidates promise relative to); `policy` is the
    policy in force now; `platforms` what each politician promised in its last campaign.
    """

    base: PolicyDecision = field(default_factory=lambda: DEFAULT_POLICY)
    policy: PolicyDecision = field(default_factory=lambda: DEFAULT_POLICY)
    charter: Charter = field(default_factory=Charter)
    rule: str = "plurality"
    leader: int | None = None
    leader_since: int = 0
    consecutive_terms: int = 0
    term_limit: int | None = None
    election_every: int = 0
    next_election: int | None = None
    treasury: float = 0.0
    rivals: list[int] = field(default_factory=list)
    briefing: dict[int, float] = field(default_factory=dict)
    platforms: dict[int, PolicyDecision] = field(default_factory=dict)
    actions: list[ActionRecord] = field(default_factory=list)
    elections: list[ElectionRecord] = field(default_factory=list)
    policies: list[tuple[float, ...]] = field(default_factory=list)

    def tenure(self, round_number: int) -> int:
        """Rounds the current leader has held office, counting this one (0 without a leader)."""
        return 0 if self.leader is None else round_number - self.leader_since + 1

    def state_dict(self) -> dict[str, Any]:
        return {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self) if f.name != "charter"}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, copy.deepcopy(value))


class InstitutionPhase(Phase):
    """A phase that shares the society's polity."""

    def __init__(self, society: Any, params: Any, index: int) -> None:
        super().__init__(society, params, index)
        self.polity: Polity = society.slot(Polity)
