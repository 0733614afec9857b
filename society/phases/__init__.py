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
        """What building this phase with `params` in `scenario` would reject: (field under params, message) pairs.

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


@cache
def registered_phases() -> dict[str, type[Phase]]:
    """Every phase class registered in the `society.phases` entry-point group, by name."""
    phases: dict[str, type[Phase]] = {}
    for entry in entry_points(group="society.phases"):
        phase_class = entry.load()
        phases[entry.name] = phase_class
    return phases
