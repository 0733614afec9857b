"""Regrow: collapse check, regrowth, random shocks and diffusion between patches."""

from __future__ import annotations

from typing import Any

from society.phases import Phase


class RegrowPhase(Phase):
    name = "regrow"
    needs_commons = True

    def apply(self, decisions: None) -> None:
        self._shocks = int(self.society.commons.end_of_round(self.rng).sum())

    def metrics(self) -> dict[str, Any]:
        return {"shocks": self._shocks}
