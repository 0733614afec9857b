"""Questionnaire items a survey asks: Likert scales, numbers and choices, their answer types and prompt texts.

Each item has an id, a question and a kind. A Likert item may score a Big Five trait (`trait`, `reversed` when
agreeing means a low score), which the persona-validity metric reads. An item may say how heuristic citizens
answer it from their state (`heuristic`): a state column (optionally times another) scaled and shifted, or a
fixed answer per policy; heuristic citizens are not asked an item without one.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from society.phases.decisions import Decision
from society.scenario.bounds import MAX_AMOUNT, MAX_FACTOR
from society.scenario.schema import BIG_FIVE, POLICY_NAMES

HEURISTIC_POLICIES = tuple(name for name in POLICY_NAMES if name != "llm")
PLACEHOLDERS = ("unit", "resource", "citizens", "rounds")
"""Names an item's question may hold in braces, filled from the scenario (`{unit}`: the commons' unit)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class HeuristicAnswer(_Strict):
    """How heuristic citizens answer: `offset + scale x column (x times)` from their state, or `by_policy`."""

    column: str | None = Field(None, description="a citizen state column: wealth, strategy, personal_norm, ...")
    times: str | None = Field(None, description="another state column the value is multiplied by (e.g. fair_share)")
    scale: float = Field(1.0, ge=-MAX_FACTOR, le=MAX_FACTOR)
    offset: float = Field(0.0, ge=-MAX_AMOUNT, le=MAX_AMOUNT)
    by_policy: dict[str, float | str] = Field(default_factory=dict, description="policy name: its fixed answer")

    @model_validator(mode="after")
    def _one_source(self) -> HeuristicAnswer:
        if (self.column is None) == (not self.by_policy):
            raise ValueError("give either `column` (a state column) or `by_policy` (an answer per policy)")
        if self.times is not None and self.column is None:
            raise ValueError("`times` multiplies a `column`; give the column too")
        unknown = sorted(set(self.by_policy) - set(HEURISTIC_POLICIES))
        if unknown:
            raise ValueError(f"by_policy names unknown heuristic policies {unknown}; expected some of "
                             f"{list(HEURISTIC_POLICIES)}")
        return self


class _Item(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$", description="the item's name in the survey table")
    question: str = Field(min_length=1)
    only_with: str | None = Field(
        None, description="asked only where a phase of the schedule provides this (e.g. `elections`: a leader)"
    )
    heuristic: HeuristicAnswer | None = None

    def _check_fixed(self, valid: Any, expected: str) -> None:
        """Refuse a `by_policy` answer that is not one this item accepts."""
        if self.heuristic is None:
            return
        wrong = {policy: value for policy, value in self.heuristic.by_policy.items() if not valid(value)}
        if wrong:
            raise ValueError(f"heuristic.by_policy answers {wrong} are not {expected}")


class LikertItem(_Item):
    """Agreement on a scale of `points` (1 = the first label); `labels` name every point, or the two ends."""

    kind: Literal["likert"]
    points: int = Field(7, ge=2, le=11)
    labels: list[str] = Field(min_length=2)
    trait: Literal[BIG_FIVE] | None = Field(  # type: ignore[valid-type]
        None, description="the Big Five trait this item scores"
    )
    reversed: bool = Field(False, description="agreeing means a low score on the trait")

    @model_validator(mode="after")
    def _consistent(self) -> LikertItem:
        if len(self.labels) not in (2, self.points):
            raise ValueError(f"labels: give {self.points} labels (one per point) or 2 (the ends), "
                             f"got {len(self.labels)}")
        if self.reversed and self.trait is None:
            raise ValueError("reversed: only an item that scores a trait can be reversed")
        self._check_fixed(lambda v: isinstance(v, int | float) and float(v).is_integer() and 1 <= v <= self.points,
                          f"whole numbers from 1 to {self.points}")
        return self

    def scale(self) -> str:
        """The scale as the prompt says it."""
        if len(self.labels) == 2:
            named = f"1 = {self.labels[0]}, {self.points} = {self.labels[1]}"
        else:
            named = ", ".join(f"{k} = {label}" for k, label in enumerate(self.labels, start=1))
        return f"Answer on a scale from 1 to {self.points} ({named})."

    def decision(self) -> type[Decision]:
        return _answer_type(f"Likert{self.points}Answer", int,
                            Field(ge=1, le=self.points, description=f"from 1 to {self.points}"))

    def bounds(self) -> tuple[float, float]:
        return 1.0, float(self.points)


class NumberItem(_Item):
    """A number from `min` to `max`."""

    kind: Literal["number"]
    min: float = Field(0.0, ge=-MAX_AMOUNT, le=MAX_AMOUNT)
    max: float = Field(ge=-MAX_AMOUNT, le=MAX_AMOUNT)

    @model_validator(mode="after")
    def _ordered(self) -> NumberItem:
        if not self.min < self.max:
            raise ValueError(f"min {self.min:g} must be below max {self.max:g}")
        self._check_fixed(lambda v: isinstance(v, int | float) and self.min <= v <= self.max,
                          f"numbers from {self.min:g} to {self.max:g}")
        return self

    def scale(self) -> str:
        return f"Answer with a number from {self.min:g} to {self.max:g}."

    def decision(self) -> type[Decision]:
        return _answer_type("NumberAnswer", float, Field(ge=self.min, le=self.max,
                                                         description=f"from {self.min:g} to {self.max:g}"))

    def bounds(self) -> tuple[float, float]:
        return self.min, self.max


class ChoiceItem(_Item):
    """One of `options`; its number in the survey table is the option's place (1 for the first)."""

    kind: Literal["choice"]
    options: list[str] = Field(min_length=2)

    @model_validator(mode="after")
    def _distinct(self) -> ChoiceItem:
        if len(set(self.options)) != len(self.options):
            raise ValueError("options must differ from each other")
        if self.heuristic is not None and self.heuristic.column is not None:
            raise ValueError("heuristic: a choice item is answered by `by_policy` (an option per policy), "
                             "not from a column")
        self._check_fixed(lambda v: v in self.options, f"among the options {self.options}")
        return self

    def scale(self) -> str:
        return "Choose one of: " + ", ".join(self.options) + "."

    def decision(self) -> type[Decision]:
        return _answer_type("ChoiceAnswer", Literal[tuple(self.options)], Field(description="one of the options"))

    def bounds(self) -> tuple[float, float]:
        return 1.0, float(len(self.options))


Item = Annotated[Union[LikertItem, NumberItem, ChoiceItem], Field(discriminator="kind")]


def _answer_type(name: str, annotation: Any, field: Any) -> type[Decision]:
    """A decision with one field, `answer`."""
    return create_model(name, __base__=Decision, answer=(annotation, field))


def answer_value(item: LikertItem | NumberItem | ChoiceItem, answer: Any) -> tuple[float, str | None]:
    """An answer's number and, for a choice, its text (the number is the option's place, from 1)."""
    if isinstance(item, ChoiceItem):
        return float(item.options.index(answer) + 1), str(answer)
    return float(answer), None
