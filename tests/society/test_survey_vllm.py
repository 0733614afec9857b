"""A survey against the real vLLM CPU server: the acting prompts, their answers and the world stay as they were."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from llm_backend.server import ManagedServer
from society import load_run, load_scenario
from society.core.runner import run_scenario
from tests.society.test_survey import SCENARIOS, WORLD, scenario_file, world

pytestmark = pytest.mark.vllm


def test_a_survey_answered_by_the_real_model_leaves_the_world_as_it_was(vllm_server: ManagedServer,
                                                                       tmp_path: Path) -> None:
    settings = ["rounds=3", "population.size=6", "llm.backend=server", f"llm.base_urls=[{vllm_server.base_url}]",
                "llm.temperature=0", "llm.fallback_threshold=1.0", "llm.cache='off'"]
    survey = load_scenario(SCENARIOS / "persona_validity_llm.yaml").schedule[-1].params.model_dump(mode="json")
    plain = run_scenario(load_scenario(scenario_file(tmp_path, "persona_validity_llm", settings, None)),
                         tmp_path / "a")
    surveyed = run_scenario(load_scenario(scenario_file(tmp_path, "persona_validity_llm", settings, survey)),
                            tmp_path / "b")
    before, after = world(plain), world(surveyed)
    acting = ["round", "phase", "citizen", "prompt", "answer"]
    calls = load_run(surveyed).llm_calls
    assert calls.filter(~pl.col("phase").str.starts_with("survey:")).select(acting).equals(
        load_run(plain).llm_calls.select(acting))
    for table in WORLD:
        assert after[table].equals(before[table]), table
    answers = load_run(surveyed).survey
    assert answers.height == 2 * 6 * 11 and (answers["source"] == "llm").all()  # rounds 1 and 3, 11 items asked
    assert answers.filter(~pl.col("fallback"))["answer"].is_not_null().all()
