"""Personas of LLM citizens: Big Five traits, values, a role and an optional hidden agenda, sampled per citizen
from a group's distributions or taken from a persona file (with a background and extra columns)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from society.llm.persona_files import PersonaFileError, read_persona_file
from society.scenario.problems import Problem, ScenarioError
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
    backgrounds: list[str | None] | None = None
    extras: dict[str, list[str | None]] = field(default_factory=dict)

    def describe(self, position: int) -> str:
        """The persona of the citizen at `position` in `citizens`, to follow "You are ...," in a prompt: role and
        trait levels, values, secret aim, then (from a persona file) `Background: ...` and each extra column as
        `name: value.` in the file's column order, empty cells left out."""
        levels = ", ".join(f"{name} {_level(score)}" for name, score in zip(BIG_FIVE, self.traits[position]))
        text = f"a {self.roles[position]}: {levels}."
        if self.values[position]:
            text += f" You value {_listed(self.values[position])}."
        if self.agendas[position]:
            text += f" Your secret aim: {self.agendas[position]}."
        if self.backgrounds is not None and self.backgrounds[position]:
            text += f" Background: {_sentence(self.backgrounds[position])}"
        for name, cells in self.extras.items():
            if cells[position]:
                text += f" {name.replace('_', ' ').capitalize()}: {_sentence(cells[position])}"
        return text


def stored_persona(table: dict[str, list[Any]], k: int) -> Personas:
    """The persona at position `k` of a persona table (as `persona_row` wrote it), background and extra columns
    included, to describe again after a change."""
    known = {"citizen", "role", "values", "agenda", "description", *BIG_FIVE, "background"}
    filed = "background" in table
    return Personas(np.array([table["citizen"][k]]), np.array([[table[name][k] for name in BIG_FIVE]]),
                    [table["role"][k]], [tuple(table["values"][k])], [table["agenda"][k]],
                    [table["background"][k]] if filed else None,
                    {name: [cells[k]] for name, cells in table.items() if name not in known} if filed else {})


def introduce(citizen: int, persona: str) -> str:
    """A citizen's persona line in its prompts."""
    return f"You are citizen {citizen}, {persona}"


def _sentence(text: str) -> str:
    """`text` ending with a full stop (or the mark it ends with)."""
    return text if text.endswith((".", "!", "?")) else f"{text}."


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


def personas_from_file(path: Path, citizens: np.ndarray, rng: np.random.Generator) -> Personas:
    """The personas of `citizens` from the persona file at `path`: its rows in order, or drawn by weight."""
    rows = read_persona_file(path)
    picked = rows.rows_for(citizens.size, rng)
    return Personas(
        citizens, rows.traits[picked], [rows.roles[i] for i in picked], [rows.values[i] for i in picked],
        [rows.agendas[i] for i in picked], [rows.backgrounds[i] for i in picked],
        {name: [cells[i] for i in picked] for name, cells in rows.extras.items()},
    )


def group_personas(spec: PersonaSpec, citizens: np.ndarray, rng: np.random.Generator, field: str) -> Personas:
    """A group's personas, from its file or its distributions; a bad file as a ScenarioError at `field`."""
    if spec.file is None:
        return sample_personas(spec, citizens, rng)
    try:
        return personas_from_file(Path(spec.file), citizens, rng)
    except PersonaFileError as error:
        raise ScenarioError([Problem(str(spec.file), field, message) for message in error.messages]) from None


def sample_persona_table(society: Society, groups: list[int], members: np.ndarray) -> dict[str, list[Any]]:
    """Personas of every LLM citizen, from its group's distributions or persona file, as columns in `members`
    order. A group with a persona file adds `background` and its extra columns (None for the other groups)."""
    rng = society.rng_tree("personas")
    table: dict[int, dict[str, Any]] = {}
    for group in groups:
        spec = society.policy_specs[group]
        citizens = society.group_members[group]
        personas = group_personas(spec.persona, citizens, rng, f"population.policies[{group}].persona.file")
        for k, citizen in enumerate(citizens):
            table[int(citizen)] = persona_row(personas, k)
    rows = [table[int(c)] for c in members]
    keys = list(dict.fromkeys(key for row in rows for key in row))
    return {key: [row.get(key) for row in rows] for key in keys}


def persona_row(personas: Personas, k: int) -> dict[str, Any]:
    """The persona table's row of the `k`-th citizen of `personas`."""
    citizen = int(personas.citizens[k])
    row = {"citizen": citizen, "role": personas.roles[k], "values": list(personas.values[k]),
           "agenda": personas.agendas[k], "description": introduce(citizen, personas.describe(k))}
    row |= {name: float(score) for name, score in zip(BIG_FIVE, personas.traits[k])}
    if personas.backgrounds is not None:
        row["background"] = personas.backgrounds[k]
        row |= {name: cells[k] for name, cells in personas.extras.items()}
    return row
