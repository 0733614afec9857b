"""LLM newcomers and removed LLM citizens: seated with a persona, asked from their arrival on, never asked after
leaving; kept across checkpoints, resumes and forks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from society import Society, load_run, load_scenario
from society.core import runner
from society.core.fork import fork_run
from society.core.runner import RunInterrupted, resume_run, run_scenario
from society.scenario.problems import ScenarioError
from tests.shipped_tables import SCENARIOS
from tests.society.conftest import stop_after_round
from tests.society.test_cohorts import cached_model

TABLES = ("rounds", "citizens", "events", "llm_calls")
VOLATILE = ("latency_s", "cached", "llm_cached")  # how an answer was obtained (asked or cached), not what it was


def same_tables(first: Any, second: Any) -> None:
    for name in TABLES:
        assert_frame_equal(getattr(first, name).drop(VOLATILE, strict=False),
                           getattr(second, name).drop(VOLATILE, strict=False))
    assert_frame_equal(first.personas, second.personas)
GREEDY_PERSONA = ("{roles: {outsider: 1.0}, hidden_agendas: [take as much fish as you can], "
                  "hidden_agenda_probability: 1.0}")
ARRIVAL = (f"{{when: {{round: 3}}, add: {{count: 2, policy: {{policy: llm, persona: {GREEDY_PERSONA}}}, "
           "told: You have just come to the lake.}}")
FISHERS = ["rounds=5", "commons.on_collapse=continue"]


def fishers(*interventions: str, extra: tuple[str, ...] = ()) -> Any:
    """GovSim's five LLM fishers for five rounds, with the given interventions."""
    return load_scenario(SCENARIOS / "govsim_fishery_llm.yaml",
                         [*FISHERS, f"interventions=[{', '.join(interventions)}]", *extra])


def played(scenario: Any, out: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(runner, "connect", cached_model([], []))
    return load_run(run_scenario(scenario, out))


def user_prompt(prompt: str) -> str:
    return json.loads(prompt)[1]["content"]


@pytest.mark.parametrize(("intervention", "field", "message"), [
    ("{when: {round: 2}, add: {policy: greedy, told: hello}}", "interventions[0].add", "told is for LLM newcomers"),
    ("{when: {round: 2}, add: {policy: {policy: llm, persona: {file: people.csv}}}}", "interventions[0].add.policy",
     "persona.file is read only for the starting population"),
    ("{when: {round: 2}, add: {policy: {policy: llm, fraction: 0.5}}}", "interventions[0].add.policy",
     "no fraction"),
    ("{when: {round: 2}, add: {policy: {policy: llm, persona: {roles: {}}}}}", "interventions[0].add.policy",
     "roles"),
    ("{when: {round: 2}, remove: {policy: llm, count: 6}}", "interventions[0].remove.count",
     "6 citizens to remove but 5 follow 'llm'"),
])
def test_bad_llm_newcomers_and_removals_are_clear_errors_naming_the_field(
    intervention: str, field: str, message: str
) -> None:
    with pytest.raises(ScenarioError) as error:
        fishers(intervention)
    text = str(error.value)
    assert "govsim_fishery_llm.yaml" in text and field in text and message in text, text


def test_a_persona_change_may_name_a_newcomer_of_an_earlier_add_but_no_one_else() -> None:
    change = "{when: {round: 4}, persona: {citizens: [%s], role: miller}}"
    society = Society(fishers(ARRIVAL, change % 6))
    assert society.llm.members.tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ScenarioError) as error:
        Society(fishers(ARRIVAL, change % 7))
    assert "interventions[1].persona.citizens" in str(error.value) and "not LLM citizens: 7" in str(error.value)
    with pytest.raises(ScenarioError, match=r"interventions\[0\].persona.citizens"):
        Society(fishers(change % 5, ARRIVAL))  # listed before the arrival: its newcomers are not there yet


def test_llm_newcomers_are_asked_from_their_arrival_with_their_persona_and_the_rounds_before_are_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = played(fishers(ARRIVAL), tmp_path / "arrival", monkeypatch)
    alone = played(fishers(), tmp_path / "alone", monkeypatch)
    calls = run.llm_calls
    asked = calls.group_by("round").agg(pl.col("citizen").sort()).sort("round")["citizen"].to_list()
    assert asked == [[0, 1, 2, 3, 4]] * 2 + [[0, 1, 2, 3, 4, 5, 6]] * 3
    before = ["round", "citizen", "prompt", "answer"]
    assert_frame_equal(calls.filter(pl.col("round") < 3).select(before),
                       alone.llm_calls.filter(pl.col("round") < 3).select(before))
    for name in ("rounds", "citizens"):
        assert_frame_equal(getattr(run, name).filter(pl.col("round") < 3), getattr(alone, name).filter(
            pl.col("round") < 3))

    personas = run.personas.sort("citizen")
    assert personas["citizen"].to_list() == [0, 1, 2, 3, 4, 5, 6]
    assert personas["role"].to_list() == ["fisher"] * 5 + ["outsider"] * 2
    assert personas["agenda"].to_list()[5:] == ["take as much fish as you can"] * 2
    assert_frame_equal(personas.head(5), alone.personas.sort("citizen"), check_dtypes=False)  # none else moved
    first = calls.filter((pl.col("round") == 3) & (pl.col("citizen") == 5))["prompt"][0]
    text = user_prompt(first)
    assert text.startswith(personas.filter(citizen=5)["description"][0])
    assert "Your secret aim: take as much fish as you can." in text
    assert 'On arrival: "You have just come to the lake."' in text and "Round 2:" not in text
    later = user_prompt(calls.filter((pl.col("round") == 5) & (pl.col("citizen") == 6))["prompt"][0])
    assert "Round 3:" in later and "Round 4:" in later and "Round 2:" not in later

    [fired] = [json.loads(d) for d in run.events.filter(kind="intervention")["detail"]]
    assert fired["add"]["citizens"] == [5, 6] and fired["add"]["policy"] == "llm"
    newcomers = run.citizens.filter(pl.col("citizen") >= 5)
    assert newcomers["round"].min() == 3 and newcomers["policy"].unique().to_list() == ["llm"]


def test_a_newcomer_without_told_starts_with_an_empty_memory() -> None:
    from tests.shipped_tables import SchemaAnswers

    society = Society(fishers(ARRIVAL.replace(", told: You have just come to the lake.", "")))
    society.llm.connection = SchemaAnswers()
    for _ in range(3):
        society.step()
    prompt = society.llm.round_calls().filter(citizen=5)["prompt"][0]
    assert "<memory>\\nNothing yet: you have just arrived.\\n</memory>" in prompt


def test_heuristic_fishers_joined_by_an_llm_outsider(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scenario = load_scenario(SCENARIOS / "govsim_newcomer.yaml", [
        "rounds=5", f"interventions=[{ARRIVAL.replace('count: 2', 'count: 1')}]"])
    assert scenario.has_llm_citizens
    run = played(scenario, tmp_path / "run", monkeypatch)
    assert run.llm_calls.group_by("round").agg(pl.col("citizen")).sort("round")["citizen"].to_list() == [[5]] * 3
    assert run.personas["citizen"].to_list() == [5] and run.personas["role"].to_list() == ["outsider"]
    assert run.rounds.filter(pl.col("round") < 3)["llm_requests"].to_list() == [0, 0]


def test_a_removed_llm_citizen_is_never_asked_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scenario = fishers("{when: {round: 2}, remove: {policy: llm, count: 2}}",
                       "{when: {round: 4}, remove: {citizens: [4]}}", extra=("llm.activation.probability=0.6",))
    run = played(scenario, tmp_path / "run", monkeypatch)
    [first, second] = [json.loads(d) for d in run.events.filter(kind="intervention")["detail"]]
    gone = first["remove"]["citizens"]
    assert len(gone) == 2 and 4 not in gone and second["remove"]["citizens"] == [4]
    calls = run.llm_calls
    assert set(calls.filter(pl.col("round") >= 2)["citizen"].to_list()).isdisjoint(gone)
    assert 4 not in calls.filter(pl.col("round") >= 4)["citizen"].to_list()
    assert set(run.citizens.filter(pl.col("round") >= 4)["citizen"].to_list()) == {0, 1, 2, 3} - set(gone)
    again = played(scenario, tmp_path / "again", monkeypatch)  # the draws of those who stay are seeded
    assert_frame_equal(calls.drop(VOLATILE, strict=False), again.llm_calls.drop(VOLATILE, strict=False))


def test_the_take_metrics_over_all_citizens_leave_out_the_removed(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    scenario = fishers("{when: {round: 2}, remove: {citizens: [0, 1]}}", extra=("llm.fallback_threshold=1.0",))
    run = played(scenario, tmp_path / "run", monkeypatch)
    by_hand = run.citizens.group_by("round").agg(
        present=pl.len(), take=pl.col("take").mean(), over=(pl.col("take") > pl.col("fair_share") + 1e-9).mean())
    rows = run.rounds.join(by_hand, on="round").sort("round")
    assert rows["present"].to_list() == [5, 3, 3, 3, 3]
    assert rows["take_mean_all"].to_list() == pytest.approx(rows["take"].to_list())
    assert rows["over_share_all"].to_list() == pytest.approx(rows["over"].to_list())
    assert rows.filter(pl.col("round") >= 2)["take"].sum() > 0


@pytest.mark.parametrize("crash_after", [2, 3])
def test_a_run_resumed_across_the_arrival_has_the_tables_of_a_whole_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crash_after: int
) -> None:
    scenario = fishers(ARRIVAL, "{when: {round: 4}, remove: {citizens: [1, 5]}}",
                       extra=("llm.activation.probability=0.7",))
    whole = played(scenario, tmp_path / "whole", monkeypatch)
    with monkeypatch.context() as patch:
        stop_after_round(patch, crash_after + 1)
        with pytest.raises(RunInterrupted):
            run_scenario(scenario, tmp_path / "cut")
    same_tables(whole, load_run(resume_run(tmp_path / "cut")))


@pytest.mark.parametrize("keep", [2, 0])
def test_a_fork_after_the_arrival_reproduces_its_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep: int
) -> None:
    parent = played(fishers(ARRIVAL, extra=(f"output.keep_checkpoints={keep}",)), tmp_path / "parent", monkeypatch)
    sent: list[str] = []
    monkeypatch.setattr(runner, "connect", cached_model(sent, []))
    fork = load_run(fork_run(parent.path, 5, tmp_path / "fork"))
    assert sent == []
    same_tables(parent, fork)


@pytest.mark.parametrize(("name", "phases"), [
    ("norms_govsim_meeting_llm", {"communicate", "harvest", "norm_punish", "social_learning"}),
    ("institutions_charter_llm", {"harvest", "elections_ballot"}),
    ("persona_validity_llm", {"harvest", "punish", "survey:openness_1"}),
])
def test_llm_newcomers_are_asked_in_every_phase_that_asks_llm_citizens(name: str, phases: set[str]) -> None:
    from tests.shipped_tables import SchemaAnswers

    scenario = load_scenario(SCENARIOS / f"{name}.yaml", [
        "rounds=3", "commons.on_collapse=continue", "interventions=[{when: {round: 2}, add: {count: 2, policy: llm}}]"])
    society = Society(scenario)
    society.llm.connection = SchemaAnswers()
    newcomers = {scenario.population.size, scenario.population.size + 1}
    asked: set[str] = set()
    while society.running:
        society.step()
        calls = society.llm.round_calls()
        asked |= set(calls.filter(pl.col("citizen").is_in(list(newcomers)))["phase"].to_list())
    assert phases <= asked


def test_an_activation_role_may_be_a_newcomers_only() -> None:
    scenario = fishers(ARRIVAL, extra=("llm.activation.by_role={outsider: 1.0}", "llm.activation.probability=0.2"))
    assert scenario.llm.activation.by_role == {"outsider": 1.0}


@pytest.mark.vllm
def test_an_llm_outsider_against_a_real_server_asks_its_own_model(vllm_server: Any, tmp_path: Path) -> None:
    """Three sustainable fishers and an LLM fisher joined at round 2 by an LLM outsider naming the server's second
    model name: the outsider is asked from its arrival on, by that model; its persona is in the run's personas."""
    import yaml

    from tests.conftest import TWIN_MODEL

    data = {
        "name": "outsider", "seed": 3, "rounds": 3,
        "population": {"size": 4, "policies": [
            {"policy": "sustainable", "fraction": 0.75},
            {"policy": "llm", "fraction": 0.25, "persona": {"roles": {"fisher": 1}}}]},
        "commons": {"capacity": 100, "initial_stock": 100, "regrowth": {"kind": "logistic", "rate": 0.5},
                    "collapse_threshold": 5, "on_collapse": "continue", "resource": "lake", "unit": "tonnes"},
        # at most 5 tonnes each: whatever the model answers, the lake cannot empty, so round 3 asks again
        "schedule": [{"phase": "harvest", "params": {"max_take": 5}}, "regrow"],
        "llm": {"backend": "server", "base_urls": [vllm_server.base_url], "fallback_threshold": 1.0},
        "interventions": [{"when": {"round": 2}, "add": {
            "policy": {"policy": "llm", "model": TWIN_MODEL, "persona": {"roles": {"outsider": 1.0}}},
            "told": "You have just come to the lake."}}],
    }
    path = tmp_path / "outsider.yaml"
    path.write_text(yaml.safe_dump(data))
    run = load_run(run_scenario(load_scenario(path), tmp_path / "run"))
    calls = run.llm_calls.filter(citizen=4)
    assert calls["round"].to_list() == [2, 3] and calls["model"].to_list() == [TWIN_MODEL] * 2
    assert run.llm_calls.filter(round=1).height == 1 and not run.llm_calls["cached"].any()
    assert run.personas["role"].to_list() == ["fisher", "outsider"] and run.personas["citizen"][1] == 4
    assert run.manifest["llm"]["models"] == [vllm_server.model, TWIN_MODEL]
    assert run.citizens.filter(citizen=4)["model"].to_list() == [TWIN_MODEL] * 2


def test_the_rules_tell_how_many_citizens_there_are_now(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two arrive at round 3 and one LLM fisher leaves at round 4: the prompts' first line follows the count."""
    monkeypatch.setattr(runner, "connect", cached_model([], []))
    leave = "{when: {round: 4}, remove: {citizens: [0]}}"
    calls = load_run(run_scenario(fishers(ARRIVAL, leave), tmp_path / "run")).llm_calls
    for number, citizens in [(1, 5), (2, 5), (3, 7), (4, 6), (5, 6)]:
        rules = {json.loads(prompt)[0]["content"].split(". ")[0] for prompt in calls.filter(round=number)["prompt"]}
        assert rules == {f"You are a citizen in a simulated village of {citizens} citizens"}
