"""The deciding path: the one way every phase turns citizens into decisions.

A phase hands `DecidingPath.decide` its heuristic rule, the question it puts to LLM citizens and its named
fallback. The path runs the rule (the heuristic policy groups' kernels), sends the LLM citizens' question as one
batched call, applies the fallback to every LLM citizen whose answer was missing or invalid, and counts what
happened per policy group. The order is always the same (rule, then question, then fallback), so the random
streams a rule or a fallback draws from advance the same way in every phase.

Cohorts, activation and fallback accounting are written here once, for every phase.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np

from society.phases.activation import Activation
from society.phases.decisions import Decision
from society.phases.fallbacks import FallbackLedger

if TYPE_CHECKING:
    from society.core.model import Society

R = TypeVar("R")
NO_CITIZENS = np.zeros(0, np.int64)


@dataclass(frozen=True)
class Question:
    """What a phase asks some LLM citizens: one observation each, the decision type, optional narrowed schemas.

    `label` names the call in the `llm_calls` table (the phase's name unless a phase asks several questions).
    `heuristic`, where the question has one, gives the decisions of some of `citizens` following a heuristic policy
    (the policy's spec, the citizens): with activation, what citizens not asked decide when the scenario names one.
    `acts` is False for a question whose answers change nothing in the world (a survey): then every citizen is
    asked (activation does not apply), a failed answer is not flagged in the world's `fallback` column (only in
    `llm_calls`), and cohorts draw from the label's own random stream, so the world plays as without it.
    """

    citizens: np.ndarray
    observations: Sequence[str]
    decision: type[Decision]
    schemas: Sequence[Mapping[str, Any]] | None = None
    label: str | None = None
    heuristic: Callable[[Any, np.ndarray], list[Decision]] | None = None
    acts: bool = True


@dataclass(frozen=True)
class Fallback(Generic[R]):
    """What a citizen whose answer failed does instead, under the name the scenario (or the phase) gives it."""

    name: str
    decide: Callable[[np.ndarray], R]


@dataclass(frozen=True)
class GroupTally:
    """One policy group's LLM citizens in one decision: asked, answered validly, decided by the fallback, and
    (with activation) not asked this round but repeating their last answer or following the heuristic policy."""

    asked: int = 0
    answered: int = 0
    fallbacks: int = 0
    repeated: int = 0
    followed: int = 0


@dataclass(frozen=True)
class Decided(Generic[R]):
    """What one pass of the deciding path produced.

    `rule` is what the heuristic rule decided, `asked` the LLM citizens the question was for (in question order)
    and `answers` their decisions (None where the answer failed); `fallback` is what the fallback decided for
    `failed`. With activation, `repeated` are those of `asked` not asked this round, whose answers repeat their
    last ones, and `followed` those whose answers are the heuristic policy's.
    """

    rule: R | None = None
    asked: np.ndarray = field(default_factory=lambda: NO_CITIZENS)
    repeated: np.ndarray = field(default_factory=lambda: NO_CITIZENS)
    followed: np.ndarray = field(default_factory=lambda: NO_CITIZENS)
    answers: list[Decision | None] = field(default_factory=list)
    failed: np.ndarray = field(default_factory=lambda: NO_CITIZENS)
    fallback: R | None = None
    fallback_name: str | None = None
    tally: dict[int, GroupTally] = field(default_factory=dict)

    @property
    def answered(self) -> np.ndarray:
        """Which of `asked` gave a valid answer."""
        return np.array([answer is not None for answer in self.answers], dtype=bool)

    def values(self, read: Callable[[Any], float]) -> np.ndarray:
        """One number per asked citizen: `read` of its answer, or what the fallback (an array over `failed`) gave."""
        values = np.empty(self.asked.size, dtype=np.float64)
        answered = self.answered
        values[answered] = [read(answer) for answer in self.answers if answer is not None]
        if self.failed.size:
            values[~answered] = self.fallback
        return values


class DecidingPath:
    """The society's deciding path: who decides by rule and who is asked, the batched question, the fallbacks."""

    def __init__(self, society: Society) -> None:
        self.society = society
        self.activation: Activation | None = None
        if society.scenario.has_llm_citizens and society.scenario.llm.activation.on:
            self.activation = society.slot(Activation, lambda: Activation(society))
        self.fallbacks = FallbackLedger(society) if society.scenario.has_llm_citizens else None

    def begin_round(self) -> None:
        """Start a round: clear the fallback flags, draw who is not asked (with activation)."""
        if self.fallbacks is not None:
            self.fallbacks.begin_round()
        if self.activation is not None:
            self.activation.begin_round(self.society.rng_tree("activation"))

    def round_metrics(self) -> dict[str, Any]:
        """This round's deciding columns of the `rounds` table: fallbacks' and activation's (when it is on)."""
        row = {} if self.fallbacks is None else self.fallbacks.round_metrics()
        return row if self.activation is None else row | self.activation.round_metrics()

    @property
    def llm_citizens(self) -> np.ndarray:
        """Every LLM citizen, in citizen order."""
        llm = self.society.llm
        return NO_CITIZENS if llm is None else llm.members

    def by_rule(self, mask: np.ndarray) -> np.ndarray:
        """`mask` (a boolean array over citizens) without the LLM citizens: those the heuristic rule decides for."""
        by_rule = mask.copy()
        by_rule[self.llm_citizens] = False
        return by_rule

    def asked_among(self, mask: np.ndarray) -> np.ndarray:
        """The LLM citizens marked in `mask`, in citizen order: those a phase asks."""
        return self.llm_citizens[mask[self.llm_citizens]]

    def decide(
        self,
        phase: Any,
        rule: Callable[[], R] | None = None,
        question: Question | None = None,
        fallback: Fallback[R] | None = None,
    ) -> Decided[R]:
        """Run the rule, ask the question as one batch, then apply the fallback to every failed answer."""
        decided_by_rule = rule() if rule is not None else None
        llm = self.society.llm
        if question is None or llm is None or question.citizens.size == 0:
            return Decided(rule=decided_by_rule)
        asked = np.asarray(question.citizens, dtype=np.int64)
        label = question.label or phase.name
        answers, repeated, followed = self._answers(label, asked, question)
        failed = asked[np.array([answer is None for answer in answers], dtype=bool)]
        if self.fallbacks is not None and question.acts:
            self.fallbacks.mark(failed)
        backup = fallback.decide(failed) if fallback is not None and failed.size else None
        return Decided(
            rule=decided_by_rule, asked=asked, repeated=repeated, followed=followed, answers=answers, failed=failed,
            fallback=backup, fallback_name=None if fallback is None else fallback.name,
            tally=self._tally(asked, failed, repeated, followed),
        )

    def _answers(
        self, label: str, citizens: np.ndarray, question: Question
    ) -> tuple[list[Decision | None], np.ndarray, np.ndarray]:
        """Every citizen's answer: asked in one batch or, not asked this round, the heuristic policy's decision or
        its last answer repeated; and the citizens whose answers were repeated, and those who followed the policy."""
        llm, activation = self.society.llm, self.activation
        if activation is None or not question.acts:
            own_stream = {} if question.acts else {"cohort_stream": f"cohorts:{label}"}
            answers = llm.ask(label, citizens, question.observations, question.decision, question.schemas,
                              **own_stream)
            return answers, NO_CITIZENS, NO_CITIZENS
        follow, repeat = activation.split(label, citizens, question.heuristic is not None)
        ask = np.flatnonzero(~(repeat | follow))
        answers: list[Decision | None] = [None] * citizens.size
        if ask.size:
            schemas = None if question.schemas is None else [question.schemas[k] for k in ask]
            got = llm.ask(label, citizens[ask], [question.observations[k] for k in ask], question.decision, schemas)
            activation.remember(label, citizens[ask], got)
            for k, answer in zip(ask, got):
                answers[k] = answer
        for k, answer in zip(np.flatnonzero(repeat), activation.repeat(label, citizens[repeat], question.decision)):
            answers[k] = answer
        if question.heuristic is not None and follow.any():
            for k, answer in zip(np.flatnonzero(follow), activation.follow(citizens[follow], question.heuristic)):
                answers[k] = answer
        return answers, citizens[repeat], citizens[follow]

    def _tally(
        self, covered: np.ndarray, failed: np.ndarray, repeated: np.ndarray, followed: np.ndarray
    ) -> dict[int, GroupTally]:
        """Asked, answered, fallbacks, repeated and followed decisions per policy group."""
        groups, count = self.society.state["group"], len(self.society.policy_specs)
        covered_per, failed_per, repeated_per, followed_per = (np.bincount(groups[c], minlength=count)
                                                               for c in (covered, failed, repeated, followed))
        asked_per = covered_per - repeated_per - followed_per
        return {
            int(g): GroupTally(int(asked_per[g]), int(asked_per[g] - failed_per[g]), int(failed_per[g]),
                               int(repeated_per[g]), int(followed_per[g]))
            for g in np.flatnonzero(covered_per)
        }
