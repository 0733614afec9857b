"""Typed decisions: one model per kind, whose JSON schema drives guided decoding of LLM answers."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, create_model


class Decision(BaseModel):
    """Base of every decision an LLM citizen returns."""

    model_config = ConfigDict(extra="forbid")


class HarvestDecision(Decision):
    """An amount: units to take from the commons, tokens to put in a pool or a project."""

    amount: float = Field(ge=0, description="how many, 0 or more")


MAX_PUNISH_TARGETS = 16
"""The most citizens one punishment decision may name."""


class PunishDecision(Decision):
    """Which of the listed neighbours to punish this round (by their citizen number)."""

    punish: list[int] = Field(
        default_factory=list, max_length=MAX_PUNISH_TARGETS, description="citizen numbers to punish, or none"
    )


class PunishByPlaceDecision(Decision):
    """Which of the listed neighbours to punish this round (by their place in the list, 1 for the first)."""

    punish: list[int] = Field(
        default_factory=list, max_length=MAX_PUNISH_TARGETS,
        description="places in the list of the neighbours to punish, or none",
    )


def with_reason(decision: type[Decision], max_chars: int) -> type[Decision]:
    """The same decision with a short free-text `reason`, capped at `max_chars` characters."""
    return create_model(
        f"{decision.__name__}WithReason",
        __base__=decision,
        reason=(str, Field("", max_length=max_chars, description="one short sentence")),
    )
