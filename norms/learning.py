"""Social learning of norms: payoff-biased imitation and conformist transmission over the social graph.

Each round, after the harvest and its sanctions, every heuristic learning citizen
* looks at one random neighbour and, if that neighbour earned more this round, copies its personal norm with
  probability ``imitation * gain / (max payoff - min payoff)`` (Schlag's proportional imitation rule);
* then moves its personal norm toward the median norm of its neighbours by the weight `conformity`.
A round's payoff is the change in wealth since this phase last ran (harvest, returns, sanctions given and
received). Learners (the `learner` policy) then act on the norm they hold.

LLM citizens (when `llm` is among `who`) reflect instead: each one with a better-paid neighbour sees those
neighbours' take ratios and payoffs, best-paid first, and states the norm it now holds (`NormDecision`), at most
`max_norm`. A missing or invalid answer gets the fallback `keep_norm`: it keeps the norm it held, which is
abstaining; it is flagged like every fallback (the `fallback` column of `citizens` and `llm_calls`). Every parsed
answer is a `reflection` event (actor: the citizen; detail: JSON with the norm before and after and the neighbours
it saw).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from norms import kernels
from norms.state import act_on_norms, check_policies, ensure_norm_columns, policy_mask
from society.phases import Phase
from society.phases.deciding import Fallback, Question
from society.phases.decisions import Decision
from society.scenario.bounds import MAX_FACTOR
from society.scenario.schema import POLICY_NAMES

MAX_SHOWN = 8
RULE = (
    "Learning: after the harvest and any punishment, each citizen compares what it earned this round with what "
    "its neighbours earned, and may change the most it thinks each citizen should take (its norm)."
)
OBSERVATION = (
    "Round {round} of {rounds}. This round you took {ratio:.2f} times your sustainable share and earned "
    "{payoff:.1f}. These neighbours earned more than you:\n{neighbours}\nYou have held that each citizen should "
    "take at most {norm:.2f} times the sustainable share. Having seen how they fared, what is the most each "
    "citizen should take now? {format}"
)
NEIGHBOUR = "- citizen {citizen} took {ratio:.2f} times its sustainable share and earned {payoff:.1f}"


class LearningParams(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    imitation: float = Field(1.0, ge=0, le=1, description="scale of the chance to copy a better-paid neighbour")
    conformity: float = Field(0.1, ge=0, le=1, description="weight of the neighbours' median norm")
    who: list[str] = Field(default_factory=lambda: list(POLICY_NAMES), description="policies whose norms learn")
    max_norm: float = Field(
        3.0, gt=0, le=MAX_FACTOR, description="the highest norm an LLM citizen may state when it reflects"
    )

    @field_validator("who")
    @classmethod
    def _known_policies(cls, value: list[str]) -> list[str]:
        return check_policies(value)


class NormDecision(Decision):
    """The norm an LLM citizen holds after seeing how its better-paid neighbours fared."""

    personal_norm: float = Field(
        ge=0, description="the most each citizen should take, as a multiple of the sustainable share"
    )


def better_paid_neighbours(
    indptr: np.ndarray, indices: np.ndarray, payoff: np.ndarray, citizen: int, most: int
) -> np.ndarray:
    """The distinct neighbours of `citizen` that earned more than it, best-paid first (ties by number), at most `most`."""
    neighbours = np.unique(indices[indptr[citizen]:indptr[citizen + 1]])
    better = neighbours[(payoff[neighbours] > payoff[citizen] + 1e-9) & (neighbours != citizen)]
    return better[np.argsort(-payoff[better], kind="stable")][:most]


class LearningPhase(Phase):
    name = "social_learning"
    Params = LearningParams
    reads = ("takes",)

    def __init__(self, society: Any, params: LearningParams, index: int) -> None:
        super().__init__(society, params, index)
        ensure_norm_columns(society)
        if "wealth_at_learning" not in society.state:  # a phase rebuilt by an intervention keeps it
            society.state.add("wealth_at_learning", np.float64, record=False)[:] = society.state["wealth"]
        learning = policy_mask(society, params.who)
        self.reflecting = np.zeros(0, np.int64)
        if society.llm is not None:
            members = society.llm.members
            self.reflecting = members[learning[members]]
            learning[members] = False
        self.rows = np.flatnonzero(learning)

    def rule(self) -> str:
        return RULE

    def apply(self, decisions: None) -> None:
        society, state, p = self.society, self.society.state, self.params
        graph, rows, present = society.graph, self.rows, society.present
        if present is not None:  # removed citizens neither learn nor are learned from (they have no links)
            rows = rows[present[rows]]
        payoff = state["wealth"] - state["wealth_at_learning"]
        state["wealth_at_learning"] = state["wealth"]
        norm = state["personal_norm"].copy()
        copied = 0
        if p.imitation > 0 and rows.size:
            pick, accept = self.rng.random(rows.size), self.rng.random(rows.size)
            among = payoff if present is None else payoff[present]
            spread = float(among.max() - among.min())
            sources = kernels.imitation_sources(
                graph.indptr, graph.indices, payoff, rows, pick, accept, spread / p.imitation
            )
            copies = sources >= 0
            norm[rows[copies]] = state["personal_norm"][sources[copies]]
            copied = int(copies.sum())
        if p.conformity > 0 and rows.size:
            median = kernels.neighbour_median(graph.indptr, graph.indices, norm, rows)
            norm[rows] = (1 - p.conformity) * norm[rows] + p.conformity * median
        self._row: dict[str, Any] = {"imitations": copied}
        if self.reflecting.size:
            citizens, revised = self._reflect(payoff)
            norm[citizens] = revised
        state["personal_norm"] = norm
        act_on_norms(society)

    def _reflect(self, payoff: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """LLM citizens with a better-paid neighbour state their norm: (citizens who answered, their new norms).

        The fallback of a citizen whose answer failed is to keep its norm.
        """
        society, p = self.society, self.params
        state = society.state
        seen = {int(c): better for c in self.reflecting
                if (better := better_paid_neighbours(society.graph.indptr, society.graph.indices, payoff, int(c),
                                                     MAX_SHOWN)).size}
        citizens = np.array(list(seen), dtype=np.int64)
        decided = society.deciding.decide(
            self, question=self._question(citizens, seen, payoff), fallback=Fallback("keep_norm", lambda failed: None)
        )
        answered = decided.answered
        before = state["personal_norm"][citizens[answered]]
        after = np.clip([d.personal_norm for d in decided.answers if d is not None], 0.0, p.max_norm)
        shown = [seen[int(c)] for c in citizens[answered]]
        details = [
            json.dumps({"norm_before": round(float(b), 4), "norm_after": round(float(a), 4), "neighbours": s.tolist()})
            for b, a, s in zip(before, after, shown)
        ]
        society.record_events(
            self.name, "reflection", citizens[answered], np.full(len(details), -1, np.int64), detail=details
        )
        society.llm.remember(citizens[answered], [
            f"each citizen should take at most {a:.2f} times their sustainable share" for a in after
        ], label="Your own norm, decided after reflecting")
        self._row |= {"llm_reflections": int(citizens.size),
                      "llm_norm_revisions": int(np.count_nonzero(np.abs(after - before) > 1e-9))}
        return citizens[answered], after.astype(np.float64)

    def _question(self, citizens: np.ndarray, seen: dict[int, np.ndarray], payoff: np.ndarray) -> Question:
        """The norm each reflecting LLM citizen holds after seeing its better-paid neighbours."""
        society, state = self.society, self.society.state
        texts = {"round": society.round, "rounds": society.scenario.rounds,
                 "format": society.llm.answer_format(NormDecision)}
        observations = []
        for citizen in citizens.tolist():
            lines = "\n".join(
                NEIGHBOUR.format(citizen=int(j), ratio=state["ratio"][j], payoff=payoff[j]) for j in seen[citizen]
            )
            observations.append(OBSERVATION.format(
                ratio=state["ratio"][citizen], payoff=payoff[citizen], neighbours=lines,
                norm=state["personal_norm"][citizen], **texts,
            ))
        schema = {"personal_norm": {"type": "number", "minimum": 0, "maximum": self.params.max_norm}}
        return Question(citizens, observations, NormDecision, [schema] * citizens.size)

    def metrics(self) -> dict[str, Any]:
        return self._row
