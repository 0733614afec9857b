"""Invest: Ostrom, Gardner & Walker's lab CPR game — tokens go to the common pool or to an outside market.

The game. n citizens each receive an endowment e and put x_i of it in a common pool; a token kept earns the
outside return w; the pool returns a X - b X^2 on the total X = sum x_i, shared in proportion to investment. A
citizen's payoff is

    u_i = w (e - x_i) + (x_i / X) (a X - b X^2) = w e + x_i (a - w - b X).

Best response. Given the others' total X_-i, du_i/dx_i = a - w - b X_-i - 2 b x_i = 0 gives

    BR(X_-i) = (a - w - b X_-i) / (2 b),  clipped to [0, e].

Symmetric Nash. x = BR((n - 1) x) gives x* = (a - w) / (b (n + 1)), clipped to [0, e] (at e every citizen's
best response to the others at e is still e or more, so the corner is an equilibrium too); X_N = n x*.
Social optimum. The group's net yield a X - b X^2 - w X peaks at X* = (a - w) / (2 b) (0 when a <= w), at most
n e. With Ostrom's a = 23, b = 0.25, w = 5, n = 8, e = 25: x* = 8 (X_N = 64) and X* = 36; net yields 128 and 324.

Learning. With `heuristic: best_response` heuristic citizens invest what their policy asks in the first round,
then each round move from their last investment toward the best response to the others' last total:
x_i <- inertia x_i + (1 - inertia) BR(X_-i). The symmetric deviation from x* is multiplied each round by
inertia - (1 - inertia)(n - 1)/2, asymmetric ones by (1 + inertia)/2, so play converges to the Nash when
inertia > 1 - 4 / (n + 1) (0.56 for n = 8) and oscillates otherwise (simultaneous Cournot best replies).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from society.phases import Phase
from society.phases.deciding import Fallback, Question
from society.phases.decisions import HarvestDecision
from society.phases.fallbacks import LastRequests
from society.phases.harvest import record_takes
from society.policies.heuristics import followed_takes, requested_takes
from society.scenario.bounds import MAX_AMOUNT
from society.world import commons_kernels as kernels

RULE = (
    "Investment: every citizen receives {endowment:g} tokens a round and splits them between an outside market, "
    "which pays {outside:g} cents a token, and a common pool, whose group return from X tokens is "
    "{a:g}X - {b:g}X^2 cents, shared in proportion to what each put in."
)
OBSERVATION = (
    "Round {round} of {rounds}. You have {endowment:g} tokens.{hint} How many tokens do you put in the common "
    "pool? {format}"
)
OPTIMUM_HINT = " Together the group earns most when it puts {optimum:.1f} tokens in the pool ({share:.1f} each)."


class InvestParams(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    endowment: float = Field(25.0, gt=0, le=MAX_AMOUNT, description="tokens each citizen receives per round")
    outside_return: float = Field(5.0, ge=0, le=MAX_AMOUNT, description="cents a token earns in the outside market")
    a: float = Field(23.0, gt=0, le=MAX_AMOUNT, description="group return from X tokens is a*X - b*X^2 (cents)")
    b: float = Field(0.25, gt=0, le=MAX_AMOUNT)
    heuristic: Literal["policy", "best_response"] = Field(
        "policy", description="heuristic citizens invest what their policy asks, or learn to best-respond from round 2"
    )
    inertia: float = Field(0.75, ge=0, lt=1, description="best_response: weight kept on one's last investment")
    show_optimum: bool = Field(False, description="a treatment: LLM citizens are told the social optimum")
    fallback: Literal["nothing", "repeat_last", "sustainable"] = Field(
        "nothing", description="what an LLM citizen invests when its answer is missing or invalid: nothing, what "
        "it invested last round, or its share of the social optimum (a treatment, never the default)"
    )


class InvestPhase(Phase):
    """Each citizen's fair share is its part of the social optimum X*; see the module for the game's equilibria."""

    name = "invest"
    Params = InvestParams
    provides = ("takes",)

    def __init__(self, society: Any, params: InvestParams, index: int) -> None:
        super().__init__(society, params, index)
        self.last = LastRequests(society, index) if params.fallback == "repeat_last" else None

    def rule(self) -> str:
        p = self.params
        return RULE.format(endowment=p.endowment, outside=p.outside_return, a=p.a, b=p.b)

    @property
    def optimum(self) -> float:
        """Group investment that maximises net yield."""
        p = self.params
        return min(max(p.a - p.outside_return, 0.0) / (2 * p.b), self.society.num_present * p.endowment)

    @property
    def nash(self) -> float:
        """Each citizen's investment in the symmetric Nash equilibrium, x* = (a - w) / (b (n + 1)) within [0, e]."""
        p = self.params
        return min(max(p.a - p.outside_return, 0.0) / (p.b * (self.society.num_present + 1)), p.endowment)

    def best_response(self, others: np.ndarray) -> np.ndarray:
        """The investment that maximises a citizen's payoff given the others' total, (a - w - b X_-i) / 2b in [0, e]."""
        p = self.params
        return np.clip((p.a - p.outside_return - p.b * others) / (2 * p.b), 0.0, p.endowment)

    def observe(self) -> tuple[np.ndarray, np.ndarray]:
        n = self.society.num_citizens
        return np.full(n, self.optimum / self.society.num_present), np.full(n, self.params.endowment)

    def decide(self, view: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        fair_share, endowment = view
        path = self.society.deciding
        decided = path.decide(
            self,
            rule=lambda: self._heuristic(fair_share, endowment),
            question=self._question(path.llm_citizens, fair_share, endowment) if path.llm_citizens.size else None,
            fallback=Fallback(self.params.fallback, lambda failed: self._fallback(failed, fair_share)),
        )
        invested, asked = decided.rule, decided.asked
        invested[asked] = np.clip(decided.values(lambda answer: answer.amount), 0.0, endowment[asked])
        return fair_share, invested

    def _heuristic(self, fair_share: np.ndarray, endowment: np.ndarray) -> np.ndarray:
        """What heuristic citizens invest: their policy's request, or after round 1 a step toward a best response."""
        if self.params.heuristic == "policy" or self.society.round <= 1:
            return requested_takes(self.society, fair_share, endowment)
        last = self.society.state["take"]
        step = self.best_response(last.sum() - last)
        return self.params.inertia * last + (1 - self.params.inertia) * step

    def _fallback(self, failed: np.ndarray, fair_share: np.ndarray) -> np.ndarray:
        """What an LLM citizen whose answer failed invests: nothing, last round's investment, or its share."""
        if self.params.fallback == "sustainable":
            return fair_share[failed]
        if self.params.fallback == "repeat_last":
            return self.last.repeat(failed)
        return np.zeros(failed.size)

    def _question(self, citizens: np.ndarray, fair_share: np.ndarray, endowment: np.ndarray) -> Question:
        """How many tokens each LLM citizen puts in the pool (told the social optimum when the scenario says)."""
        llm = self.society.llm
        hint = OPTIMUM_HINT.format(optimum=self.optimum, share=fair_share[0]) if self.params.show_optimum else ""
        text = OBSERVATION.format(round=self.society.round, rounds=self.society.scenario.rounds,
                                  endowment=self.params.endowment, hint=hint,
                                  format=llm.answer_format(HarvestDecision))
        return Question(citizens, [text] * citizens.size, HarvestDecision, heuristic=lambda spec, followers: [
            HarvestDecision(amount=amount)
            for amount in followed_takes(self.society, spec, followers, fair_share, endowment)
        ])

    def apply(self, decisions: tuple[np.ndarray, np.ndarray]) -> None:
        fair_share, invested = decisions
        p = self.params
        record_takes(self.society, fair_share, invested, invested)
        if self.last is not None:
            self.last.remember(invested)
        earnings = p.outside_return * (p.endowment - invested) + kernels.cpr_returns(invested, p.a, p.b)
        present = self.society.present
        if present is not None:  # removed citizens earn nothing and count in no share
            earnings[~present] = 0.0
            invested, fair_share = invested[present], fair_share[present]
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
