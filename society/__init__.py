"""society: LLM and heuristic citizens on a social graph, sharing a commons, stepped by Mesa."""

from society.model import Society
from society.runs import Run, load_run
from society.scenario import Scenario
from society.scenario_files import ScenarioError, load_scenario

__all__ = ["Run", "Scenario", "ScenarioError", "Society", "load_run", "load_scenario"]
