"""The constitution phase: installs a charter, and runs the moderator's briefing before each election."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from institutions.charter import Charter
from institutions.polity import InstitutionPhase
from institutions.power import ppi


class ConstitutionPhase(InstitutionPhase):
    """The charter leaders act under; with mediation, a moderator step before every election.

    The leader phase checks each decision against the charter. When mediation is on and an election falls in
    this round, the moderator reviews every politician's record in office: its Power-Preservation Index over
    all decisions it took as leader (0 for one never in office). Voters weigh the record in the election that
    follows (`deliberation` events, one per politician, with the record as JSON).
    """

    name = "constitution"
    Params = Charter

    def __init__(self, society: Any, params: Charter, index: int) -> None:
        super().__init__(society, params, index)
        self.polity.charter = params
        self._briefed = 0

    def run(self) -> None:
        polity, society = self.polity, self.society
        self._briefed = 0
        if not self.params.mediation or polity.next_election != society.round or "politician" not in society.state:
            return
        politicians = np.flatnonzero(society.state["politician"] >= 0)
        records: dict[int, float] = {}
        details = []
        for citizen in politicians.tolist():
            taken = [a for a in polity.actions if a.leader == citizen]
            record = ppi(taken)
            records[citizen] = 0.0 if record is None else record
            details.append(json.dumps({"record_ppi": record, "decisions": len(taken),
                                       "blocked": sum(a.blocked for a in taken)}))
        polity.briefing = records
        society.record_events(self.name, "deliberation", np.full(politicians.size, -1), politicians, detail=details)
        self._briefed = int(politicians.size)

    def metrics(self) -> dict[str, Any]:
        return {"briefed_candidates": self._briefed}
