"""Invest: Ostrom, Gardner & Walker's lab CPR game — tokens go to the common pool or to an outside market."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from society.phases import Phase
from society.phases.deciding import Fallback, Question
from society.phases.decisions import HarvestDecision
from society.phases.harvest import record_takes
from society.policies.heuristics import requested_takes
from society.scenario.bounds import MAX_AMOUNT
from society.world import commons_kernels as kernels

RULE = (
    "Investment: every citizen receives {endowment:g} tokens a round and splits them between an outside market, "
    "which pays {outside:g} cents a token, and a common pool, whose group return from X tokens is "
    "{a:g}X - {b:g}X^2 cents, shared in proportion to what each put in."
)
OBSERVATION = (
    "Round {round} of {rounds}. You have {endowment:g} tokens. Together the group earns most when it puts "
    "{optimum:.1f} tokens in the pool ({share:.1f} each). How many tokens do you put in the common pool? {format}"
)


class InvestParams(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    endowment: float = Field(25.0, gt=0, le=MAX_AMOUNT, description="tokens each citizen receives per round")
    outside_return: float = Field(5.0, ge=0, le=MAX_AMOUNT, description="cents a token earns in the outside market")
    a: float = Field(23.0, gt=0, le=MAX_AMOUNT, description="group return from X tokens is a*X - b*X^2 (cents)")
    b: float = Field(0.25, gt=0, le=MAX_AMOUNT)


class InvestPhase(Phase):
    """Each citizen's fair share is its part of the social optimum X* = (a - w) / 2b."""

    name = "invest"
    Params = InvestParams
    provides = ("takes",)

    def rule(self) -> str:
        p = self.params
        return RULE.format(endowment=p.endowment, outside=p.outside_return, a=p.a, b=p.b)

    @property
    def optimum(self) -> float:
        """Group investment that maximises net yield."""
        p = self.params
        return max(p.a - p.outside_return, 0.0) / (2 * p.b)

    def observe(self) -> tuple[np.ndarray, np.ndarray]:
        n = self.society.num_citizens
        return np.full(n, self.optimum / n), np.full(n, self.params.endowment)

    def decide(self, view: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        fair_share, endowment = view
        path = self.society.deciding
        decided = path.decide(
            self,
            rule=lambda: requested_takes(self.society, fair_share, endowment),
            question=self._question(path.llm_citizens, fair_share) if path.llm_citizens.size else None,
            fallback=Fallback("sustainable", lambda failed: fair_share[failed]),
        )
        invested, asked = decided.rule, decided.asked
        invested[asked] = np.clip(decided.values(lambda answer: answer.amount), 0.0, endowment[asked])
        return fair_share, invested

    def _question(self, citizens: np.ndarray, fair_share: np.ndarray) -> Question:
        """How many tokens each LLM citizen puts in the pool."""
        llm = self.society.llm
        text = OBSERVATION.format(round=self.society.round, rounds=self.society.scenario.rounds,
                                  endowment=self.params.endowment, optimum=self.optimum,
                                  share=fair_share[0], format=llm.answer_format(HarvestDecision))
        return Question(citizens, [text] * citizens.size, HarvestDecision)

    def apply(self, decisions: tuple[np.ndarray, np.ndarray]) -> None:
        fair_share, invested = decisions
        p = self.params
        record_takes(self.society, fair_share, invested, invested)
        earnings = p.outside_return * (p.endowment - invested) + kernels.cpr_returns(invested, p.a, p.b)
        self.society.state["wealth"] += earnings
        total = float(invested.sum())
        self._metrics = {
            "group_investment": total,
            "group_return": p.a * total - p.b * total**2,
            "net_yield": self.net_yield(total),
            "net_yield_share": self.net_yield(total) / self.net_yield(self.optimum),
            "over_share_round": float(np.mean(invested > fair_share + 1e-9)),
        }

    def net_yield(self, total: float) -> float:
        """Group return minus what the invested tokens would have earned outside (cents)."""
        p = self.params
        return p.a * total - p.b * total**2 - p.outside_return * total

    def metrics(self) -> dict[str, Any]:
        return self._metrics

    def memory(self, citizens: np.ndarray) -> dict[str, list[str]]:
        return {"invest": [f"you put {tokens:.1f} of your {self.params.endowment:g} tokens in the common pool."
                           for tokens in self.society.state["take"][citizens]]}
