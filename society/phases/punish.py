"""Peer punishment: citizens pay to sanction neighbours who took more than a threshold times their share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from society import commons_kernels as kernels
from society.phases import Phase
from society.scenario import POLICY_NAMES


class PunishParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cost: float = Field(1.0, ge=0, description="what one act of punishment costs the punisher")
    impact: float = Field(3.0, ge=0, description="what one act of punishment takes from the target")
    threshold: float = Field(1.0, ge=0, description="a take above threshold x fair share is a violation")
    punishers: list[str] = Field(default_factory=lambda: ["sustainable", "conditional"])
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
    Params = PunishParams

    def __init__(self, society: Any, params: PunishParams, index: int) -> None:
        super().__init__(society, params, index)
        wanted = [i for i, spec in enumerate(society.policy_specs) if spec.policy in params.punishers]
        self.is_punisher = np.isin(society.state["group"], wanted)

    def observe(self) -> PunishView:
        state = self.society.state
        violation = state["take"] > self.params.threshold * state["fair_share"] + 1e-9
        return PunishView(self.is_punisher, violation)

    def decide(self, view: PunishView) -> tuple[np.ndarray, np.ndarray]:
        graph = self.society.graph
        return kernels.select_punishments(
            graph.indptr, graph.indices, view.is_punisher, view.violation,
            self.params.probability, self.params.max_targets, self.rng,
        )

    def apply(self, decisions: tuple[np.ndarray, np.ndarray]) -> None:
        actors, targets = decisions
        society, state = self.society, self.society.state
        paid, received = kernels.settle_punishments(
            actors, targets, society.num_citizens, self.params.cost, self.params.impact
        )
        state["wealth"] -= paid + received
        state["punish_paid"] += paid
        state["punish_received"] += received
        society.record_events(self.name, "punish", actors, targets, cost=self.params.cost, impact=self.params.impact)
        self._counts = (int(actors.size), int(np.count_nonzero(received)))

    def metrics(self) -> dict[str, Any]:
        acts, targets = self._counts
        return {
            "punishments": acts,
            "punished_citizens": targets,
            "punishment_cost": acts * self.params.cost,
            "punishment_impact": acts * self.params.impact,
        }
