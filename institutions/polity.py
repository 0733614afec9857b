"""The polity: who leads, the policy in force, the treasury, the charter and the record of power.

Institution phases share one `Polity`: a slot on the society, made for the first of them the schedule builds
and kept in the society's checkpoints, so a resumed run continues the same history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
        """Every field but the charter (fixed by the scenario) as JSON data: citizens as string keys."""
        return {
            "base": self.base.model_dump(),
            "policy": self.policy.model_dump(),
            "rule": self.rule,
            "leader": _citizen(self.leader),
            "leader_since": int(self.leader_since),
            "consecutive_terms": int(self.consecutive_terms),
            "term_limit": _citizen(self.term_limit),
            "election_every": int(self.election_every),
            "next_election": _citizen(self.next_election),
            "treasury": float(self.treasury),
            "rivals": [int(rival) for rival in self.rivals],
            "briefing": {str(citizen): float(value) for citizen, value in self.briefing.items()},
            "platforms": {str(citizen): policy.model_dump() for citizen, policy in self.platforms.items()},
            "actions": [[int(a.round), int(a.leader), str(a.action), bool(a.blocked)] for a in self.actions],
            "elections": [[int(e.round), _citizen(e.incumbent), int(e.winner)] for e in self.elections],
            "policies": [list(policy) for policy in self.policies],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.base = PolicyDecision.model_validate(state["base"])
        self.policy = PolicyDecision.model_validate(state["policy"])
        self.rule = str(state["rule"])
        self.leader = _citizen(state["leader"])
        self.leader_since = int(state["leader_since"])
        self.consecutive_terms = int(state["consecutive_terms"])
        self.term_limit = _citizen(state["term_limit"])
        self.election_every = int(state["election_every"])
        self.next_election = _citizen(state["next_election"])
        self.treasury = float(state["treasury"])
        self.rivals = [int(rival) for rival in state["rivals"]]
        self.briefing = {int(citizen): float(value) for citizen, value in state["briefing"].items()}
        self.platforms = {int(citizen): PolicyDecision.model_validate(policy)
                          for citizen, policy in state["platforms"].items()}
        self.actions = [ActionRecord(int(r), int(leader), str(name), bool(blocked))
                        for r, leader, name, blocked in state["actions"]]
        self.elections = [ElectionRecord(int(r), _citizen(incumbent), int(winner))
                          for r, incumbent, winner in state["elections"]]
        self.policies = [tuple(float(value) for value in policy) for policy in state["policies"]]


def _citizen(value: Any) -> int | None:
    """An optional whole number (a citizen, a round, a limit) as a plain int."""
    return None if value is None else int(value)


class InstitutionPhase(Phase):
    """A phase that shares the society's polity."""

    def __init__(self, society: Any, params: Any, index: int) -> None:
        super().__init__(society, params, index)
        self.polity: Polity = society.slot(Polity)

    def run(self) -> None:
        self.forget_removed()
        super().run()

    def forget_removed(self) -> None:
        """Removed citizens leave the polity: a removed leader leaves the office empty until the next election,
        and removed rivals, critics and supporters are no longer any of these."""
        present = self.society.present
        if present is None:
            return
        polity, state = self.polity, self.society.state
        if polity.leader is not None and not present[polity.leader]:
            polity.leader, polity.consecutive_terms = None, 0
        polity.rivals = [rival for rival in polity.rivals if present[rival]]
        for column in ("critic", "supporter"):
            if column in state:
                state[column][~present] = False
