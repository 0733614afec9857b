"""Pydantic schema helpers: schema export and answer validation with a fallback."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from llm_backend.schemas import json_schema, parse_answer


class Vote(BaseModel):
    """A small answer model."""

    choice: Literal["yes", "no"]
    weight: int = Field(ge=0, le=3)


def test_schema_is_plain_json_schema() -> None:
    schema = json_schema(Vote)
    assert schema["type"] == "object" and set(schema["required"]) == {"choice", "weight"}
    assert schema["properties"]["choice"]["enum"] == ["yes", "no"]


def test_valid_answer() -> None:
    assert parse_answer(Vote, '{"choice":"yes","weight":2}') == (Vote(choice="yes", weight=2), True)


def test_object_inside_prose_is_accepted() -> None:
    value, ok = parse_answer(Vote, 'Sure! ```json\n{"choice": "no", "weight": 0}\n```')
    assert ok and value == Vote(choice="no", weight=0)


def test_invalid_answer_uses_fallback_with_error() -> None:
    seen = []

    def fallback(text: str | None, error: Exception) -> Vote:
        seen.append((text, type(error).__name__))
        return Vote(choice="no", weight=0)

    value, ok = parse_answer(Vote, '{"choice":"maybe","weight":9}', fallback)
    assert not ok and value == Vote(choice="no", weight=0)
    assert seen == [('{"choice":"maybe","weight":9}', "ValidationError")]


def test_missing_answer_without_fallback() -> None:
    assert parse_answer(Vote, None) == (None, False)
    assert parse_answer(Vote, "no json here") == (None, False)
