"""Phases: the units a round is made of, and the registry that finds them by name.

A phase sees the whole population at once: `observe` gathers what citizens see, `decide` turns it into one
decision per citizen (arrays), `apply` resolves all decisions together. Packages add phases through the
`society.phases` entry-point group, so the round loop never changes when an institution or a norm arrives.

A phase declares what it needs from the scenario and from the phases around it, so `society validate` catches
what building it would reject: `check` (its parameters against the rest of the scenario), `needs_commons`, and
the names it `provides` to later phases (a state column, or a service they call), `requires` from an earlier
phase, `reads` when some phase provides it (which must then come earlier), and `precedes`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    import numpy as np

    from society.core.model import Society
    from society.scenario.schema import Scenario


class NoParams(BaseModel):
    """A phase that takes no parameters."""

    model_config = ConfigDict(extra="forbid")


class Phase:
    """Base class of every phase; subclasses set `name`, `Params`, and override the three steps."""

    name: ClassVar[str]
    Params: ClassVar[type[BaseModel]] = NoParams
    needs_commons: ClassVar[bool] = False
    provides: ClassVar[tuple[str, ...]] = ()
    requires: ClassVar[tuple[str, ...]] = ()
    reads: ClassVar[tuple[str, ...]] = ()
    precedes: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def check(cls, params: BaseModel, scenario: Scenario) -> list[tuple[str, str]]:
        """What building this phase with `params` in `scenario` would reject: (field under params, message) pairs
        (field "" for the phase's place in the schedule).

        For checks that need the rest of the scenario (its `Params` model validates the parameters alone).
        """
        return []

    def __init__(self, society: Society, params: BaseModel, index: int) -> None:
        self.society = society
        self.params = params
        self.rng = society.rng_tree(f"phase:{index}:{self.name}")

    def rule(self) -> str | None:
        """One line of the shared rules LLM citizens read: what happens in this phase (default: nothing)."""
        return None

    def memory(self, citizens: np.ndarray) -> dict[str, list[str]]:
        """What the given LLM citizens remember of this phase in the round just played (default: nothing).

        One text fragment per citizen under a key ("" for nothing to say); a citizen's line for the round is
        its fragments in schedule order, and phases sharing a key (several kinds of punishment) give one.
        """
        return {}

    def observe(self) -> Any:
        """What citizens see before deciding (default: nothing)."""
        return None

    def decide(self, observation: Any) -> Any:
        """One decision per citizen, as arrays (default: none)."""
        return None

    def apply(self, decisions: Any) -> None:
        """Resolve all decisions together and update the state."""

    def metrics(self) -> dict[str, Any]:
        """This phase's columns of the round's row in the `rounds` table."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """State a checkpoint must keep beyond the citizens' arrays and random streams."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""

    def run(self) -> None:
        """Observe, decide, apply."""
        self.apply(self.decide(self.observe()))


class PhaseRegistry(Mapping[str, type[Phase]]):
    """The phases registered in the `society.phases` entry-point group, by name; a phase's module is imported
    when its class is first asked for, so a run imports only the phases its schedule names."""

    def __init__(self) -> None:
        self._entries = {entry.name: entry for entry in entry_points(group="society.phases")}
        self._classes: dict[str, type[Phase]] = {}

    def __getitem__(self, name: str) -> type[Phase]:
        if name not in self._classes:
            self._classes[name] = self._entries[name].load()
        return self._classes[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


@cache
def registered_phases() -> PhaseRegistry:
    """Every phase class registered in the `society.phases` entry-point group, by name."""
    return PhaseRegistry()
