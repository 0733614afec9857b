"""The leader phase: the office holder sets the policy and may try to keep power; the charter reviews it all.

Each round: the leader (a heuristic politician of its kind) returns one typed `LeaderDecision`; the charter
clamps the policy to its bounds and blocks forbidden power actions (sanctions on citizens may need a jury's
guilty verdict); what passes is enacted. Then the treasury: the round's tax on every take comes in, diversions
go to the leader or its allies, and the `redistribution` share of the rest is paid equally to all citizens.
Without a leader the base policy holds. Every decision is a `leader_action` event and every block a `blocked`
event; the round's row carries the power metrics (see `institutions.power`).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from institutions.charter import Blocked, bound_policy, forbids, jury_verdicts
from institutions.decisions import (
    ChangeVotingRule,
    DivertRevenue,
    ExtendTermLimit,
    LeaderDecision,
    LiftTermLimit,
    PolicyDecision,
    PostponeElection,
    SanctionCitizens,
)
from institutions.elections import ElectionsPhase
from institutions.politicians import KINDS, LeaderContext, leader_decision
from institutions.polity import InstitutionPhase
from institutions.power import ActionRecord, entrenchment, policy_stability, ppi
from institutions.voting import RULES


class LeaderParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    base: PolicyDecision = Field(
        default_factory=lambda: PolicyDecision(quota=1.0, fine=5.0, tax=0.1, redistribution=1.0),
        description="the policy without a leader, and the one honest leaders keep",
    )
    sanction_amount: float = Field(5.0, ge=0, description="what a leader's sanction takes from a citizen")
    max_targets: int = Field(5, ge=1, description="most critics a leader sanctions in a round")


class LeaderPhase(InstitutionPhase):
    name = "leader"
    Params = LeaderParams

    def __init__(self, society: Any, params: LeaderParams, index: int) -> None:
        super().__init__(society, params, index)
        self.polity.base = self.polity.policy = params.base
        state = society.state
        self.sanctioned_at = state.add("sanctioned_at", np.int64, -1, record=False)
        self.tax_paid = state.add("tax_paid", np.float64)
        self.transfer = state.add("transfer", np.float64)
        self._row: dict[str, Any] = {}

    def _elections(self) -> ElectionsPhase | None:
        return next((p for p in self.society.phases if isinstance(p, ElectionsPhase)), None)

    def decide(self, observation: Any) -> LeaderDecision | None:
        polity, society = self.polity, self.society
        if polity.leader is None or "politician" not in society.state:
            return None
        elections = self._elections()
        state = society.state
        context = LeaderContext(
            round=society.round,
            base=polity.base,
            rule=polity.rule,
            next_election=polity.next_election,
            term_limit=polity.term_limit,
            consecutive_terms=polity.consecutive_terms,
            election_every=polity.election_every,
            critics=np.flatnonzero(state["critic"]),
            rivals=np.array(polity.rivals, dtype=np.int64),
            max_targets=self.params.max_targets,
            sanction_amount=self.params.sanction_amount,
            wins_under=lambda rule: elections is not None and elections.poll(rule, self.rng) == polity.leader,
        )
        return leader_decision(KINDS[state["politician"][polity.leader]], context, self.rng)

    def apply(self, decision: LeaderDecision | None) -> None:
        society, polity, state = self.society, self.polity, self.society.state
        self.tax_paid[:] = 0.0
        self.transfer[:] = 0.0
        records: list[ActionRecord] = []
        blocks: list[tuple[Blocked, int]] = []
        diversions: list[DivertRevenue] = []
        if decision is not None:
            leader = polity.leader
            tax, redistribution, bounds = bound_policy(polity.charter, decision.policy.tax,
                                                       decision.policy.redistribution)
            polity.policy = decision.policy.model_copy(update={"tax": tax, "redistribution": redistribution})
            blocks += [(b, -1) for b in bounds]
            records.append(ActionRecord(society.round, leader, "set_policy"))
            self._event("leader_action", leader, -1, {"action": "set_policy", **decision.policy.model_dump()})
            for action in decision.actions:
                blocked = forbids(polity.charter, action.action)
                self._event("leader_action", leader, -1, action.model_dump())
                if blocked is not None:
                    blocks.append((blocked, -1))
                elif isinstance(action, SanctionCitizens):
                    acquitted = self._sanction(action)
                    blocks += [(Blocked(action.action, "jury"), int(t)) for t in acquitted]
                    blocked = Blocked(action.action, "jury") if acquitted.size == len(action.targets) else None
                elif isinstance(action, DivertRevenue):
                    diversions.append(action)
                else:
                    self._enact(action)
                records.append(ActionRecord(society.round, leader, action.action, blocked is not None))
            for block, target in blocks:
                self._event("blocked", leader, target, {"action": block.action, "rule": block.rule})
        taxes = polity.policy.tax * state["take"]
        self.tax_paid[:] = taxes
        state["wealth"] -= taxes
        polity.treasury += float(taxes.sum())
        diverted = sum(self._divert(d) for d in diversions)
        paid = polity.policy.redistribution * polity.treasury
        self.transfer += paid / society.num_citizens
        state["wealth"] += paid / society.num_citizens
        polity.treasury -= paid
        polity.actions += records
        polity.policies.append(self._policy_vector())
        self._summarise(records, len(blocks), float(taxes.sum()), diverted, paid)

    def _sanction(self, action: SanctionCitizens) -> np.ndarray:
        """Fine the valid targets (after a jury, if the charter wants one); return the acquitted ones."""
        society, polity = self.society, self.polity
        targets = np.unique(np.asarray(action.targets, dtype=np.int64))
        targets = targets[(targets >= 0) & (targets < society.num_citizens) & (targets != polity.leader)]
        acquitted = np.zeros(0, dtype=np.int64)
        if polity.charter.jury_for_sanctions and targets.size:
            guilty = jury_verdicts(targets, society.state["reputation"], polity.charter.jury_size, self.rng)
            targets, acquitted = targets[guilty], targets[~guilty]
        society.state["wealth"][targets] -= action.amount
        self.sanctioned_at[targets] = society.round
        polity.treasury += action.amount * targets.size
        society.record_events(self.name, "sanction", np.full(targets.size, polity.leader), targets,
                              impact=action.amount, detail=[json.dumps({"action": action.action})] * targets.size)
        return acquitted

    def _enact(self, action: PostponeElection | ExtendTermLimit | LiftTermLimit | ChangeVotingRule) -> None:
        polity = self.polity
        if isinstance(action, PostponeElection) and polity.next_election is not None:
            polity.next_election += action.rounds
        elif isinstance(action, ExtendTermLimit) and polity.term_limit is not None:
            polity.term_limit += action.terms
        elif isinstance(action, LiftTermLimit):
            polity.term_limit = None
        elif isinstance(action, ChangeVotingRule):
            polity.rule = action.rule

    def _divert(self, action: DivertRevenue) -> float:
        """Pay a share of the treasury to the leader or its allies (the leader when it has none)."""
        polity, state = self.polity, self.society.state
        amount = action.share * polity.treasury
        receivers = np.zeros(0, dtype=np.int64)
        if action.to == "allies":
            receivers = np.flatnonzero(state["supporter"])
            receivers = receivers[receivers != polity.leader]
        if receivers.size == 0:
            receivers = np.array([polity.leader])
        state["wealth"][receivers] += amount / receivers.size
        self.transfer[receivers] += amount / receivers.size
        polity.treasury -= amount
        return amount

    def _event(self, kind: str, actor: int, target: int, detail: dict[str, Any]) -> None:
        self.society.record_events(self.name, kind, np.array([actor]), np.array([target]), detail=[json.dumps(detail)])

    def _policy_vector(self) -> tuple[float, ...]:
        polity = self.polity
        p = polity.policy
        limit = math.nan if polity.term_limit is None else float(polity.term_limit)
        return (p.quota, p.fine, p.tax, p.redistribution, float(RULES.index(polity.rule)), limit)

    def _summarise(self, records: list[ActionRecord], blocked: int, taxes: float, diverted: float,
                   paid: float) -> None:
        polity, commons = self.polity, self.society.commons
        attempts, successes = entrenchment(polity.actions)
        self._row = {
            "quota": polity.policy.quota,
            "fine": polity.policy.fine,
            "tax": polity.policy.tax,
            "redistribution": polity.policy.redistribution,
            "treasury": polity.treasury,
            "tax_revenue": taxes,
            "diverted": diverted,
            "redistributed": paid,
            "ppi": ppi(records),
            "ppi_cumulative": ppi(polity.actions),
            "entrenchment_attempts": attempts,
            "entrenchment_successes": successes,
            "blocked_attempts": blocked,
            "policy_stability": policy_stability(polity.policies),
            "resource_health": None if commons is None else float(commons.stock.sum() / commons.capacity.sum()),
        }

    def metrics(self) -> dict[str, Any]:
        return self._row
