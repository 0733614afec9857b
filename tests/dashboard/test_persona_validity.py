"""The Reasoning page shows a surveyed run's persona validity, and nothing of it for a run without a survey."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboard import queries
from society.scenario.files import load_scenario
from tests.dashboard.apptest import open_page
from tests.dashboard.conftest import SCENARIOS
from tests.llm_recording import record_llm_run


@pytest.fixture(scope="module")
def surveyed_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    scenario = SCENARIOS / "persona_validity_llm.yaml"
    record_llm_run(load_scenario(scenario, ["llm.fallback_threshold=1.0"]), runs / "surveyed")
    record_llm_run(load_scenario(SCENARIOS / "govsim_fishery_llm.yaml", ["rounds=2"]), runs / "plain")
    return runs


def test_reasoning_page_shows_persona_validity_of_a_surveyed_run(monkeypatch: pytest.MonkeyPatch,
                                                                 surveyed_runs: Path) -> None:
    app = open_page(monkeypatch, surveyed_runs, "reasoning", run="surveyed")
    assert [header.value for header in app.subheader] == ["Persona validity"]
    shown = app.dataframe[0].value
    expected = queries.persona_validity(surveyed_runs / "surveyed")
    assert list(shown["trait"]) == expected["trait"].to_list()
    assert list(shown.columns) == expected.columns
    surveyed = expected["surveyed"].to_list()
    assert [None if value != value else round(value, 9) for value in shown["surveyed"]] == \
        [None if value != value else round(value, 9) for value in surveyed]


def test_reasoning_page_shows_no_persona_validity_without_a_survey(monkeypatch: pytest.MonkeyPatch,
                                                                   surveyed_runs: Path) -> None:
    app = open_page(monkeypatch, surveyed_runs, "reasoning", run="plain")
    assert not app.subheader and queries.persona_validity(surveyed_runs / "plain") is None
