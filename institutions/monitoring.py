"""Monitoring: which citizens' harvests are seen this round (and so can be sanctioned)."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from society.phases import Phase


class MonitoringParams(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    mode: Literal["random", "neighbours"] = Field(
        "random", description="random: each harvest seen with `probability`; neighbours: seen when at least one "
                              "neighbour sees it, each with `probability`",
    )
    probability: float = Field(1.0, ge=0, le=1)


class MonitoringPhase(Phase):
    """Sets the `detected` state column: whose take this round is known (sanctions act only on those)."""

    name = "monitoring"
    Params = MonitoringParams
    provides = ("detected",)

    def __init__(self, society: Any, params: MonitoringParams, index: int) -> None:
        super().__init__(society, params, index)
        self.detected = society.state.add("detected", np.bool_)
        self._row_of_entry = np.repeat(np.arange(society.num_citizens), society.graph.degrees)

    def rule(self) -> str:
        p = self.params.probability
        if self.params.mode == "random":
            return f"Monitoring: each citizen's harvest is seen by the authorities with probability {p:g}."
        return (f"Monitoring: a citizen's harvest is seen when at least one of its neighbours notices it (each "
                f"with probability {p:g}).")

    def decide(self, observation: Any) -> np.ndarray:
        n, p = self.society.num_citizens, self.params.probability
        if self.params.mode == "random":
            return self.rng.random(n) < p
        seen = self.rng.random(self._row_of_entry.size) < p
        return np.bincount(self._row_of_entry[seen], minlength=n) > 0

    def apply(self, detected: np.ndarray) -> None:
        present = self.society.present
        self.detected[:] = detected if present is None else detected & present

    def metrics(self) -> dict[str, Any]:
        """The share of the citizens still there whose harvest was seen."""
        present = self.society.present
        return {"monitored_share": float((self.detected if present is None else self.detected[present]).mean())}
