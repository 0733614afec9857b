"""Regrow: collapse check, regrowth, random shocks and diffusion between patches."""

from __future__ import annotations

from typing import Any

from society.phases import Phase
from society.scenario.schema import DoublingRegrowth


class RegrowPhase(Phase):
    name = "regrow"
    needs_commons = True

    def rule(self) -> str:
        spec = self.society.scenario.commons
        if isinstance(spec.regrowth, DoublingRegrowth):
            growth = f"what is left doubles, up to {spec.capacity:g} {spec.unit}"
        else:
            growth = f"what is left grows back (logistic growth, rate {spec.regrowth.rate:g}) toward {spec.capacity:g} {spec.unit}"
        collapse = (
            f" If fewer than {spec.collapse_threshold:g} {spec.unit} are left after a harvest, the {spec.resource} "
            "collapses for good."
            if spec.collapse_threshold > 0 else ""
        )
        return f"Regrowth: after the harvest, {growth}.{collapse}"

    def apply(self, decisions: None) -> None:
        self._shocks = int(self.society.commons.end_of_round(self.rng).sum())

    def metrics(self) -> dict[str, Any]:
        return {"shocks": self._shocks}
