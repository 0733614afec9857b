"""Honest results: fallbacks are named choices, flagged on every row and judged over the run; prompts give no
answer unless the scenario turns the hint on (a stand-in model, so these run without a server)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import yaml
from click.testing import CliRunner

from llm_backend.client import ChatRequest, Result
from society import Society, load_run, load_scenario
from society.cli import main
from society.core import runner
from society.core.runner import run_scenario
from society.core.validity import fallback_validity
from society.phases.deciding import Fallback
from society.phases.harvest import HarvestPhase
from society.phases.invest import InvestPhase
from society.sweeps.executors import SerialExecutor
from society.sweeps.grid import load_grid
from society.sweeps.sweep import run_sweep

SCENARIOS = Path(__file__).parents[2] / "scenarios"
GOVSIM = SCENARIOS / "govsim_fishery_llm.yaml"
OSTROM = SCENARIOS / "ostrom_cpr.yaml"


class Answering:
    """Answers every request with `answer(request)`: JSON text, or garbage."""

    model = "answering"

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.prompts: list[str] = []

    def complete(self, requests: Sequence[ChatRequest]) -> list[Result]:
        self.prompts += [request.messages[-1]["content"] for request in requests]
        return [Result(index=k, ok=True, text=self.answer(request), finish_reason="stop", prompt_tokens=10,
                       completion_tokens=3, latency_s=0.0, attempts=1, cached=False, sample_index=0, key=str(k))
                for k, request in enumerate(requests)]


def garbage(request: ChatRequest) -> str:
    return "I would rather not say."


def modest(request: ChatRequest) -> str:
    """An amount of 1, with a reason where the schema asks for one."""
    reason = {"reason": "a little"} if "reason" in (request.schema or {}).get("properties", {}) else {}
    return json.dumps({"amount": 1} | reason)


def played(scenario: Path, answer: Any, *overrides: str, rounds: int = 1) -> tuple[Society, Answering]:
    society = Society(load_scenario(scenario, list(overrides)))
    connection = Answering(answer)
    society.llm.connection = connection
    for _ in range(rounds):
        society.step()
    return society, connection


def test_the_default_harvest_prompt_gives_no_sustainable_share_and_the_switch_puts_it_back() -> None:
    _, plain = played(GOVSIM, modest)
    _, hinted = played(GOVSIM, modest, "schedule.0.params.show_sustainable_share=true")
    assert not any("sustainable share" in prompt for prompt in plain.prompts)
    assert all("Your sustainable share (what keeps the lake as it is): 10.0." in p for p in hinted.prompts)


def test_the_harvest_memory_names_the_share_only_under_the_switch() -> None:
    plain, _ = played(GOVSIM, modest, rounds=2)
    hinted, _ = played(GOVSIM, modest, "schedule.0.params.show_sustainable_share=true", rounds=2)
    assert "sustainable share" not in plain.llm.memory.render(0)
    assert "(sustainable share 10.0)" in hinted.llm.memory.render(0)


def test_the_universalization_condition_names_the_threshold_the_default_does_not() -> None:
    _, default = played(GOVSIM, modest)
    _, universal = played(SCENARIOS / "govsim_fishery_llm_universalization.yaml", modest)
    assert not any("every citizen took what you take" in prompt for prompt in default.prompts)
    assert all("if each took more than 10.0 tonnes of fish" in prompt for prompt in universal.prompts)


def test_the_default_invest_prompt_hides_the_social_optimum_and_the_switch_shows_it() -> None:
    llm = ["population.policies=[{policy: llm, fraction: 1.0}]", "llm.backend=server",
           "llm.base_urls=[http://127.0.0.1:9/v1]"]
    _, plain = played(OSTROM, modest, *llm)
    _, hinted = played(OSTROM, modest, *llm, "schedule.0.params.show_optimum=true")
    assert not any("earns most" in prompt for prompt in plain.prompts)
    assert all("Together the group earns most when it puts 36.0 tokens in the pool (4.5 each)." in p
               for p in hinted.prompts)


@pytest.mark.parametrize(("choice", "expected"), [("nothing", 0.0), ("sustainable", 10.0)])
def test_a_failed_harvest_answer_takes_what_the_named_fallback_says(choice: str, expected: float) -> None:
    overrides = [] if choice == "nothing" else [f"schedule.0.params.fallback={choice}"]
    society, _ = played(GOVSIM, garbage, "llm.fallback_threshold=1.0", *overrides)
    assert np.allclose(society.state["requested"], expected)


def test_the_default_harvest_fallback_is_nothing_never_the_sustainable_share() -> None:
    assert HarvestPhase.Params().fallback == "nothing" and InvestPhase.Params().fallback == "nothing"
    assert not HarvestPhase.Params().show_sustainable_share and not InvestPhase.Params().show_optimum


def test_repeat_last_asks_for_what_the_citizen_asked_for_last_round() -> None:
    society, connection = played(GOVSIM, modest, "schedule.0.params.fallback=repeat_last", "llm.fallback_threshold=1.0")
    connection.answer = garbage
    society.step()
    assert np.allclose(society.state["requested"], 1.0)
    assert society.round_citizens()["fallback"].all()


def test_rows_a_fallback_decided_are_flagged_and_metrics_split_all_from_model_decided() -> None:
    asked = iter(range(100))

    def half(request: ChatRequest) -> str:
        return garbage(request) if next(asked) % 2 == 0 else modest(request)

    society, _ = played(GOVSIM, half, "llm.fallback_threshold=1.0", "schedule.0.params.fallback=sustainable")
    flagged = society.round_citizens()["fallback"].to_numpy()
    calls = society.llm.round_calls()
    assert np.array_equal(np.flatnonzero(flagged), calls.filter("fallback")["citizen"].to_numpy())
    assert 0 < flagged.sum() < flagged.size
    row = society.round_row
    assert row["llm_fallback_citizens"] == flagged.sum()
    assert row["take_mean_model"] == pytest.approx(1.0) and row["over_share_model"] == 0.0
    assert row["take_mean_all"] > row["take_mean_model"]


@contextlib.contextmanager
def stand_in(answer: Any) -> Iterator[Any]:
    yield Answering(answer)


def run_with(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, answer: Any, *overrides: str) -> Path:
    monkeypatch.setattr(runner, "connect", lambda *args: stand_in(answer))
    scenario = load_scenario(GOVSIM, ["llm.backend=server", "llm.base_urls=[http://127.0.0.1:9/v1]", *overrides])
    out = tmp_path / "run"
    with contextlib.suppress(RuntimeError):
        run_scenario(scenario, out)
    return out


def test_a_model_that_never_answers_validly_cannot_look_sustainable(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    """Even with the run-stopping threshold lifted, the run plays out but is marked invalid, and no model-decided
    citizen stands behind its metrics."""
    run = load_run(run_with(monkeypatch, tmp_path, garbage, "llm.fallback_threshold=1.0"))
    validity = run.manifest["validity"]
    assert run.manifest["status"] == "completed" and validity["valid"] is False
    assert validity["fallback_share"] == 1.0 and "above llm.invalid_threshold 0.2" in validity["reason"]
    assert run.citizens["fallback"].all() and run.rounds["take_mean_model"].is_nan().all()
    shown = CliRunner().invoke(main, ["info", str(run.path)]).output
    assert "INVALID: 60 of 60 LLM answers failed" in shown


def test_a_run_stopped_by_fallbacks_is_invalid_too(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    run = load_run(run_with(monkeypatch, tmp_path, garbage))
    assert run.manifest["status"] == "failed" and run.manifest["validity"]["valid"] is False
    assert run.manifest["validity"]["asked"] == 5


def test_a_run_the_model_decided_is_valid(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    run = load_run(run_with(monkeypatch, tmp_path, modest))
    assert run.manifest["validity"] | {"by_phase": None} == {
        "valid": True, "reason": None, "fallback_share": 0.0, "asked": 60, "fallbacks": 0, "by_phase": None,
        "threshold": 0.2, "survey_asked": 0, "survey_fallbacks": 0,
    }
    assert "(valid)" in CliRunner().invoke(main, ["info", str(run.path)]).output


def test_no_shipped_scenario_lifts_the_fallback_stop() -> None:
    for path in sorted(SCENARIOS.glob("*.yaml")):
        raw = yaml.safe_load(path.read_text())
        assert (raw.get("llm") or {}).get("fallback_threshold", 0.5) < 1.0, path.name


def test_fallbacks_are_named_by_the_scenario() -> None:
    society = Society(load_scenario(GOVSIM, ["schedule.0.params.fallback=repeat_last"]))
    assert isinstance(society.phases[0], HarvestPhase) and society.phases[0].params.fallback == "repeat_last"
    assert Fallback("nothing", lambda failed: None).name == "nothing"


def test_repeat_last_repeats_each_phases_own_request() -> None:
    def by_phase(request: ChatRequest) -> str:
        return json.dumps({"amount": 3 if "tokens" in request.messages[-1]["content"] else 1, "reason": ""})

    schedule = ("schedule=[{phase: invest, params: {fallback: repeat_last}}, "
                "{phase: harvest, params: {fallback: repeat_last}}, regrow]")
    society, connection = played(GOVSIM, by_phase, schedule, "llm.fallback_threshold=1.0")
    connection.answer = garbage
    society.step()
    invest, harvest = society.phases[0], society.phases[1]
    assert np.allclose(invest.last.values, 3.0) and np.allclose(harvest.last.values, 1.0)
    assert np.allclose(society.state["requested"], 1.0) and society.round_citizens()["fallback"].all()


def test_validity_judges_the_whole_run_and_each_phase_of_at_least_five_answers() -> None:
    def calls(*phases: tuple[str, int, int]) -> pl.DataFrame:
        rows = [(name, k < failed) for name, asked, failed in phases for k in range(asked)]
        return pl.DataFrame(rows, schema={"phase": pl.Utf8, "fallback": pl.Boolean}, orient="row")

    assert fallback_validity(calls(("harvest", 100, 10), ("leader", 4, 4)), 0.2)["valid"] is True
    judged = fallback_validity(calls(("harvest", 100, 10), ("leader", 5, 2)), 0.2)
    assert judged["valid"] is False and judged["reason"] == (
        "phase 'leader': 2 of 5 fell back (40%), above llm.invalid_threshold 0.2")
    assert judged["by_phase"] == {"harvest": {"asked": 100, "fallbacks": 10}, "leader": {"asked": 5, "fallbacks": 2}}
    assert fallback_validity(calls(), 0.2) | {"by_phase": {}} == {
        "valid": True, "reason": None, "fallback_share": 0.0, "asked": 0, "fallbacks": 0, "by_phase": {},
        "threshold": 0.2, "survey_asked": 0, "survey_fallbacks": 0}
    surveyed = fallback_validity(calls(("harvest", 100, 10), ("survey:trust", 10, 10)), 0.2)
    assert surveyed["valid"] is True and surveyed["by_phase"] == {"harvest": {"asked": 100, "fallbacks": 10}}
    assert (surveyed["asked"], surveyed["fallbacks"], surveyed["survey_asked"], surveyed["survey_fallbacks"]) == (
        100, 10, 10, 10)


def test_the_sweep_summary_says_which_runs_are_invalid(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(runner, "connect", lambda *args: stand_in(garbage))
    base = load_scenario(GOVSIM).model_dump(mode="json", exclude_none=True)
    base["llm"] |= {"backend": "server", "base_urls": ["http://127.0.0.1:9/v1"], "fallback_threshold": 1.0}
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    (tmp_path / "grid.yaml").write_text(yaml.safe_dump({"base": "base.yaml", "seeds": [1],
                                                        "axes": {"llm.invalid_threshold": [0.5, 1.0]}}))
    report = run_sweep(load_grid(tmp_path / "grid.yaml"), tmp_path / "sweep", SerialExecutor())
    assert report.invalid == 1 and "2 of 2 runs completed, 1 of them invalid" in report.line()
    summary = pl.read_parquet(tmp_path / "sweep" / "summary.parquet")
    assert summary["status"].to_list() == ["completed"] * 2, summary["error"].to_list()
    assert summary["valid"].to_list() == [False, True] and summary["fallback_share"].to_list() == [1.0, 1.0]
