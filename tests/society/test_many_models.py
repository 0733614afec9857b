"""Several models in one run: each LLM group asks the model it names; calls and citizens carry the model."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
import pytest

from llm_backend.facade import ChatRequest, Result
from society import ScenarioError, Society, load_scenario
from tests.shipped_tables import SCENARIOS, SchemaAnswers


class Counting(SchemaAnswers):
    """Schema answers that remember which citizens' prompts they were sent."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def complete(self, requests: Sequence[ChatRequest]) -> list[Result]:
        self.asked += [request.messages[1]["content"].split(",")[0] for request in requests]
        return super().complete(requests)


def two_model_village(**changes: str) -> Society:
    overrides = [
        "population.size=30", "rounds=2", "commons.on_collapse=continue",
        "population.policies=[{policy: llm, fraction: 0.5}, {policy: llm, fraction: 0.3, model: other-model},"
        " {policy: greedy, fraction: 0.2}]",
        *[f"{key}={value}" for key, value in changes.items()],
    ]
    return Society(load_scenario(SCENARIOS / "village_llm.yaml", overrides))


def test_each_group_asks_its_own_model_and_the_tables_say_which() -> None:
    society = two_model_village()
    llm = society.llm
    assert llm.model_names == ["default", "other-model"]
    first, second = Counting(), Counting()
    llm.connections = [first, second]
    society.step()
    others = set(society.group_members[1].tolist())
    assert first.asked and second.asked
    assert {int(text.removeprefix("You are citizen ")) for text in second.asked} == others
    assert not {int(text.removeprefix("You are citizen ")) for text in first.asked} & others
    calls = llm.round_calls()
    assert set(calls.filter(pl.col("model") == "other-model")["citizen"].to_list()) == others
    citizens = society.round_citizens()
    np.testing.assert_array_equal(
        np.sort(citizens.filter(pl.col("model") == "other-model")["citizen"].to_numpy()), sorted(others))
    assert citizens.filter(pl.col("policy") == "greedy")["model"].is_null().all()


def test_one_model_adds_no_model_columns() -> None:
    society = Society(load_scenario(SCENARIOS / "village_llm.yaml", ["population.size=20", "rounds=1"]))
    society.llm.connection = SchemaAnswers()
    society.step()
    assert "model" not in society.llm.round_calls().columns and "model" not in society.round_citizens().columns


def test_a_group_naming_servers_takes_only_http_urls() -> None:
    with pytest.raises(ScenarioError, match=r"population.policies\[0\].*base_urls"):
        load_scenario(SCENARIOS / "village_llm.yaml", ["population.policies.0.base_urls=[ftp://x]"])
