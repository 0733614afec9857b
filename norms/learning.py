"""Social learning of norms: payoff-biased imitation and conformist transmission over the social graph.

Each round, after the harvest and its sanctions, every learning citizen
* looks at one random neighbour and, if that neighbour earned more this round, copies its personal norm with
  probability ``imitation * gain / (max payoff - min payoff)`` (Schlag's proportional imitation rule);
* then moves its personal norm toward the median norm of its neighbours by the weight `conformity`.
A round's payoff is the change in wealth since this phase last ran (harvest, returns, sanctions given and
received). Learners (the `learner` policy) then act on the norm they hold.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from norms import kernels
from norms.state import act_on_norms, check_policies, ensure_norm_columns, policy_mask
from society.phases import Phase
from society.scenario import POLICY_NAMES


class LearningParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    imitation: float = Field(1.0, ge=0, le=1, description="scale of the chance to copy a better-paid neighbour")
    conformity: float = Field(0.1, ge=0, le=1, description="weight of the neighbours' median norm")
    who: list[str] = Field(default_factory=lambda: list(POLICY_NAMES), description="policies whose norms learn")

    @field_validator("who")
    @classmethod
    def _known_policies(cls, value: list[str]) -> list[str]:
        return check_policies(value)


class LearningPhase(Phase):
    name = "social_learning"
    Params = LearningParams

    def __init__(self, society: Any, params: LearningParams, index: int) -> None:
        super().__init__(society, params, index)
        ensure_norm_columns(society)
        society.state.add("wealth_at_learning", np.float64, record=False)[:] = society.state["wealth"]
        self.rows = np.flatnonzero(policy_mask(society, params.who))

    def apply(self, decisions: None) -> None:
        society, state, p = self.society, self.society.state, self.params
        graph, rows = society.graph, self.rows
        payoff = state["wealth"] - state["wealth_at_learning"]
        state["wealth_at_learning"] = state["wealth"]
        norm = state["personal_norm"].copy()
        copied = 0
        if p.imitation > 0 and rows.size:
            pick, accept = self.rng.random(rows.size), self.rng.random(rows.size)
            spread = float(payoff.max() - payoff.min())
            sources = kernels.imitation_sources(
                graph.indptr, graph.indices, payoff, rows, pick, accept, spread / p.imitation
            )
            copies = sources >= 0
            norm[rows[copies]] = state["personal_norm"][sources[copies]]
            copied = int(copies.sum())
        if p.conformity > 0 and rows.size:
            median = kernels.neighbour_median(graph.indptr, graph.indices, norm, rows)
            norm[rows] = (1 - p.conformity) * norm[rows] + p.conformity * median
        state["personal_norm"] = norm
        act_on_norms(society)
        self._row = {"imitations": copied}

    def metrics(self) -> dict[str, Any]:
        return self._row
