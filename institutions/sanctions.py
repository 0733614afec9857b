"""Sanctions on takes above the quota: graduated central fines paid to the treasury, and third-party punishment.

A violation is a take above `quota` x the citizen's sustainable share; only violations the monitoring phase
detected count (all of them when the schedule has no monitoring phase, which must run before this one).

Central fines are graduated (Ostrom's fifth principle): a citizen's k-th detected offence (k = 0 first) costs
`fine` x `escalation`^k, at most `fine` x `max_multiplier`; a citizen who goes `forgive_after` rounds without
a detected offence starts again at k = 0. Fines go to the treasury, which the leader phase taxes into and
pays out of. Third-party punishment: each detected violator is seen by `witnesses` citizens drawn at random;
those who follow a punishing policy and are neither the violator nor its neighbour (no stake in the
relation) punish with `probability`, paying `cost` to take `impact`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from institutions.polity import InstitutionPhase
from society import sanctioning
from society.scenario.bounds import MAX_AMOUNT, MAX_CITIZENS, MAX_FACTOR, MAX_ROUNDS
from society.scenario.schema import POLICY_NAMES


class ThirdParty(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    punishers: list[str] = Field(default_factory=lambda: ["sustainable", "conditional"])
    witnesses: int = Field(
        3, ge=1, le=MAX_CITIZENS, description="citizens drawn at random to witness each detected violation"
    )
    probability: float = Field(1.0, ge=0, le=1)
    cost: float = Field(1.0, ge=0, le=MAX_AMOUNT)
    impact: float = Field(3.0, ge=0, le=MAX_AMOUNT)

    @field_validator("punishers")
    @classmethod
    def _known_policies(cls, punishers: list[str]) -> list[str]:
        unknown = sorted(set(punishers) - set(POLICY_NAMES))
        if unknown:
            raise ValueError(f"unknown policies {unknown}; expected some of {list(POLICY_NAMES)}")
        return punishers


class SanctionsParams(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    quota: float | None = Field(
        None, ge=0, le=MAX_FACTOR, description="fixed quota (x sustainable share); None: the policy's"
    )
    fine: float | None = Field(None, ge=0, le=MAX_AMOUNT, description="fixed first-offence fine; None: the policy's")
    central: bool = Field(True, description="charge graduated fines into the treasury")
    escalation: float = Field(2.0, ge=1, le=MAX_FACTOR, description="each prior offence multiplies the fine by this")
    max_multiplier: float = Field(8.0, ge=1, le=MAX_FACTOR)
    forgive_after: int = Field(
        0, ge=0, le=MAX_ROUNDS, description="clean rounds after which offences are forgotten (0: never)"
    )
    third_party: ThirdParty | None = None

    @model_validator(mode="after")
    def _something_to_do(self) -> "SanctionsParams":
        if not self.central and self.third_party is None:
            raise ValueError("expected central fines, third_party punishment, or both")
        return self


class SanctionsPhase(InstitutionPhase):
    name = "sanctions"
    Params = SanctionsParams
    reads = ("takes", "detected")

    def __init__(self, society: Any, params: SanctionsParams, index: int) -> None:
        super().__init__(society, params, index)
        state = society.state
        self.offences = state.add("offences", np.int64)
        self.last_offence = state.add("last_offence", np.int64, -1, record=False)
        self.fined = state.add("fined", np.float64)
        self.violating = state.add("violating", np.bool_)
        if params.third_party is not None:
            names = [spec.policy for spec in society.policy_specs]
            wanted = [g for g, name in enumerate(names) if name in params.third_party.punishers]
            self.is_punisher = np.isin(state["group"], wanted) & society.present_mask()
            u, v = society.graph.edges()
            self._edge_keys = np.sort(np.concatenate([u * society.num_citizens + v, v * society.num_citizens + u]))
        self._row: dict[str, Any] = {}

    def rule(self) -> str:
        p = self.params
        quota = "the leader's quota" if p.quota is None else f"{p.quota:g}"
        line = f"Sanctions: a seen take above {quota} times the sustainable share is a violation."
        if p.central:
            fine = "the leader's fine" if p.fine is None else f"{p.fine:g}"
            line += (f" It is fined into the treasury: the first offence costs {fine}, each repeat {p.escalation:g} "
                     f"times the last (at most {p.max_multiplier:g} times the first)")
            line += f"; offences are forgotten after {p.forgive_after} clean rounds." if p.forgive_after else "."
        if p.third_party is not None:
            t = p.third_party
            line += (f" Witnesses with no tie to the violator may punish it: it costs them {t.cost:g} and takes "
                     f"{t.impact:g} from the violator.")
        return line

    def observe(self) -> np.ndarray:
        state, policy = self.society.state, self.polity.policy
        quota = policy.quota if self.params.quota is None else self.params.quota
        violating = state["take"] > quota * state["fair_share"] + 1e-9
        if self.society.present is not None:
            violating &= self.society.present
        self.violating[:] = violating
        if "detected" in state:
            return np.flatnonzero(violating & state["detected"])
        return np.flatnonzero(violating)

    def decide(self, violators: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Graduated fines and third-party acts, both by rule (no citizen is asked)."""
        decided = self.society.deciding.decide(self, rule=lambda: self._sanctions(violators))
        return decided.rule

    def _sanctions(self, violators: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        fines = self._graduated_fines(violators) if self.params.central else np.zeros(0)
        punishers, targets = self._third_parties(violators)
        return violators, fines, punishers, targets

    def _graduated_fines(self, violators: np.ndarray) -> np.ndarray:
        params = self.params
        base = self.polity.policy.fine if params.fine is None else params.fine
        if params.forgive_after:
            clean = self.society.round - self.last_offence[violators] > params.forgive_after
            self.offences[violators[clean]] = 0
        multiplier = np.minimum(params.escalation ** self.offences[violators].astype(np.float64), params.max_multiplier)
        return base * multiplier

    def _third_parties(self, violators: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        spec = self.params.third_party
        if spec is None or violators.size == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        n = self.society.num_citizens
        targets = np.repeat(violators, spec.witnesses)
        witnesses = self.rng.integers(0, n, size=targets.size)
        acts = self.rng.random(targets.size) < spec.probability
        keys = targets * n + witnesses
        tied = self._edge_keys[np.clip(np.searchsorted(self._edge_keys, keys), 0, self._edge_keys.size - 1)] == keys
        chosen = self.is_punisher[witnesses] & (witnesses != targets) & ~tied & acts
        return witnesses[chosen], targets[chosen]

    def apply(self, decisions: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]) -> None:
        violators, fines, punishers, targets = decisions
        society, state = self.society, self.society.state
        self.fined[:] = 0.0
        if self.params.central and violators.size:
            self.fined[violators] = fines
            state["wealth"] -= self.fined
            self.polity.treasury += float(fines.sum())
            self.offences[violators] += 1
            self.last_offence[violators] = society.round
            authority = -1 if self.polity.leader is None else self.polity.leader
            society.record_events(self.name, "fine", np.full(violators.size, authority), violators, impact=fines)
        spec = self.params.third_party
        if spec is not None and punishers.size:
            sanctioning.settle(society, self.name, "sanction", punishers, targets, spec.cost, spec.impact)
        self._row = {
            "violations": int(self.violating.sum()),
            "detected_violations": int(violators.size),
            "fines": int(violators.size) if self.params.central else 0,
            "fine_revenue": float(fines.sum()),
            "third_party_sanctions": int(punishers.size),
        }

    def metrics(self) -> dict[str, Any]:
        return self._row

    def memory(self, citizens: np.ndarray) -> dict[str, list[str]]:
        if self.params.third_party is None:
            return {}
        return {"punishment": sanctioning.punishment_memory(self.society.state, citizens)}
