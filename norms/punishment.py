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
from society import sanctioning
from society.phases import Phase
from society.phases.deciding import Fallback, Question
from society.phases.decisions import PunishByPlaceDecision, PunishDecision
from society.scenario.bounds import MAX_AMOUNT, MAX_CITIZENS, MAX_FACTOR
from society.scenario.schema import POLICY_NAMES

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
OFFENDER = "- {name} took {ratio:.2f} times its sustainable share"
LLM_CHOICE = "llm"
FALLBACK_RULE = "fallback: norm_rule"


class NormPunishParams(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    cost: float = Field(1.0, ge=0, le=MAX_AMOUNT, description="what one act of punishment costs the punisher")
    impact: float = Field(3.0, ge=0, le=MAX_AMOUNT, description="what one act of punishment takes from the target")
    tolerance: float = Field(
        0.1, ge=0, le=MAX_FACTOR, description="a take ratio above norm x (1 + tolerance) is punished"
    )
    probability: float = Field(1.0, ge=0, le=1, description="chance a punisher acts on each violating neighbour")
    max_targets: int = Field(0, ge=0, le=MAX_CITIZENS, description="most acts per punisher per round (0: no limit)")
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


class NormPunishPhase(Phase):
    name = "norm_punish"
    Params = NormPunishParams
    reads = ("takes",)

    def __init__(self, society: Any, params: NormPunishParams, index: int) -> None:
        super().__init__(society, params, index)
        ensure_norm_columns(society)
        punishers = policy_mask(society, params.punishers)
        punishers &= society.present_mask()
        self.is_punisher = society.deciding.by_rule(punishers)
        self.llm_punishers = society.deciding.asked_among(punishers)

    def rule(self) -> str:
        p = self.params
        slack = f" by more than {p.tolerance:.0%}" if p.tolerance > 0 else ""
        return RULE.format(slack=slack, cost=p.cost, impact=p.impact)

    def decide(self, observation: None) -> Punishments:
        askers, candidates = self._candidates()
        most = sanctioning.most_targets(self.params.max_targets)
        places = sanctioning.by_place(self.society)
        decided = self.society.deciding.decide(
            self,
            rule=lambda: self._norm_rule(self.is_punisher),
            question=self._question(askers, candidates, most, places) if askers else None,
            fallback=Fallback(self.params.llm_fallback, self._fallback),
        )
        actors, targets = decided.rule
        if not self.llm_punishers.size:
            return Punishments(actors, targets, None)
        llm_actors, llm_targets = sanctioning.chosen_acts(decided, candidates, most, places)
        rule_actors, rule_targets = decided.fallback if decided.fallback is not None else sanctioning.NO_ACTS
        decided_by = [None] * actors.size + [LLM_CHOICE] * llm_actors.size + [FALLBACK_RULE] * rule_actors.size
        return Punishments(
            np.concatenate([actors, llm_actors, rule_actors]), np.concatenate([targets, llm_targets, rule_targets]),
            decided_by,
        )

    def _norm_rule(self, is_punisher: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The heuristic rule's acts for the citizens marked in `is_punisher`."""
        state, graph, p = self.society.state, self.society.graph, self.params
        return kernels.norm_punishments(
            graph.indptr, graph.indices, is_punisher, state["personal_norm"], state["ratio"],
            p.tolerance, p.probability, p.max_targets, self.rng,
        )

    def _fallback(self, failed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The acts of LLM punishers whose answer failed: none, or the norm rule's for them."""
        if self.params.llm_fallback == "nobody":
            return sanctioning.NO_ACTS
        is_failed = np.zeros(self.society.num_citizens, dtype=bool)
        is_failed[failed] = True
        return self._norm_rule(is_failed)

    def _candidates(self) -> tuple[list[int], list[np.ndarray]]:
        """The LLM punishers with neighbours above their norm, and those neighbours, worst first."""
        state, graph = self.society.state, self.society.graph
        return sanctioning.offered(self.llm_punishers, lambda citizen: eligible_targets(
            graph.indptr, graph.indices, citizen, state["personal_norm"], state["ratio"], self.params.tolerance
        ))

    def _question(self, askers: list[int], candidates: list[np.ndarray], most: int, places: bool) -> Question:
        """Whom each LLM punisher punishes among its neighbours above its norm (named by place with `places`)."""
        society, p = self.society, self.params
        norm, ratio = society.state["personal_norm"], society.state["ratio"]
        texts = {"round": society.round, "rounds": society.scenario.rounds, "cost": p.cost, "impact": p.impact,
                 "format": society.llm.answer_format(PunishByPlaceDecision if places else PunishDecision)}
        observations = [
            OBSERVATION.format(norm=norm[citizen], offenders="\n".join(
                OFFENDER.format(name=name, ratio=ratio[o])
                for name, o in zip(sanctioning.offender_names(eligible, places), eligible.tolist())), **texts)
            for citizen, eligible in zip(askers, candidates)
        ]
        return sanctioning.target_question(askers, candidates, observations, most, places)

    def apply(self, decisions: Punishments) -> None:
        actors, targets = decisions.actors, decisions.targets
        p = self.params
        punished = sanctioning.settle(
            self.society, self.name, "punish", actors, targets, p.cost, p.impact, detail=decisions.decided_by
        )
        self._row = {
            "norm_punishments": int(actors.size),
            "norm_punished_citizens": punished,
            "norm_punishment_cost": actors.size * p.cost,
            "norm_punishment_impact": actors.size * p.impact,
        }
        if decisions.decided_by is not None:
            self._row["llm_norm_punishments"] = decisions.decided_by.count(LLM_CHOICE)

    def metrics(self) -> dict[str, Any]:
        return self._row

    def memory(self, citizens: np.ndarray) -> dict[str, list[str]]:
        return {"punishment": sanctioning.punishment_memory(self.society.state, citizens)}
