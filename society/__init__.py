"""society: LLM and heuristic citizens on a social graph, sharing a commons, stepped by Mesa."""

from society.core.model import Society
from society.rundir.reader import Run, load_run
from society.scenario.files import ScenarioError, load_scenario
from society.scenario.schema import Scenario

__all__ = ["Run", "Scenario", "ScenarioError", "Society", "load_run", "load_scenario"]
