"""Harvest: every citizen asks for an amount from its patch; the commons grants what it can."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from society.phases import Phase
from society.policies import requested_takes


class HarvestParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reputation_memory: float = Field(0.8, ge=0, le=1, description="weight of past reputation in its moving average")


@dataclass(frozen=True)
class HarvestView:
    fair_share: np.ndarray
    max_take: np.ndarray


class HarvestPhase(Phase):
    name = "harvest"
    Params = HarvestParams
    needs_commons = True

    def observe(self) -> HarvestView:
        commons = self.society.commons
        return HarvestView(commons.fair_share(), commons.stock[commons.patch_of_citizen])

    def decide(self, view: HarvestView) -> tuple[HarvestView, np.ndarray]:
        return view, requested_takes(self.society, view.fair_share, view.max_take)

    def apply(self, decisions: tuple[HarvestView, np.ndarray]) -> None:
        view, requests = decisions
        society, state = self.society, self.society.state
        granted = society.commons.allocate(requests, self.rng)
        record_takes(society, view.fair_share, requests, granted)
        state["wealth"] += granted
        compliant = (requests <= view.fair_share + 1e-9).astype(np.float64)
        memory = self.params.reputation_memory
        state["reputation"] = memory * state["reputation"] + (1 - memory) * compliant
        self._totals = (float(requests.sum()), float(granted.sum()), float(np.mean(1 - compliant)))

    def metrics(self) -> dict[str, Any]:
        demand, harvest, over_usage = self._totals
        return {"demand": demand, "total_harvest": harvest, "over_usage": over_usage}


def record_takes(society: Any, fair_share: np.ndarray, requests: np.ndarray, granted: np.ndarray) -> None:
    """Write one round's takes into the state: what was asked, what was taken, and its ratio to the fair share."""
    state = society.state
    state["fair_share"] = fair_share
    state["requested"] = requests
    state["take"] = granted
    state["ratio"] = np.divide(granted, fair_share, out=np.ones_like(granted), where=fair_share > 0)
    state["total_take"] += granted
