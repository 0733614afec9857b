"""Norm-based punishment: citizens pay to sanction neighbours who took more than the norm the punisher holds.

Heuristic punishers follow the rule of `kernels.norm_punishments`. LLM punishers (when `llm` is among
`punishers`) are shown their neighbours whose take ratio exceeds their own norm x (1 + tolerance) and asked whom
to punish (`PunishDecision`, its choices narrowed to those neighbours, at most `max_targets`). A missing or
invalid answer falls back to `llm_fallback`: `nobody`, or `norm_rule` (the heuristic rule, for that citizen).
Every act is a `punish` event; its detail says who decided it: empty for the heuristic rule, `llm` for an LLM
citizen's choice, `fallback: norm_rule` for the fallback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from norms import kernels
from norms.state import check_policies, ensure_norm_columns, policy_mask
from society.world import commons_kernels
from society.phases.decisions import PunishDecision
from society.phases import Phase
from society.scenario.schema import POLICY_NAMES

MAX_CANDIDATES = 16  # PunishDecision's longest list
RULE = (
    "Norm punishment: after the harvest, each citizen may punish neighbours who took more than the most it thinks "
    "each citizen should take (its norm, as a multiple of the sustainable share){slack}. Each punishment costs "
    "the punisher {cost:g} and takes {impact:g} from the punished."
)
OBSERVATION = (
    "Round {round} of {rounds}. You think each citizen should take at most {norm:.2f} times the sustainable share. "
    "These neighbours of yours took more than that this round:\n{offenders}\nYou may punish any of them (each "
    "costs you {cost:g} and takes {impact:g} from them), or nobody. Whom do you punish? {format}"
)
OFFENDER = "- citizen {citizen} took {ratio:.2f} times its sustainable share"
LLM_CHOICE = "llm"
FALLBACK_RULE = "fallback: norm_rule"


class NormPunishParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cost: float = Field(1.0, ge=0, description="what one act of punishment costs the punisher")
    impact: float = Field(3.0, ge=0, description="what one act of punishment takes from the target")
    tolerance: float = Field(0.1, ge=0, description="a take ratio above norm x (1 + tolerance) is punished")
    probability: float = Field(1.0, ge=0, le=1, description="chance a punisher acts on each violating neighbour")
    max_targets: int = Field(0, ge=0, description="most acts per punisher per round (0: no limit)")
    punishers: list[str] = Field(default_factory=lambda: list(POLICY_NAMES), description="policies that punish")
    llm_fallback: Literal["nobody", "norm_rule"] = Field(
        "nobody", description="whom an LLM punisher punishes when its answer is missing or invalid"
    )

    @field_validator("punishers")
    @classmethod
    def _known_policies(cls, value: list[str]) -> list[str]:
        return check_policies(value)


@dataclass(frozen=True)
class Punishments:
    """The round's acts of punishment: who punishes whom, and who decided each act (None: the heuristic rule).

    `decided_by` is None when the heuristic rule decided every act (no LLM punishers).
    """

    actors: np.ndarray
    targets: np.ndarray
    decided_by: list[str | None] | None


def eligible_targets(
    indptr: np.ndarray, indices: np.ndarray, citizen: int, norm: np.ndarray, ratio: np.ndarray, tolerance: float
) -> np.ndarray:
    """The distinct neighbours of `citizen` whose take ratio exceeds its norm x (1 + tolerance), worst first."""
    neighbours = np.unique(indices[indptr[citizen]:indptr[citizen + 1]])
    over = neighbours[(ratio[neighbours] > norm[citizen] * (1.0 + tolerance) + 1e-9) & (neighbours != citizen)]
    return over[np.argsort(-ratio[over], kind="stable")]


def chosen_targets(answer: list[int], eligible: np.ndarray, most: int) -> list[int]:
    """The distinct eligible citizens an answer names, in its order, at most `most`."""
    allowed = set(eligible.tolist())
    return [t for t in dict.fromkeys(answer) if t in allowed][:most]


class NormPunishPhase(Phase):
    name = "norm_punish"
    Params = NormPunishParams
    reads = ("takes",)

    def __init__(self, society: Any, params: NormPunishParams, index: int) -> None:
        super().__init__(society, params, index)
        ensure_norm_columns(society)
        self.is_punisher = policy_mask(society, params.punishers)
        self.llm_punishers = np.zeros(0, np.int64)
        if society.llm is not None:
            members = society.llm.members
            self.llm_punishers = members[self.is_punisher[members]]
            self.is_punisher[members] = False

    def rule(self) -> str:
        p = self.params
        slack = f" by more than {p.tolerance:.0%}" if p.tolerance > 0 else ""
        return RULE.format(slack=slack, cost=p.cost, impact=p.impact)

    def decide(self, observation: None) -> Punishments:
        actors, targets = self._norm_rule(self.is_punisher)
        if not self.llm_punishers.size:
            return Punishments(actors, targets, None)
        llm_actors, llm_targets, llm_decided = self._ask_llm()
        decided: list[str | None] = [None] * actors.size
        return Punishments(
            np.concatenate([actors, llm_actors]), np.concatenate([targets, llm_targets]), decided + llm_decided
        )

    def _norm_rule(self, is_punisher: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The heuristic rule's acts for the citizens marked in `is_punisher`."""
        state, graph, p = self.society.state, self.society.graph, self.params
        return kernels.norm_punishments(
            graph.indptr, graph.indices, is_punisher, state["personal_norm"], state["ratio"],
            p.tolerance, p.probability, p.max_targets, self.rng,
        )

    def _ask_llm(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Whom each LLM punisher with eligible neighbours punishes, and who decided it (its answer or the fallback)."""
        society, llm, p = self.society, self.society.llm, self.params
        state, graph = society.state, society.graph
        norm, ratio = state["personal_norm"], state["ratio"]
        askers, candidates = [], []
        for citizen in self.llm_punishers:
            eligible = eligible_targets(graph.indptr, graph.indices, int(citizen), norm, ratio, p.tolerance)
            if eligible.size:
                askers.append(int(citizen))
                candidates.append(eligible[:MAX_CANDIDATES])
        most = min(p.max_targets or MAX_CANDIDATES, MAX_CANDIDATES)
        texts = {"round": society.round, "rounds": society.scenario.rounds, "cost": p.cost, "impact": p.impact,
                 "format": llm.answer_format(PunishDecision)}
        observations = [
            OBSERVATION.format(norm=norm[citizen], offenders="\n".join(
                OFFENDER.format(citizen=int(o), ratio=ratio[o]) for o in eligible), **texts)
            for citizen, eligible in zip(askers, candidates)
        ]
        schemas = [
            {"punish": {"type": "array", "items": {"type": "integer", "enum": eligible.tolist()}, "maxItems": most}}
            for eligible in candidates
        ]
        decisions = llm.ask(self.name, np.array(askers, dtype=np.int64), observations, PunishDecision, schemas)
        actors: list[int] = []
        targets: list[int] = []
        failed = np.zeros(society.num_citizens, dtype=bool)
        for citizen, eligible, decision in zip(askers, candidates, decisions):
            if decision is None:
                failed[citizen] = True
                continue
            chosen = chosen_targets(decision.punish, eligible, most)
            actors += [citizen] * len(chosen)
            targets += chosen
        decided = [LLM_CHOICE] * len(actors)
        llm_actors, llm_targets = np.array(actors, dtype=np.int64), np.array(targets, dtype=np.int64)
        if p.llm_fallback == "norm_rule" and failed.any():
            rule_actors, rule_targets = self._norm_rule(failed)
            llm_actors = np.concatenate([llm_actors, rule_actors])
            llm_targets = np.concatenate([llm_targets, rule_targets])
            decided += [FALLBACK_RULE] * rule_actors.size
        return llm_actors, llm_targets, decided

    def apply(self, decisions: Punishments) -> None:
        actors, targets = decisions.actors, decisions.targets
        society, state, p = self.society, self.society.state, self.params
        paid, received = commons_kernels.settle_punishments(actors, targets, society.num_citizens, p.cost, p.impact)
        state["wealth"] -= paid + received
        state["punish_paid"] += paid
        state["punish_received"] += received
        society.record_events(
            self.name, "punish", actors, targets, cost=p.cost, impact=p.impact, detail=decisions.decided_by
        )
        self._row = {
            "norm_punishments": int(actors.size),
            "norm_punished_citizens": int(np.count_nonzero(received)),
            "norm_punishment_cost": actors.size * p.cost,
            "norm_punishment_impact": actors.size * p.impact,
        }
        if decisions.decided_by is not None:
            self._row["llm_norm_punishments"] = decisions.decided_by.count(LLM_CHOICE)

    def metrics(self) -> dict[str, Any]:
        return self._row
