"""Harvest's `max_take`: the most one citizen can take in a round, for heuristic and LLM citizens alike."""

from __future__ import annotations

import numpy as np
import pytest

from society import ScenarioError, Society, load_scenario
from tests.shipped_tables import SCENARIOS, SchemaAnswers


def test_no_citizen_asks_for_more_than_the_limit() -> None:
    limited = Society(load_scenario(SCENARIOS / "village_10k.yaml", [
        "population.size=500", "schedule=[{phase: harvest, params: {max_take: 3}}, regrow]",
    ]))
    free = Society(load_scenario(SCENARIOS / "village_10k.yaml", ["population.size=500", "schedule=[harvest, regrow]"]))
    limited.step()
    free.step()
    assert free.state["requested"].max() > 3
    assert limited.state["requested"].max() == 3
    unlimited = free.state["requested"] <= 3
    np.testing.assert_array_equal(limited.state["requested"][unlimited], free.state["requested"][unlimited])


def test_an_llm_citizen_is_told_the_limit() -> None:
    society = Society(load_scenario(SCENARIOS / "village_llm.yaml", [
        "population.size=20", "llm.fallback_threshold=1", "schedule=[{phase: harvest, params: {max_take: 40}}, regrow]",
    ]))
    society.llm.connection = SchemaAnswers()
    society.step()
    prompt = society.llm.round_calls()["prompt"][0]
    assert "You may take 0 to 40.0." in prompt
    assert society.state["requested"].max() <= 40


def test_a_limit_must_be_positive() -> None:
    with pytest.raises(ScenarioError, match="max_take"):
        load_scenario(SCENARIOS / "village_llm.yaml", ["schedule=[{phase: harvest, params: {max_take: 0}}, regrow]"])
