"""Harvest: every citizen asks for an amount from its patch; the commons grants what it can."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from society.phases import Phase
from society.phases.deciding import Fallback, Question
from society.phases.decisions import HarvestDecision
from society.phases.fallbacks import LastRequests
from society.policies.heuristics import followed_takes, requested_takes
from society.scenario.bounds import MAX_AMOUNT
from society.world import commons_kernels as kernels

RULE = (
    "Harvest: every citizen says how many {unit} to take from the {resource}; the takes are granted together, "
    "and when citizens ask for more than there is, what there is gets shared out. What you take adds to your "
    "wealth."
)
OBSERVATION = (
    "Round {round} of {rounds}. The {resource} holds {stock:.1f} {unit}, shared by {sharing} citizens.{hint} "
    "You may take 0 to {most:.1f}.{universalization}\nHow many {unit} do you take? {format}"
)
SHARE_HINT = " Your sustainable share (what keeps the {resource} as it is): {share:.1f}."
UNIVERSALIZATION = (
    " Before you decide, ask yourself what would happen if every citizen took what you take: if each took more "
    "than {share:.1f} {unit}, the {resource} would shrink and could collapse."
)


class HarvestParams(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    reputation_memory: float = Field(0.8, ge=0, le=1, description="weight of past reputation in its moving average")
    max_take: float | None = Field(
        None, gt=0, le=MAX_AMOUNT, description="most one citizen can take in a round (none: what its patch holds)"
    )
    universalization: bool = Field(False, description="GovSim's prompt: LLM citizens weigh everyone doing the same")
    show_sustainable_share: bool = Field(
        False, description="a treatment: LLM citizens are told their sustainable share (prompt and memory)"
    )
    fallback: Literal["nothing", "repeat_last", "sustainable"] = Field(
        "nothing", description="what an LLM citizen asks for when its answer is missing or invalid: nothing, "
        "what it asked for last round, or its sustainable share (a treatment, never the default)"
    )


@dataclass(frozen=True)
class HarvestView:
    fair_share: np.ndarray
    max_take: np.ndarray


class HarvestPhase(Phase):
    name = "harvest"
    Params = HarvestParams
    needs_commons = True
    provides = ("takes",)

    def __init__(self, society: Any, params: HarvestParams, index: int) -> None:
        super().__init__(society, params, index)
        self.last = LastRequests(society, index) if params.fallback == "repeat_last" else None

    def rule(self) -> str:
        commons = self.society.scenario.commons
        return RULE.format(unit=commons.unit, resource=commons.resource)

    def observe(self) -> HarvestView:
        commons = self.society.commons
        most = commons.stock[commons.patch_of_citizen]
        if self.params.max_take is not None:
            most = np.minimum(most, self.params.max_take)
        return HarvestView(commons.fair_share(), most)

    def decide(self, view: HarvestView) -> tuple[HarvestView, np.ndarray]:
        path = self.society.deciding
        llm = path.llm_citizens
        able = llm[view.max_take[llm] > 0]  # nothing to decide on an empty or collapsed patch
        decided = path.decide(
            self,
            rule=lambda: requested_takes(self.society, view.fair_share, view.max_take),
            question=self._question(able, view) if able.size else None,
            fallback=Fallback(self.params.fallback, lambda failed: self._fallback(failed, view)),
        )
        requests = decided.rule
        asked = decided.asked
        requests[asked] = np.clip(decided.values(lambda answer: answer.amount), 0.0, view.max_take[asked])
        return view, requests

    def _fallback(self, failed: np.ndarray, view: HarvestView) -> np.ndarray:
        """What an LLM citizen whose answer failed asks for: nothing, last round's request, or its share."""
        if self.params.fallback == "sustainable":
            return view.fair_share[failed]
        if self.params.fallback == "repeat_last":
            return self.last.repeat(failed)
        return np.zeros(failed.size)

    def _question(self, citizens: np.ndarray, view: HarvestView) -> Question:
        """How many units each LLM citizen takes, seeing its patch's stock (and its sustainable share when the
        scenario shows it)."""
        society, spec = self.society, self.society.scenario.commons
        commons = society.commons
        patches = commons.patch_of_citizen[citizens]
        texts = dict(unit=spec.unit, resource=spec.resource, round=society.round, rounds=society.scenario.rounds,
                     format=society.llm.answer_format(HarvestDecision))
        observations = []
        for citizen, patch in zip(citizens, patches):
            share = view.fair_share[citizen]
            universalization = UNIVERSALIZATION.format(share=share, **texts) if self.params.universalization else ""
            hint = SHARE_HINT.format(share=share, **texts) if self.params.show_sustainable_share else ""
            observations.append(OBSERVATION.format(
                stock=commons.stock[patch], sharing=commons.citizens_per_patch[patch], hint=hint,
                most=view.max_take[citizen], universalization=universalization, **texts,
            ))
        return Question(citizens, observations, HarvestDecision, heuristic=lambda spec, followers: [
            HarvestDecision(amount=amount)
            for amount in followed_takes(society, spec, followers, view.fair_share, view.max_take)
        ])

    def apply(self, decisions: tuple[HarvestView, np.ndarray]) -> None:
        view, requests = decisions
        society, state = self.society, self.society.state
        granted = society.commons.allocate(requests, self.rng)
        if self.last is not None:
            self.last.remember(requests)
        record_takes(society, view.fair_share, requests, granted)
        over = kernels.settle_harvest(requests, granted, view.fair_share, self.params.reputation_memory,
                                      state["wealth"], state["reputation"])
        self._totals = (float(requests.sum()), float(granted.sum()), over / max(society.num_present, 1))

    def metrics(self) -> dict[str, Any]:
        """Demand, total harvest and `over_share_round`: the share of all citizens who asked this round for more
        than their sustainable share (of those still there) (not GovSim's over-usage, which is run-level: `society.rundir.run_metrics`)."""
        demand, harvest, over_share = self._totals
        return {"demand": demand, "total_harvest": harvest, "over_share_round": over_share}

    def memory(self, citizens: np.ndarray) -> dict[str, list[str]]:
        state, commons = self.society.state, self.society.commons
        stock = commons.stock[commons.patch_of_citizen[citizens]]
        shown = self.params.show_sustainable_share
        return {"harvest": [
            f"you asked {asked:.1f}, got {got:.1f}{f' (sustainable share {share:.1f})' if shown else ''}. "
            f"Stock after regrowth: {left:.1f}."
            for asked, got, share, left in zip(state["requested"][citizens], state["take"][citizens],
                                               state["fair_share"][citizens], stock)
        ]}


def record_takes(society: Any, fair_share: np.ndarray, requests: np.ndarray, granted: np.ndarray) -> None:
    """Write one round's takes into the state: what was asked, what was taken, and its ratio to the fair share."""
    state = society.state
    kernels.record_takes(
        np.asarray(fair_share, dtype=np.float64), np.asarray(requests, dtype=np.float64),
        np.asarray(granted, dtype=np.float64), state["fair_share"], state["requested"], state["take"],
        state["ratio"], state["total_take"],
    )
