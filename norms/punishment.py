"""Norm-based punishment: citizens pay to sanction neighbours who took more than the norm the punisher holds."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from norms import kernels
from norms.state import check_policies, ensure_norm_columns, policy_mask
from society import commons_kernels
from society.phases import Phase
from society.scenario import POLICY_NAMES


class NormPunishParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cost: float = Field(1.0, ge=0, description="what one act of punishment costs the punisher")
    impact: float = Field(3.0, ge=0, description="what one act of punishment takes from the target")
    tolerance: float = Field(0.1, ge=0, description="a take ratio above norm x (1 + tolerance) is punished")
    probability: float = Field(1.0, ge=0, le=1, description="chance a punisher acts on each violating neighbour")
    max_targets: int = Field(0, ge=0, description="most acts per punisher per round (0: no limit)")
    punishers: list[str] = Field(default_factory=lambda: list(POLICY_NAMES), description="policies that punish")

    @field_validator("punishers")
    @classmethod
    def _known_policies(cls, value: list[str]) -> list[str]:
        return check_policies(value)


class NormPunishPhase(Phase):
    name = "norm_punish"
    Params = NormPunishParams

    def __init__(self, society: Any, params: NormPunishParams, index: int) -> None:
        super().__init__(society, params, index)
        ensure_norm_columns(society)
        self.is_punisher = policy_mask(society, params.punishers)

    def decide(self, observation: None) -> tuple[np.ndarray, np.ndarray]:
        state, graph, p = self.society.state, self.society.graph, self.params
        return kernels.norm_punishments(
            graph.indptr, graph.indices, self.is_punisher, state["personal_norm"], state["ratio"],
            p.tolerance, p.probability, p.max_targets, self.rng,
        )

    def apply(self, decisions: tuple[np.ndarray, np.ndarray]) -> None:
        actors, targets = decisions
        society, state, p = self.society, self.society.state, self.params
        paid, received = commons_kernels.settle_punishments(actors, targets, society.num_citizens, p.cost, p.impact)
        state["wealth"] -= paid + received
        state["punish_paid"] += paid
        state["punish_received"] += received
        society.record_events(self.name, "punish", actors, targets, cost=p.cost, impact=p.impact)
        self._row = {
            "norm_punishments": int(actors.size),
            "norm_punished_citizens": int(np.count_nonzero(received)),
            "norm_punishment_cost": actors.size * p.cost,
            "norm_punishment_impact": actors.size * p.impact,
        }

    def metrics(self) -> dict[str, Any]:
        return self._row
