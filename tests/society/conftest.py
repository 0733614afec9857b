"""Small scenarios built in code for the model tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from society import Run, Society, load_run
from society.core.runner import RunInterrupted, resume_run, run_scenario
from society.scenario.schema import Scenario


def make_scenario(**changes: Any) -> Scenario:
    """A 60-citizen logistic commons with every heuristic policy and peer punishment, changed by `changes`."""
    data: dict[str, Any] = {
        "name": "small",
        "seed": 11,
        "rounds": 8,
        "population": {
            "size": 60,
            "policies": [
                {"policy": "sustainable", "fraction": 0.3, "noise": 0.1},
                {"policy": "conditional", "fraction": 0.2, "noise": 0.1},
                {"policy": "imitator", "fraction": 0.2},
                {"policy": "greedy", "fraction": 0.2, "factor": 2.5, "noise": 0.2},
                {"policy": "fixed", "fraction": 0.1, "amount": 30},
            ],
        },
        "graph": {"kind": "watts_strogatz", "k": 6, "p": 0.2},
        "commons": {
            "patches": 3,
            "capacity": 2000,
            "initial_stock": 1200,
            "regrowth": {"kind": "logistic", "rate": 0.6},
            "collapse_threshold": 10,
            "on_collapse": "continue",
            "shocks": {"probability": 0.2, "severity": 0.3},
            "diffusion": 0.1,
        },
        "schedule": ["harvest", "regrow", {"phase": "punish", "params": {"threshold": 1.2}}],
    }
    for key, value in changes.items():
        data[key] = value
    return Scenario.model_validate(data)


@pytest.fixture
def small_scenario() -> Scenario:
    return make_scenario()


def stop_after_round(monkeypatch: pytest.MonkeyPatch, number: int) -> None:
    """Make every society stop as Ctrl-C stops it, right after it plays round `number` (until the patch is undone)."""
    original_step = Society.step

    def step(self: Society) -> None:
        original_step(self)
        if self.round == number:
            raise KeyboardInterrupt

    monkeypatch.setattr(Society, "step", step)


def whole_and_resumed(
    scenario: Scenario, folder: Path, monkeypatch: pytest.MonkeyPatch, stop_after: int
) -> tuple[Run, Run]:
    """`scenario` played whole, and played again, stopped after round `stop_after` and resumed."""
    whole = load_run(run_scenario(scenario, folder / "whole"))
    stop_after_round(monkeypatch, stop_after)
    with pytest.raises(RunInterrupted):
        run_scenario(scenario, folder / "cut")
    monkeypatch.undo()
    return whole, load_run(resume_run(folder / "cut"))
