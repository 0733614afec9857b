"""society: LLM and heuristic citizens on a social graph, sharing a commons, stepped by Mesa.

The public names load on first use, so a command that plays no run (`society validate`, `info`, a sweep's
parent process) does not import Mesa, Numba and the engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from society.core.model import Society
    from society.rundir.reader import Run, load_run
    from society.scenario.files import ScenarioError, load_scenario
    from society.scenario.schema import Scenario

_PUBLIC = {
    "Run": "society.rundir.reader",
    "Scenario": "society.scenario.schema",
    "ScenarioError": "society.scenario.files",
    "Society": "society.core.model",
    "load_run": "society.rundir.reader",
    "load_scenario": "society.scenario.files",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    """Import the module that defines the public `name` on first access."""
    if name not in _PUBLIC:
        raise AttributeError(f"module 'society' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)
