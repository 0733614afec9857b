"""An example of a new deciding phase, whole in one file: each citizen may give wealth to its poorest neighbour."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from society.phases import Phase
from society.phases.deciding import Fallback, Question
from society.phases.decisions import Decision
from society.world.graph import best_neighbor

OBSERVATION = (
    "Round {round}. You have {wealth:.1f}; your poorest neighbour, citizen {poorest}, has {their:.1f}. "
    "How much of your wealth do you give them? {format}"
)


class DonateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    share: float = Field(0.1, ge=0, le=1, description="share of its lead over the poorest neighbour a giver gives")
    fallback: Literal["nothing", "rule"] = Field("nothing", description="what a failed LLM answer gives")


class Donation(Decision):
    amount: float = Field(ge=0, description="wealth to give, 0 or more")


class DonatePhase(Phase):
    name = "donate"
    Params = DonateParams

    def rule(self) -> str:
        return "Giving: each citizen may give some of its wealth to its poorest neighbour."

    def observe(self) -> np.ndarray:
        """Each citizen's poorest neighbour (itself when it has none)."""
        graph, wealth = self.society.graph, self.society.state["wealth"]
        poorest = best_neighbor(graph.indptr, graph.indices, -wealth)
        return np.where(poorest < 0, np.arange(poorest.size), poorest)

    def decide(self, poorest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        path, wealth = self.society.deciding, self.society.state["wealth"]
        decided = path.decide(
            self,
            rule=lambda: self.params.share * np.maximum(wealth - wealth[poorest], 0.0),
            question=self._question(path.llm_citizens, poorest) if path.llm_citizens.size else None,
            fallback=Fallback(self.params.fallback, lambda failed: self._fallback(failed, poorest)),
        )
        gifts = decided.rule
        gifts[decided.asked] = decided.values(lambda answer: answer.amount)
        return poorest, np.clip(gifts, 0.0, np.maximum(wealth, 0.0))

    def _fallback(self, failed: np.ndarray, poorest: np.ndarray) -> np.ndarray:
        wealth = self.society.state["wealth"]
        if self.params.fallback == "nothing":
            return np.zeros(failed.size)
        return self.params.share * np.maximum(wealth[failed] - wealth[poorest[failed]], 0.0)

    def _question(self, citizens: np.ndarray, poorest: np.ndarray) -> Question:
        society, wealth = self.society, self.society.state["wealth"]
        answer = society.llm.answer_format(Donation)
        texts = [OBSERVATION.format(round=society.round, wealth=wealth[c], poorest=poorest[c],
                                    their=wealth[poorest[c]], format=answer) for c in citizens]
        return Question(citizens, texts, Donation)

    def apply(self, decisions: tuple[np.ndarray, np.ndarray]) -> None:
        poorest, gifts = decisions
        givers = np.flatnonzero((gifts > 0) & (poorest != np.arange(poorest.size)))
        wealth = self.society.state["wealth"]
        np.subtract.at(wealth, givers, gifts[givers])
        np.add.at(wealth, poorest[givers], gifts[givers])
        self.society.record_events(self.name, "donation", givers, poorest[givers], impact=gifts[givers])
        self._row = {"donated": float(gifts[givers].sum()), "donors": int(givers.size)}

    def metrics(self) -> dict[str, Any]:
        return self._row
