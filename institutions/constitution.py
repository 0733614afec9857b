"""The constitution phase: installs a charter, and runs the moderator's briefing before each election."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from institutions.charter import Charter
from institutions.polity import InstitutionPhase
from institutions.power import ActionRecord, ppi

ACTIONS = {
    "postpone_election": "postpone an election",
    "extend_term_limit": "extend the term limit",
    "lift_term_limit": "lift the term limit",
    "sanction_critics": "sanction critics",
    "sanction_rivals": "sanction rivals",
    "divert_revenue": "divert treasury money",
    "change_voting_rule": "change the voting rule",
}


class ConstitutionPhase(InstitutionPhase):
    """The charter leaders act under; with mediation, a moderator step before every election.

    The leader phase checks each decision against the charter. When mediation is on and an election falls in
    this round, the moderator reviews every politician's record in office: its Power-Preservation Index over
    all decisions it took as leader (0 for one never in office). Voters weigh the record in the election that
    follows (`deliberation` events, one per politician, with the record as JSON). LLM citizens get the
    briefing as a quoted note in their memory before they vote.
    """

    name = "constitution"
    Params = Charter
    precedes = ("elections",)

    def __init__(self, society: Any, params: Charter, index: int) -> None:
        super().__init__(society, params, index)
        self.polity.charter = params
        self._briefed = 0

    def rule(self) -> str:
        charter = self.params
        limits = [f"{ACTIONS[a]}" for a in charter.forbid]
        if charter.max_tax is not None:
            limits.append(f"tax more than {charter.max_tax:.0%}")
        if charter.min_redistribution is not None:
            limits.append(f"pay back less than {charter.min_redistribution:.0%} of the treasury each round")
        line = "Constitution: " + ("the leader may not " + "; ".join(limits) if limits else "it limits nothing")
        line += " (blocked attempts are recorded)." if limits else "."
        if charter.jury_for_sanctions:
            line += f" A leader's sanction on a citizen needs a guilty verdict from a jury of {charter.jury_size}."
        if charter.mediation:
            line += " Before each election a moderator briefs voters on every politician's record in office."
        return line

    def run(self) -> None:
        self.forget_removed()
        polity, society = self.polity, self.society
        self._briefed = 0
        if not self.params.mediation or polity.next_election != society.round or "politician" not in society.state:
            return
        politicians = np.flatnonzero((society.state["politician"] >= 0) & society.present_mask())
        records: dict[int, float] = {}
        details = []
        for citizen in politicians.tolist():
            taken = [a for a in polity.actions if a.leader == citizen]
            record = ppi(taken)
            records[citizen] = 0.0 if record is None else record
            details.append(json.dumps({"record_ppi": record, "decisions": len(taken),
                                       "blocked": sum(a.blocked for a in taken)}))
        polity.briefing = records
        if society.llm is not None:
            briefing = _briefing(politicians.tolist(), records, polity.actions)
            society.llm.remember(society.llm.members, [briefing] * society.llm.members.size)
        society.record_events(self.name, "deliberation", np.full(politicians.size, -1), politicians, detail=details)
        self._briefed = int(politicians.size)

    def metrics(self) -> dict[str, Any]:
        return {"briefed_candidates": self._briefed}


def _briefing(politicians: list[int], records: dict[int, float], actions: list[ActionRecord]) -> str:
    """The moderator's briefing as one text: each politician's record in office."""
    parts = []
    for citizen in politicians:
        taken = [a for a in actions if a.leader == citizen]
        if taken:
            parts.append(f"citizen {citizen} took {len(taken)} decisions in office, {sum(a.blocked for a in taken)} "
                         f"blocked by the constitution; power-preservation index {records[citizen]:.2f} "
                         "(0: all for the public, 1: all for its own power or gain)")
        else:
            parts.append(f"citizen {citizen} has not held office")
    return "Moderator's briefing before the election: " + "; ".join(parts) + "."
