"""Personas of LLM citizens: Big Five traits, values, a role and an optional hidden agenda, sampled per citizen."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from society.scenario.schema import BIG_FIVE, PersonaSpec, TraitDistribution

if TYPE_CHECKING:
    from society.core.model import Society


@dataclass(frozen=True)
class Personas:
    """Sampled personas of some citizens, as arrays aligned with `citizens`."""

    citizens: np.ndarray
    traits: np.ndarray  # (len(citizens), 5), columns in BIG_FIVE order
    roles: list[str]
    values: list[tuple[str, ...]]
    agendas: list[str | None]

    def describe(self, position: int) -> str:
        """The persona of the citizen at `position` in `citizens`, to follow "You are ...," in a prompt."""
        levels = ", ".join(f"{name} {_level(score)}" for name, score in zip(BIG_FIVE, self.traits[position]))
        text = f"a {self.roles[position]}: {levels}."
        if self.values[position]:
            text += f" You value {_listed(self.values[position])}."
        if self.agendas[position]:
            text += f" Your secret aim: {self.agendas[position]}."
        return text


def introduce(citizen: int, persona: str) -> str:
    """A citizen's persona line in its prompts."""
    return f"You are citizen {citizen}, {persona}"


def _listed(items: tuple[str, ...]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


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


def sample_persona_table(society: Society, groups: list[int], members: np.ndarray) -> dict[str, list[Any]]:
    """Personas of every LLM citizen, drawn from its group's distributions, as columns in `members` order."""
    rng = society.rng_tree("personas")
    table: dict[int, dict[str, Any]] = {}
    for group in groups:
        spec = society.policy_specs[group]
        citizens = society.group_members[group]
        personas = sample_personas(spec.persona, citizens, rng)
        for k, citizen in enumerate(citizens):
            row = {"citizen": int(citizen), "role": personas.roles[k], "values": list(personas.values[k]),
                   "agenda": personas.agendas[k],
                   "description": introduce(int(citizen), personas.describe(k))}
            row |= {name: float(score) for name, score in zip(BIG_FIVE, personas.traits[k])}
            table[int(citizen)] = row
    rows = [table[int(c)] for c in members]
    return {key: [row[key] for row in rows] for key in rows[0]}
