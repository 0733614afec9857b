"""Surveys: questionnaire items put to citizens without changing the world.

In a survey round (`every` k rounds and/or the listed `rounds`; every round when neither is given) each item is
asked of every LLM citizen, one batched call per item through the deciding path (`Question.acts` False: every
LLM citizen is asked, activation aside, and a failed answer is flagged only in `llm_calls` and here; it neither
stops the run nor counts in its validity verdict, which reports survey fallbacks apart). Heuristic
citizens answer an item from their state where it has a `heuristic` mapping, and have no row where it has none
(or where `by_policy` does not name their policy). An item with `only_with` is asked only where a phase of the
schedule provides that name (`elections` for trust in a leader), and skipped elsewhere.

Nothing of the world moves: no state column, wealth, memory, event or rounds column, and no random stream the
world draws from (cohorts draw from a stream of the item's own). A survey must therefore come after every
phase that is not a survey (a phase's random stream is named by its place in the schedule). The answers go to
the `survey` table: round, citizen, item, answer (a number: the Likert point, the number, or the chosen
option's place from 1), answer_text (the chosen option), source (llm or heuristic), fallback (the answer failed
and the `fallback` took its place: `skip`, no answer) and llm_call, the `phase` of the call's `llm_calls` row
(with round and citizen it finds the row).
"""

from __future__ import annotations

import string
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from society.llm.asking import SURVEY_CALL
from society.phases import Phase, registered_phases
from society.phases.deciding import Fallback, Question
from society.phases.survey_items import PLACEHOLDERS, ChoiceItem, Item, answer_value
from society.scenario.bounds import MAX_ROUNDS
from society.scenario.problems import Problem, ScenarioError

OBSERVATION = (
    "Round {round} of {rounds}. A survey question (your answer changes nothing in the simulation):\n"
    "{question}\n{scale} {format}"
)
SURVEY_SCHEMA: dict[str, pl.DataType] = {
    "round": pl.Int32,
    "citizen": pl.Int64,
    "item": pl.Utf8,
    "answer": pl.Float64,
    "answer_text": pl.Utf8,
    "source": pl.Utf8,
    "fallback": pl.Boolean,
    "llm_call": pl.Utf8,
}


class SurveyParams(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    every: int | None = Field(None, ge=1, le=MAX_ROUNDS, description="survey in rounds k, 2k, 3k, ...")
    rounds: list[int] = Field(default_factory=list, description="survey in these rounds (also)")
    items: list[Item] = Field(min_length=1)
    fallback: Literal["skip"] = Field("skip", description="a failed answer: skip (a row flagged, no answer)")

    @model_validator(mode="after")
    def _distinct_items(self) -> SurveyParams:
        ids = [item.id for item in self.items]
        repeated = sorted({name for name in ids if ids.count(name) > 1})
        if repeated:
            raise ValueError(f"items: ids {repeated} are used more than once")
        if any(number < 1 for number in self.rounds):
            raise ValueError("rounds: round numbers start at 1")
        return self

    def due(self, number: int) -> bool:
        """Whether round `number` is a survey round."""
        if self.every is None and not self.rounds:
            return True
        return (self.every is not None and number % self.every == 0) or number in self.rounds


def _question_problems(question: str) -> list[str]:
    """What is wrong with a question's braces: each must hold one bare name of `PLACEHOLDERS`, nothing more."""
    try:
        fields = [(name, conversion, spec) for _, name, spec, conversion in string.Formatter().parse(question)
                  if name is not None]
    except ValueError as error:
        return [f"cannot read its braces: {error}"]
    allowed = f"braces may hold only a bare {list(PLACEHOLDERS)} (no attribute, index, conversion or format spec)"
    return [f"cannot fill {name + ('!' + conversion if conversion else '') + (':' + spec if spec else '')!r}; "
            f"{allowed}" for name, conversion, spec in fields if name not in PLACEHOLDERS or conversion or spec]


class SurveyPhase(Phase):
    name = "survey"
    Params = SurveyParams

    @classmethod
    def check(cls, params: SurveyParams, scenario: Any) -> list[tuple[str, str]]:
        problems = [("rounds", f"round {number} is after the last round ({scenario.rounds})")
                    for number in params.rounds if number > scenario.rounds]
        if params.every is not None and params.every > scenario.rounds and not params.rounds:
            problems.append(("every", f"every {params.every} rounds asks nothing in a run of {scenario.rounds} "
                                      "rounds"))
        known = sorted({what for phase in registered_phases().values() for what in phase.provides})
        place = next(k for k, entry in enumerate(scenario.schedule) if entry.params is params)
        acting = [entry.phase for entry in scenario.schedule[place + 1:] if entry.phase != cls.name]
        if acting:
            problems.append(("", f"a survey must come after every phase that is not a survey, but {acting} follow "
                                 "it (a phase's random stream is named by its place in the schedule)"))
        earlier = {item.id: k for k, entry in enumerate(scenario.schedule[:place]) if entry.phase == cls.name
                   for item in entry.params.items}
        for k, item in enumerate(params.items):
            if item.id in earlier:
                problems.append((f"items[{k}].id", f"id {item.id!r} is already an item of the survey at "
                                                   f"schedule[{earlier[item.id]}]; item ids are unique over the run"))
            if item.only_with is not None and item.only_with not in known:
                problems.append((f"items[{k}].only_with", f"no phase provides {item.only_with!r}; known: {known}"))
            problems += [(f"items[{k}].question", problem) for problem in _question_problems(item.question)]
        return problems

    def __init__(self, society: Any, params: SurveyParams, index: int) -> None:
        super().__init__(society, params, index)
        classes = [registered_phases()[entry.phase] for entry in society.scenario.schedule]
        provided = {what for phase in classes for what in phase.provides}
        self.items = [item for item in params.items if item.only_with is None or item.only_with in provided]
        self.decisions = {item.id: item.decision() for item in self.items}
        self._check_columns(index)
        self.answers = pl.DataFrame(schema=SURVEY_SCHEMA)

    def _check_columns(self, index: int) -> None:
        """Every state column a heuristic mapping names exists (the phases before the survey are built)."""
        problems = []
        for k, item in enumerate(self.params.items):
            mapping = item.heuristic
            for name in ("column", "times"):
                column = None if mapping is None else getattr(mapping, name)
                if column is not None and column not in self.society.state:
                    problems.append(Problem(
                        self.society.scenario.name, f"schedule[{index}].params.items[{k}].heuristic.{name}",
                        f"no citizen state column {column!r}; known: {sorted(self.society.state)}",
                    ))
        if problems:
            raise ScenarioError(problems)

    def run(self) -> None:
        """Ask this round's items (or nothing, outside survey rounds); the world is left as it is."""
        number = self.society.round
        frames = [self._ask(item) for item in self.items] if self.params.due(number) else []
        self.answers = pl.concat(frames) if frames else pl.DataFrame(schema=SURVEY_SCHEMA)

    def _ask(self, item: Any) -> pl.DataFrame:
        """One item's rows: heuristic citizens' answers, then every LLM citizen's, sorted by citizen."""
        frames = [self._heuristic(item)]
        path = self.society.deciding
        citizens = path.llm_citizens
        if citizens.size:
            label = f"{SURVEY_CALL}{item.id}"
            decided = path.decide(
                self,
                question=Question(citizens, self._observations(item, citizens), self.decisions[item.id],
                                  label=label, acts=False),
                fallback=Fallback(self.params.fallback, lambda failed: None),
            )
            values = [None if a is None else answer_value(item, a.answer) for a in decided.answers]
            frames.append(_rows(self.society.round, item.id, decided.asked, values, "llm", label))
        return pl.concat(frames).sort("citizen")

    def _observations(self, item: Any, citizens: np.ndarray) -> list[str]:
        society = self.society
        question = item.question.format(**_placeholders(society.scenario, society.num_present))
        text = OBSERVATION.format(round=society.round, rounds=society.scenario.rounds, question=question,
                                  scale=item.scale(), format=society.llm.answer_format(self.decisions[item.id]))
        return [text] * citizens.size

    def _heuristic(self, item: Any) -> pl.DataFrame:
        """Heuristic citizens' answers from their state (none where the item has no mapping for them)."""
        mapping, society = item.heuristic, self.society
        if mapping is None:
            return _rows(society.round, item.id, np.zeros(0, np.int64), [], "heuristic", None)
        by_rule = np.flatnonzero(society.deciding.by_rule(society.present_mask()))
        if mapping.by_policy:
            names = np.array([spec.policy for spec in society.policy_specs], dtype=object)
            policies = names[society.state["group"][by_rule]]
            named = np.isin(policies, list(mapping.by_policy))
            citizens = by_rule[named]
            fixed = [mapping.by_policy[policy] for policy in policies[named]]
            values = [answer_value(item, v) if isinstance(item, ChoiceItem) else (float(v), None) for v in fixed]
            return _rows(society.round, item.id, citizens, values, "heuristic", None)
        state = society.state
        raw = state[mapping.column][by_rule].astype(np.float64)
        if mapping.times is not None:
            raw = raw * state[mapping.times][by_rule]
        low, high = item.bounds()
        answers = np.clip(mapping.offset + mapping.scale * raw, low, high)
        if item.kind == "likert":
            answers = np.rint(answers)
        return _rows(society.round, item.id, by_rule, [(float(a), None) for a in answers], "heuristic", None)


def _placeholders(scenario: Any, citizens: int) -> dict[str, Any]:
    """What an item's question may name in braces (`citizens`: those there now)."""
    commons = scenario.commons
    return {"unit": "units" if commons is None else commons.unit,
            "resource": "common resource" if commons is None else commons.resource,
            "citizens": citizens, "rounds": scenario.rounds}


def _rows(
    number: int, item: str, citizens: np.ndarray, values: list[tuple[float, str | None] | None], source: str,
    call: str | None,
) -> pl.DataFrame:
    """Survey rows of one item; a None value is a failed answer (flagged, no answer)."""
    return pl.DataFrame(
        {
            "round": np.full(citizens.size, number, dtype=np.int32),
            "citizen": np.asarray(citizens, dtype=np.int64),
            "item": [item] * citizens.size,
            "answer": [None if v is None else v[0] for v in values],
            "answer_text": [None if v is None else v[1] for v in values],
            "source": [source] * citizens.size,
            "fallback": [v is None for v in values],
            "llm_call": [call] * citizens.size,
        },
        schema=SURVEY_SCHEMA,
    )


def round_answers(society: Any) -> pl.DataFrame | None:
    """The survey answers of the round just played, or None when the schedule has no survey."""
    frames = [phase.answers for phase in society.phases if isinstance(phase, SurveyPhase)]
    return pl.concat(frames) if frames else None
