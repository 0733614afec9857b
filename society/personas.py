"""Personas of LLM citizens: Big Five traits, values, a role and an optional hidden agenda, sampled per citizen."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import Field, field_validator

from society.scenario import Strict

BIG_FIVE = ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism")


class TraitDistribution(Strict):
    """A trait score in [0, 1] drawn from a normal distribution, clipped."""

    mean: float = Field(0.5, ge=0, le=1)
    sd: float = Field(0.15, ge=0)


class PersonaSpec(Strict):
    """Distributions a scenario gives for the personas of one group of LLM citizens."""

    traits: dict[str, TraitDistribution] = Field(default_factory=dict)
    values: list[str] = Field(default_factory=lambda: ["fairness", "family", "prosperity", "tradition", "freedom"])
    values_per_citizen: int = Field(2, ge=0)
    roles: dict[str, float] = Field(default_factory=lambda: {"fisher": 1.0}, description="role: weight")
    hidden_agendas: list[str] = Field(default_factory=list)
    hidden_agenda_probability: float = Field(0.0, ge=0, le=1)

    @field_validator("traits")
    @classmethod
    def _known_traits(cls, traits: dict[str, TraitDistribution]) -> dict[str, TraitDistribution]:
        unknown = sorted(set(traits) - set(BIG_FIVE))
        if unknown:
            raise ValueError(f"unknown traits {unknown}; expected some of {list(BIG_FIVE)}")
        return traits

    @field_validator("roles")
    @classmethod
    def _positive_weights(cls, roles: dict[str, float]) -> dict[str, float]:
        if not roles or any(weight < 0 for weight in roles.values()) or sum(roles.values()) <= 0:
            raise ValueError("expected at least one role with a positive weight")
        return roles


@dataclass(frozen=True)
class Personas:
    """Sampled personas of some citizens, as arrays aligned with `citizens`."""

    citizens: np.ndarray
    traits: np.ndarray  # (len(citizens), 5), columns in BIG_FIVE order
    roles: list[str]
    values: list[tuple[str, ...]]
    agendas: list[str | None]

    def describe(self, position: int) -> str:
        """The persona paragraph of the citizen at `position` in `citizens`."""
        levels = ", ".join(f"{name} {_level(score)}" for name, score in zip(BIG_FIVE, self.traits[position]))
        text = f"You are a {self.roles[position]}. Personality: {levels}."
        if self.values[position]:
            text += f" You value {', '.join(self.values[position])}."
        if self.agendas[position]:
            text += f" Privately, you want {self.agendas[position]}; you do not tell others."
        return text


def _level(score: float) -> str:
    return "low" if score < 0.35 else "high" if score > 0.65 else "moderate"


def sample_personas(spec: PersonaSpec, citizens: np.ndarray, rng: np.random.Generator) -> Personas:
    """Draw one persona per citizen from the spec's distributions."""
    count = citizens.size
    traits = np.empty((count, len(BIG_FIVE)))
    for column, name in enumerate(BIG_FIVE):
        distribution = spec.traits.get(name, TraitDistribution())
        traits[:, column] = np.clip(rng.normal(distribution.mean, distribution.sd, count), 0.0, 1.0)
    role_names = list(spec.roles)
    weights = np.array([spec.roles[name] for name in role_names], dtype=np.float64)
    roles = [role_names[i] for i in rng.choice(len(role_names), count, p=weights / weights.sum())]
    per_citizen = min(spec.values_per_citizen, len(spec.values))
    values = [
        tuple(spec.values[i] for i in sorted(rng.choice(len(spec.values), per_citizen, replace=False)))
        for _ in range(count)
    ]
    has_agenda = rng.random(count) < spec.hidden_agenda_probability if spec.hidden_agendas else np.zeros(count, bool)
    picks = rng.integers(0, max(len(spec.hidden_agendas), 1), count)
    agendas = [spec.hidden_agendas[pick] if flag else None for flag, pick in zip(has_agenda, picks)]
    return Personas(citizens, traits, roles, values, agendas)
