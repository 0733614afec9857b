"""Small norm scenarios built in code, and a scripted stand-in for a society's LLM citizens."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from society.llm.memory import RoundMemory
from society.phases.decisions import Decision
from society.scenario.schema import Scenario

NORM_SCHEDULE: list[Any] = [
    {"phase": "communicate", "params": {"mode": "neighbours"}},
    "harvest",
    "regrow",
    {"phase": "norm_punish", "params": {"tolerance": 0.1, "probability": 0.8}},
    {"phase": "social_learning", "params": {"conformity": 0.2}},
    "norm_beliefs",
]


def norm_scenario(**changes: Any) -> Scenario:
    """40 citizens of mixed policies on a small world sharing two logistic patches, every norms phase scheduled."""
    data: dict[str, Any] = {
        "name": "norms_small",
        "seed": 4,
        "rounds": 6,
        "population": {
            "size": 40,
            "policies": [
                {"policy": "sustainable", "fraction": 0.3, "noise": 0.1},
                {"policy": "learner", "fraction": 0.4, "initial_ratio": [0.8, 2.0], "noise": 0.1},
                {"policy": "conditional", "fraction": 0.1},
                {"policy": "greedy", "fraction": 0.2, "factor": 2},
            ],
        },
        "graph": {"kind": "watts_strogatz", "k": 4, "p": 0.2},
        "commons": {
            "patches": 2, "capacity": 800, "initial_stock": 400, "regrowth": {"kind": "logistic", "rate": 0.5},
            "collapse_threshold": 10, "on_collapse": "continue",
        },
        "schedule": NORM_SCHEDULE,
    }
    data |= changes
    return Scenario.model_validate(data)


@dataclass
class Ask:
    """One question a phase put to a scripted LLM citizen."""

    phase: str
    citizen: int
    observation: str
    schema: Mapping[str, Any] | None


Script = Decision | None | Callable[[Ask], Decision | None]


class ScriptedLLM:
    """Stands in for `society.llm`: answers by a script (one decision, None, or a function of the question).

    It keeps every question asked and what its citizens are told (their memory renders it as the real one does).
    """

    def __init__(self, members: np.ndarray, n: int, script: Script) -> None:
        self.members = np.asarray(members, dtype=np.int64)
        self.position = np.full(n, -1)
        self.position[self.members] = np.arange(self.members.size)
        self.script = script
        self.memory = RoundMemory(self.members.size, 2)
        self.memory.push(["Round 0:"] * self.members.size)
        self.asked: list[Ask] = []

    @property
    def observations(self) -> list[str]:
        return [ask.observation for ask in self.asked]

    def answer_format(self, decision: type) -> str:
        return "Answer as JSON."

    def ask(
        self, phase: str, citizens: np.ndarray, observations: Sequence[str], decision: type,
        schemas: Sequence[Mapping[str, Any]] | None = None,
    ) -> list[Decision | None]:
        asks = [Ask(phase, int(c), text, None if schemas is None else schemas[k])
                for k, (c, text) in enumerate(zip(citizens, observations, strict=True))]
        self.asked += asks
        return [self.script(ask) if callable(self.script) else self.script for ask in asks]

    def remember(self, citizens: np.ndarray, texts: Sequence[str], label: str = "Message heard") -> None:
        for citizen, text in zip(citizens, texts):
            if self.position[citizen] >= 0:
                self.memory.add_note(int(self.position[citizen]), text, label)
