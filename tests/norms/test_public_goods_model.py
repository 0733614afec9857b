"""Fehr & Gächter's game: decay and the effect of punishment come out of the behavioural model, not a rule."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

from norms.public_goods import Groups, punishment_points

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
checks = importlib.import_module("validation_checks")

SEEDS = range(3)
WITHOUT, WITH = checks.PG_TREATMENTS


def path(treatment: checks.Treatment, *overrides: str) -> np.ndarray:
    """Mean contribution share per round over SEEDS, with `overrides` added to the treatment."""
    return checks.contribution_path(checks.Treatment("t", treatment.scenario, (*treatment.overrides, *overrides)), SEEDS)


def test_points_follow_the_negative_deviation_from_each_punishers_own_contribution() -> None:
    groups = Groups.from_order(np.arange(4), 4)
    contribution = np.array([20.0, 10.0, 0.0, 10.0])
    punisher = np.array([True, True, False, True])
    actors, targets, points = punishment_points(groups, contribution, punisher, rate=0.5, max_points=10)
    given = {(int(a), int(t)): float(p) for a, t, p in zip(actors, targets, points)}
    assert given == {(0, 1): 5.0, (0, 2): 10.0, (0, 3): 5.0, (1, 2): 5.0, (3, 2): 5.0}


def test_decay_needs_conditional_cooperators_to_give_less_than_others() -> None:
    decaying = path(WITHOUT)
    assert decaying[-1] < decaying[0] - 0.1
    matching = path(WITHOUT, "schedule.0.params.match=1.0",
                    "population.policies=[{policy: conditional, fraction: 1.0}]")
    assert matching[-1] == pytest.approx(matching[0], abs=0.02)


def test_the_rise_under_punishment_comes_from_learning_to_expect_it() -> None:
    learning = path(WITH)
    assert learning[-1] > learning[0] + 0.2
    never_learning = path(WITH, "schedule.0.params.learning=0")
    assert never_learning[-1] < never_learning[0]
    harmless = path(WITH, "schedule.0.params.impact=0.1")  # 0.1 * points per token short stays below 1 - 0.4
    assert harmless[-1] < learning[-1] - 0.2
