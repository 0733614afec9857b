"""Peer punishment: citizens pay to sanction neighbours who took more than a threshold times their share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from society.world import commons_kernels as kernels
from society.phases.decisions import PunishDecision
from society.phases import Phase
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
MAX_CANDIDATES = 16


class PunishParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cost: float = Field(1.0, ge=0, description="what one act of punishment costs the punisher")
    impact: float = Field(3.0, ge=0, description="what one act of punishment takes from the target")
    threshold: float = Field(1.0, ge=0, description="a take above threshold x fair share is a violation")
    punishers: list[str] = Field(
        default_factory=lambda: ["sustainable", "conditional", "llm"], description="policies whose citizens punish"
    )
    probability: float = Field(1.0, ge=0, le=1, description="chance a punisher acts on each violating neighbour")
    max_targets: int = Field(0, ge=0, description="most acts per punisher per round (0: no limit)")

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
        wanted = [
            i for i, spec in enumerate(society.policy_specs) if spec.policy in params.punishers and spec.policy != "llm"
        ]
        self.is_punisher = np.isin(society.state["group"], wanted)
        self.llm_punish = society.llm is not None and "llm" in params.punishers

    def rule(self) -> str:
        p = self.params
        return RULE.format(threshold=p.threshold, cost=p.cost, impact=p.impact)

    def observe(self) -> PunishView:
        state = self.society.state
        violation = state["take"] > self.params.threshold * state["fair_share"] + 1e-9
        return PunishView(self.is_punisher, violation)

    def decide(self, view: PunishView) -> tuple[np.ndarray, np.ndarray]:
        graph = self.society.graph
        actors, targets = kernels.select_punishments(
            graph.indptr, graph.indices, view.is_punisher, view.violation,
            self.params.probability, self.params.max_targets, self.rng, undirected=True,
        )
        if self.llm_punish:
            llm_actors, llm_targets = self._ask_llm(view.violation)
            actors, targets = np.concatenate([actors, llm_actors]), np.concatenate([targets, llm_targets])
        return actors, targets

    def _ask_llm(self, violation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Whom each LLM citizen with offending neighbours punishes; the fallback is nobody."""
        society, p = self.society, self.params
        state, graph, llm = society.state, society.graph, society.llm
        excess = state["take"] - p.threshold * state["fair_share"]
        askers, candidates = [], []
        for citizen in llm.members:
            neighbours = graph.indices[graph.indptr[citizen]:graph.indptr[citizen + 1]]
            offenders = neighbours[violation[neighbours] & (neighbours != citizen)]
            if offenders.size:
                askers.append(citizen)
                candidates.append(offenders[np.argsort(-excess[offenders], kind="stable")][:MAX_CANDIDATES])
        if not askers:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        most = p.max_targets or MAX_CANDIDATES
        texts = dict(round=society.round, rounds=society.scenario.rounds, cost=p.cost, impact=p.impact,
                     format=llm.answer_format(PunishDecision))
        observations = [
            OBSERVATION.format(offenders="\n".join(
                f"- citizen {int(o)} took {state['take'][o]:.1f} (sustainable share {state['fair_share'][o]:.1f})"
                for o in offenders), **texts)
            for offenders in candidates
        ]
        schemas = [
            {"punish": {"type": "array", "items": {"type": "integer", "enum": offenders.tolist()}, "maxItems": most}}
            for offenders in candidates
        ]
        decisions = llm.ask(self.name, np.array(askers), observations, PunishDecision, schemas)
        actors, targets = [], []
        for citizen, offenders, decision in zip(askers, candidates, decisions):
            chosen = [] if decision is None else list(dict.fromkeys(decision.punish))
            chosen = [t for t in chosen if t in set(offenders.tolist())][:most]
            actors += [citizen] * len(chosen)
            targets += chosen
        return np.array(actors, dtype=np.int64), np.array(targets, dtype=np.int64)

    def apply(self, decisions: tuple[np.ndarray, np.ndarray]) -> None:
        actors, targets = decisions
        society, state = self.society, self.society.state
        punished = 0
        if actors.size:
            paid, received = kernels.settle_punishments(
                actors, targets, society.num_citizens, self.params.cost, self.params.impact
            )
            punished = kernels.charge_punishments(
                paid, received, state["wealth"], state["punish_paid"], state["punish_received"]
            )
        society.record_events(self.name, "punish", actors, targets, cost=self.params.cost, impact=self.params.impact)
        self._counts = (int(actors.size), punished)

    def metrics(self) -> dict[str, Any]:
        acts, targets = self._counts
        return {
            "punishments": acts,
            "punished_citizens": targets,
            "punishment_cost": acts * self.params.cost,
            "punishment_impact": acts * self.params.impact,
        }
