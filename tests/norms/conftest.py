"""Small norm scenarios built in code."""

from __future__ import annotations

from typing import Any

from society.scenario import Scenario

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
