"""Norm beliefs: personal norms and empirical expectations updated from what each citizen sees its neighbours take.

After the round's harvest (and sanctions), every citizen
* moves its empirical expectation toward the mean take ratio of its neighbours:
  ``E <- (1 - observation) E + observation * mean_neighbours(ratio)`` (isolated citizens watch themselves);
* moves its personal norm toward a blend of what others do and what others say one should do:
  ``P <- (1 - internalization) P + internalization * (normative_weight * N + (1 - normative_weight) * E)``.
Normative expectations `N` change when citizens hear each other (the `communicate` phase).
This phase also writes the round's norm metrics, so it belongs at the end of the schedule. A norm emerges when
the personal norms of the citizens who can still take (whose patch has not collapsed) agree; on a collapsed
commons none emerges, since there agreeing on the forced take is not cooperating.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from norms import metrics
from norms.state import ensure_norm_columns
from society.phases import Phase
from society.scenario.bounds import MAX_FACTOR
from society.world.graph import neighbor_mean

RULE = (
    "Beliefs: at the end of the round, what each citizen expects others to take follows what its neighbours took, "
    "and its norm drifts toward what others take and what they say one should take."
)


class BeliefsParams(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    observation: float = Field(0.5, ge=0, le=1, description="weight of this round's observed takes in E")
    internalization: float = Field(0.2, ge=0, le=1, description="how far the personal norm moves each round")
    normative_weight: float = Field(0.5, ge=0, le=1, description="share of N (vs E) in what the norm moves toward")
    tolerance: float = Field(
        0.05, ge=0, le=MAX_FACTOR, description="a take ratio within norm x (1 + tolerance) complies"
    )
    emergence_threshold: float = Field(
        0.1, gt=0, le=MAX_FACTOR, description="dispersion under which a norm counts as emerged"
    )


def update_empirical(
    indptr: np.ndarray, indices: np.ndarray, empirical: np.ndarray, ratio: np.ndarray, observation: float
) -> np.ndarray:
    """New empirical expectations after watching the neighbours' take ratios."""
    observed = neighbor_mean(indptr, indices, ratio, ratio)
    return (1.0 - observation) * empirical + observation * observed


def update_personal(
    personal: np.ndarray, empirical: np.ndarray, normative: np.ndarray, internalization: float,
    normative_weight: float,
) -> np.ndarray:
    """New personal norms, pulled toward what others do (E) and what others say one should do (N)."""
    target = normative_weight * normative + (1.0 - normative_weight) * empirical
    return (1.0 - internalization) * personal + internalization * target


class BeliefsPhase(Phase):
    name = "norm_beliefs"
    Params = BeliefsParams
    reads = ("takes",)

    def __init__(self, society: Any, params: BeliefsParams, index: int) -> None:
        super().__init__(society, params, index)
        ensure_norm_columns(society)
        if "previous_norm" not in society.state:  # a phase rebuilt by an intervention keeps it
            society.state.add("previous_norm", np.float64, record=False)[:] = society.state["personal_norm"]
        self.emergence = metrics.EmergenceTracker(params.emergence_threshold)
        self._row: dict[str, Any] = {}

    def rule(self) -> str:
        return RULE

    def apply(self, decisions: None) -> None:
        society, state, p = self.society, self.society.state, self.params
        graph = society.graph
        state["empirical_expectation"] = update_empirical(
            graph.indptr, graph.indices, state["empirical_expectation"], state["ratio"], p.observation
        )
        state["personal_norm"] = update_personal(
            state["personal_norm"], state["empirical_expectation"], state["normative_expectation"],
            p.internalization, p.normative_weight,
        )
        self._row = self.round_metrics()
        state["previous_norm"] = state["personal_norm"]

    def round_metrics(self) -> dict[str, Any]:
        """The norm columns of this round's row (stability compares with the norms at the end of last round), over
        the citizens still there."""
        state, p, present = self.society.state, self.params, self.society.present
        personal, ratio = state["personal_norm"], state["ratio"]
        sanctioned, previous = state["punish_received"] > 0, state["previous_norm"]
        if present is not None:
            personal, ratio, sanctioned = personal[present], ratio[present], sanctioned[present]
            previous = previous[present]
        norm = metrics.community_norm(personal)
        dispersion = metrics.norm_dispersion(personal)
        return {
            "community_norm": norm,
            "norm_dispersion": dispersion,
            "compliance": metrics.compliance(ratio, norm, p.tolerance),
            "sanction_norm_agreement": metrics.sanction_norm_agreement(sanctioned, ratio, norm, p.tolerance),
            "cooperation_index": metrics.cooperation_index(ratio, p.tolerance),
            "norm_emergence_round": self.emergence.update(self.society.round, self._live_dispersion(personal)),
            "norm_stability": metrics.norm_stability(personal, previous),
        }

    def _live_dispersion(self, personal: np.ndarray) -> float | None:
        """Dispersion of the personal norms of citizens whose patch has not collapsed (all without a commons);
        None once every patch has: what emergence is judged on."""
        commons = self.society.commons
        if commons is None or not commons.collapsed.any():
            return metrics.norm_dispersion(personal)
        patches = commons.patch_of_citizen
        live = ~commons.collapsed[patches if self.society.present is None else patches[self.society.present]]
        return metrics.norm_dispersion(personal[live]) if live.any() else None

    def metrics(self) -> dict[str, Any]:
        return self._row

    def state_dict(self) -> dict[str, Any]:
        return {"emerged_since": self.emergence.since}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.emergence.since = state["emerged_since"]
