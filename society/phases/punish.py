"""Peer punishment: citizens pay to sanction neighbours who took more than a threshold times their share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from society import sanctioning
from society.phases import Phase
from society.phases.deciding import Question
from society.phases.decisions import PunishByPlaceDecision, PunishDecision
from society.scenario.bounds import MAX_AMOUNT, MAX_CITIZENS, MAX_FACTOR
from society.scenario.schema import POLICY_NAMES

RULE = (
    "Punishment: after the harvest, citizens may punish neighbours who took more than {threshold:g} times their "
    "sustainable share. Each punishment costs the punisher {cost:g} and takes {impact:g} from the punished."
)
OBSERVATION = (
    "Round {round} of {rounds}. These neighbours of yours took more than their sustainable share this round:\n"
    "{offenders}\nYou may punish any of them (each costs you {cost:g} and takes {impact:g} from them), or "
    "nobody. Whom do you punish? {format}"
)


class PunishParams(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    cost: float = Field(1.0, ge=0, le=MAX_AMOUNT, description="what one act of punishment costs the punisher")
    impact: float = Field(3.0, ge=0, le=MAX_AMOUNT, description="what one act of punishment takes from the target")
    threshold: float = Field(
        1.0, ge=0, le=MAX_FACTOR, description="a take above threshold x fair share is a violation"
    )
    punishers: list[str] = Field(
        default_factory=lambda: ["sustainable", "conditional", "llm"], description="policies whose citizens punish"
    )
    probability: float = Field(1.0, ge=0, le=1, description="chance a punisher acts on each violating neighbour")
    max_targets: int = Field(0, ge=0, le=MAX_CITIZENS, description="most acts per punisher per round (0: no limit)")

    def model_post_init(self, context: Any) -> None:
        unknown = sorted(set(self.punishers) - set(POLICY_NAMES))
        if unknown:
            raise ValueError(f"unknown policies {unknown}; expected some of {list(POLICY_NAMES)}")


@dataclass(frozen=True)
class PunishView:
    is_punisher: np.ndarray
    violation: np.ndarray


class PunishPhase(Phase):
    name = "punish"
    reads = ("takes",)
    Params = PunishParams

    def __init__(self, society: Any, params: PunishParams, index: int) -> None:
        super().__init__(society, params, index)
        wanted = [i for i, spec in enumerate(society.policy_specs) if spec.policy in params.punishers]
        punishers = np.isin(society.state["group"], wanted)
        self.is_punisher = society.deciding.by_rule(punishers)
        self.llm_punishers = society.deciding.asked_among(punishers)
        self.scan_space = sanctioning.ScanSpace()

    def rule(self) -> str:
        p = self.params
        return RULE.format(threshold=p.threshold, cost=p.cost, impact=p.impact)

    def observe(self) -> PunishView:
        state = self.society.state
        violation = state["take"] > self.params.threshold * state["fair_share"] + 1e-9
        return PunishView(self.is_punisher, violation)

    def decide(self, view: PunishView) -> tuple[np.ndarray, np.ndarray]:
        graph, p = self.society.graph, self.params
        askers, candidates = self._candidates(view.violation) if self.llm_punishers.size else ([], [])
        most = sanctioning.most_targets(p.max_targets)
        places = sanctioning.by_place(self.society)
        decided = self.society.deciding.decide(
            self,
            rule=lambda: sanctioning.select_punishments(
                graph.indptr, graph.indices, view.is_punisher, view.violation, p.probability, p.max_targets,
                self.rng, undirected=True, space=self.scan_space,
            ),
            question=self._question(askers, candidates, most, places) if askers else None,
            fallback=sanctioning.NOBODY,
        )
        actors, targets = decided.rule
        if self.llm_punishers.size:
            llm_actors, llm_targets = sanctioning.chosen_acts(decided, candidates, most, places)
            actors, targets = np.concatenate([actors, llm_actors]), np.concatenate([targets, llm_targets])
        return actors, targets

    def _candidates(self, violation: np.ndarray) -> tuple[list[int], list[np.ndarray]]:
        """The LLM punishers with offending neighbours, and those neighbours, worst offence first."""
        state, graph, p = self.society.state, self.society.graph, self.params
        excess = state["take"] - p.threshold * state["fair_share"]

        def offenders_of(citizen: int) -> np.ndarray:
            neighbours = graph.indices[graph.indptr[citizen]:graph.indptr[citizen + 1]]
            offenders = neighbours[violation[neighbours] & (neighbours != citizen)]
            return offenders[np.argsort(-excess[offenders], kind="stable")]

        return sanctioning.offered(self.llm_punishers, offenders_of)

    def _question(self, askers: list[int], candidates: list[np.ndarray], most: int, places: bool) -> Question:
        """Whom each LLM punisher punishes among its offending neighbours (named by place with `places`)."""
        society, p = self.society, self.params
        state = society.state
        texts = dict(round=society.round, rounds=society.scenario.rounds, cost=p.cost, impact=p.impact,
                     format=society.llm.answer_format(PunishByPlaceDecision if places else PunishDecision))
        observations = [
            OBSERVATION.format(offenders="\n".join(
                f"- {name} took {state['take'][o]:.1f}"
                for name, o in zip(sanctioning.offender_names(offenders, places), offenders.tolist())), **texts)
            for offenders in candidates
        ]
        return sanctioning.target_question(askers, candidates, observations, most, places)

    def apply(self, decisions: tuple[np.ndarray, np.ndarray]) -> None:
        actors, targets = decisions
        p = self.params
        punished = sanctioning.settle(self.society, self.name, "punish", actors, targets, p.cost, p.impact)
        self._counts = (int(actors.size), punished)

    def metrics(self) -> dict[str, Any]:
        acts, targets = self._counts
        return {
            "punishments": acts,
            "punished_citizens": targets,
            "punishment_cost": acts * self.params.cost,
            "punishment_impact": acts * self.params.impact,
        }

    def memory(self, citizens: np.ndarray) -> dict[str, list[str]]:
        return {"punishment": sanctioning.punishment_memory(self.society.state, citizens)}
