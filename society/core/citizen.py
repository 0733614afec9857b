"""Citizens as Mesa agents: thin views over the society's state arrays."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import mesa

if TYPE_CHECKING:
    from society.core.model import Society


class Citizen(mesa.Agent):
    """One citizen; every attribute read comes from (and every write goes to) the shared state arrays.

    `citizen.wealth` is `society.state["wealth"][citizen.index]`. Phases never loop over these objects: they
    work on the arrays. The objects exist so Mesa tools and users can look at one citizen at a time.
    """

    model: Society

    def __init__(self, model: Society, index: int) -> None:
        super().__init__(model)
        self.index = index

    def __getattr__(self, name: str) -> Any:
        state = self.__dict__.get("model") and self.model.state
        if state is not None and name in state:
            return state[name][self.index].item()
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        model = self.__dict__.get("model")
        if model is not None and name in model.state:
            model.state[name][self.index] = value
        else:
            super().__setattr__(name, value)

    @property
    def policy(self) -> str:
        """Name of the policy this citizen follows."""
        return self.model.policy_name(self.index)

    @property
    def neighbors(self) -> list[int]:
        """Indices of this citizen's neighbours on the social graph."""
        return self.model.graph.neighbors(self.index).tolist()

    def __repr__(self) -> str:
        return f"Citizen(index={self.index}, policy={self.policy!r})"
