"""Interventions: validated like the scenario, fired once, recorded as events, kept across checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from society import Society, load_run, load_scenario
from society.core.runner import RunInterrupted, resume_run, run_scenario
from society.scenario.problems import ScenarioError
from tests.shipped_tables import SchemaAnswers
from tests.society.conftest import whole_and_resumed

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
NEWCOMER = SCENARIOS / "govsim_newcomer.yaml"


def play(society: Society) -> Society:
    while society.running:
        society.step()
    return society


def interventions(society_events: pl.DataFrame) -> list[dict]:
    rows = society_events.filter(pl.col("kind") == "intervention")
    return [json.loads(detail) for detail in rows["detail"]]


@pytest.mark.parametrize(("outsider", "collapse_round", "stock"), [
    ("{policy: greedy, factor: 8}", 3, 0),
    ("{policy: greedy, factor: 6}", 4, 0),
    ("{policy: greedy, factor: 3}", None, 32),
    ("{policy: greedy, factor: 1.5}", None, 82),
    ("{policy: sustainable}", None, 100),
])
def test_the_newcomer_lake_collapses_as_the_outsiders_greed_says(
    outsider: str, collapse_round: int | None, stock: float
) -> None:
    society = play(Society(load_scenario(NEWCOMER, [f"interventions.0.add.policy={outsider}"])))
    assert society.collapse_round == collapse_round
    assert society.round == (collapse_round or 12)
    assert society.commons.stock.tolist() == [stock]
    assert society.num_citizens == 6
    assert society.state["group"].tolist() == [0] * 5 + [1]  # a group of its own, even when sustainable
    assert society.policy_name(5) == outsider.split(",")[0].split(": ")[1].rstrip("}")


def test_the_newcomer_arrives_at_round_3_in_every_table(tmp_path: Path) -> None:
    run = load_run(run_scenario(load_scenario(NEWCOMER), tmp_path / "run"))
    per_round = run.citizens.group_by("round").len().sort("round")
    assert per_round["len"].to_list()[:4] == [5, 5, 6, 6]
    newcomer = run.citizens.filter(pl.col("citizen") == 5).sort("round")
    assert newcomer["round"][0] == 3 and newcomer["policy"][0] == "greedy"
    assert newcomer["take"][0] > 5 * run.citizens.filter((pl.col("round") == 3) & (pl.col("citizen") == 0))["take"][0]
    [fired] = interventions(run.events)
    assert run.events.filter(pl.col("kind") == "intervention")["round"].to_list() == [3]
    assert fired["add"] == {"citizens": [5], "group": 1, "links": 5, "linked_to": [[0, 1, 2, 3, 4]], "patches": [0],
                            "policy": "greedy"}


@pytest.mark.parametrize("crash_after", [2, 3, 4])
def test_a_run_resumed_across_the_intervention_round_restores_the_grown_population(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crash_after: int
) -> None:
    scenario = load_scenario(NEWCOMER, ["commons.on_collapse=continue",
                                        "graph={kind: erdos_renyi, mean_degree: 2}", "population.size=12",
                                        "population.policies=[{policy: conditional, fraction: 1, noise: 0.1}]",
                                        "interventions=[{when: {round: 3}, set: {schedule.0.params.max_take: 2},"
                                        " add: {policy: {policy: greedy, factor: 2.5}}}]"])
    whole, resumed = whole_and_resumed(scenario, tmp_path, monkeypatch, crash_after + 1)
    for name in ("rounds", "citizens", "events"):
        assert_frame_equal(getattr(whole, name), getattr(resumed, name))
    assert resumed.citizens["citizen"].max() == 12
    takes = resumed.citizens.group_by(pl.col("round") >= 3).agg(pl.col("take").max()).sort("round")["take"]
    assert takes.to_list()[1] <= 2 < takes.to_list()[0]


HEURISTIC = ["govsim_fishery", "institutions_charter", "norms_ostrom_cpr", "norms_public_goods", "ostrom_cpr",
             "norms_scarce_selfish"]


def _tables(society: Society) -> dict[str, list[pl.DataFrame]]:
    tables: dict[str, list[pl.DataFrame]] = {"rounds": [], "citizens": [], "events": []}
    while society.running:
        society.step()
        tables["rounds"].append(pl.DataFrame([society.round_row]))
        tables["citizens"].append(society.round_citizens())
        tables["events"].append(society.round_events().filter(pl.col("kind") != "intervention"))
    return tables


@pytest.mark.parametrize("name", HEURISTIC)
def test_setting_a_phase_parameter_to_its_own_value_changes_nothing(name: str) -> None:
    """Rebuilding a phase mid-run keeps everything it holds: the run is the one without the intervention."""
    scenario = load_scenario(SCENARIOS / f"{name}.yaml", ["rounds=8"])
    index, field = next((i, f) for i, entry in enumerate(scenario.schedule) for f in type(entry.params).model_fields)
    value = json.dumps(scenario.schedule[index].params.model_dump(mode="json")[field])
    changed = load_scenario(SCENARIOS / f"{name}.yaml", [
        "rounds=8", f"interventions=[{{when: {{round: 3}}, set: {{schedule.{index}.params.{field}: {value}}}}}]"])
    plain, rebuilt = _tables(Society(scenario)), _tables(Society(changed))
    for table in plain:
        assert_frame_equal(pl.concat(plain[table], how="diagonal_relaxed"),
                           pl.concat(rebuilt[table], how="diagonal_relaxed"))


@pytest.mark.parametrize("name", HEURISTIC)
def test_newcomers_join_every_shipped_heuristic_world(name: str) -> None:
    scenario = load_scenario(SCENARIOS / f"{name}.yaml", [
        "rounds=6", "interventions=[{when: {round: 3}, add: {count: 2, policy: greedy}}]"])
    plain = _tables(Society(scenario.model_copy(update={"interventions": []})))
    society = Society(scenario)
    grown = _tables(society)
    assert society.num_citizens == scenario.population.size + 2
    assert_frame_equal(pl.concat(plain["citizens"][:2]), pl.concat(grown["citizens"][:2]))
    assert grown["citizens"][-1].height == society.num_citizens
    assert set(grown["citizens"][-1].filter(pl.col("citizen") >= scenario.population.size)["policy"]) == {"greedy"}


def test_set_changes_what_the_policies_and_the_commons_read_from_that_round_on() -> None:
    base = ["rounds=6", "commons.on_collapse=continue"]
    plain = play(Society(load_scenario(SCENARIOS / "govsim_fishery.yaml", base)))
    society = Society(load_scenario(SCENARIOS / "govsim_fishery.yaml", [*base, (
        "interventions=[{when: {round: 4}, set: {population.policies.1.factor: 1.5,"
        " commons.capacity: 120, schedule.0.params.max_take: 3}}]")]))
    takes = []
    while society.running:
        society.step()
        takes.append(society.round_citizens()["take"].to_numpy())
    assert society.scenario.population.policies[1].factor == 1.5 == society.policy_rules.factor[1]
    assert society.commons.capacity.tolist() == [120.0]
    assert max(takes[3]) <= 3 and max(takes[2]) > 3
    assert plain.commons.capacity.tolist() == [100.0]


def test_stock_below_fires_once_and_a_shock_destroys_its_share() -> None:
    society = Society(load_scenario(SCENARIOS / "govsim_fishery.yaml", [
        "rounds=10", "commons.on_collapse=continue",
        "interventions=[{when: {round: 2}, shock: {severity: 0.6}},"
        " {when: {stock_below: 0.5}, shock: {severity: 0.1}}]",
    ]))
    fired = []
    while society.running:
        before = society.commons.stock.sum()
        society.step()
        fired += [(society.round, detail, before) for detail in interventions(society.round_events())]
    assert [(round_number, detail["intervention"]) for round_number, detail, _ in fired] == [(2, 0), (2, 1)]
    (_, first, stock), (_, second, _) = fired
    assert first["shock"] == pytest.approx(0.6 * stock)  # the first leaves 40%, so the second is due at once
    assert second["shock"] == pytest.approx(0.1 * 0.4 * stock)


def test_a_broadcast_is_quoted_in_every_llm_citizens_prompt() -> None:
    society = Society(load_scenario(SCENARIOS / "govsim_newcomer_llm.yaml", ["commons.on_collapse=continue"]))
    society.llm.connection = SchemaAnswers()
    prompts = []
    while society.running and society.round < 4:
        society.step()
        prompts.append(society.llm.round_calls())
    heard = [frame.filter(pl.col("prompt").str.contains("A newcomer has arrived")).height for frame in prompts]
    assert heard[:2] == [0, 0] and heard[2] == 5
    assert society.num_citizens == 6 and society.llm.members.tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(("override", "field", "message"), [
    ("interventions=[{when: {round: 13}, shock: {severity: 0.5}}]", "interventions[0].when.round",
     "after the run's last round"),
    ("interventions=[{when: {round: 2}, set: {population.size: 9}}]", "interventions[0].set.population.size",
     "cannot change while the run plays"),
    ("interventions=[{when: {round: 2}, set: {commons.regrowth.rate: 0.5}}]",
     "interventions[0].set.commons.regrowth.rate", "unknown key"),
    ("interventions=[{when: {round: 2}, set: {schedule.0.params.max_take: -1}}]",
     "interventions[0].set.schedule.0.params.max_take", "greater than 0"),
    ("interventions=[{when: {round: 2}, set: {schedule.5.params.x: 1}}]",
     "interventions[0].set.schedule.5.params.x", "not an index"),
    ("interventions=[{when: {round: 2}, broadcast: hello}]", "interventions[0].broadcast", "no LLM citizen"),
    ("interventions=[{when: {round: 2}, add: {policy: greedy, told: hi}}]", "interventions[0].add",
     "told is for LLM newcomers"),
    ("interventions=[{when: {round: 2, stock_below: 0.5}, shock: {severity: 0.5}}]", "interventions[0].when",
     "exactly one of"),
    ("interventions=[{when: {round: 2}}]", "interventions[0]", "at least one of"),
    ("interventions=[{when: {round: 2}, add: {policy: greedy, patch: 3}}]", "interventions[0].add.patch",
     "does not exist"),
])
def test_bad_interventions_are_clear_errors_naming_file_and_field(override: str, field: str, message: str) -> None:
    with pytest.raises(ScenarioError) as error:
        load_scenario(SCENARIOS / "govsim_fishery.yaml", [override])
    text = str(error.value)
    assert "govsim_fishery.yaml" in text and field in text and message in text, text


def test_the_newcomer_takes_its_policys_strategy_draw_deterministically() -> None:
    overrides = ["interventions=[{when: {round: 2}, add: {count: 3, policy: {policy: imitator}, links: 2}}]",
                 "graph={kind: ring, k: 2}", "population.size=10", "rounds=4"]
    first = play(Society(load_scenario(SCENARIOS / "ostrom_cpr.yaml", overrides)))
    second = play(Society(load_scenario(SCENARIOS / "ostrom_cpr.yaml", overrides)))
    assert np.array_equal(first.graph.indices, second.graph.indices)
    assert np.array_equal(first.state["strategy"], second.state["strategy"])
    assert first.graph.degrees[10:].tolist() == [2, 2, 2]


def test_a_charter_quota_set_mid_run_is_the_policy_in_force_from_that_round() -> None:
    from institutions.polity import Polity

    society = Society(load_scenario(SCENARIOS / "institutions_charter.yaml", [
        "rounds=8", "interventions=[{when: {round: 6}, set: {schedule.6.params.base.quota: 0.5}}]"]))
    quotas = []
    while society.running:
        society.step()
        polity = society.slots[Polity]
        quotas.append((polity.base.quota, polity.policy.quota))
    assert quotas[4] == (1.0, 1.0) and quotas[5] == (0.5, 0.5)


def test_a_sweep_axis_can_be_an_interventions_round_or_value(tmp_path: Path) -> None:
    """The shipped newcomer grid: a mild outsider never sinks the lake; a greedy one sinks it soon after it comes,
    so the lake lasts longer the later it comes (measured per cell, not assumed)."""
    from society.sweeps import SerialExecutor, load_grid, run_sweep

    grid = load_grid(SCENARIOS / "grids" / "newcomer_arrival_x_greed.yaml")
    run_sweep(grid, tmp_path / "sweep", SerialExecutor())
    summary = pl.read_parquet(tmp_path / "sweep" / "summary.parquet")
    arrival, greed = pl.col("interventions.0.when.round"), pl.col("interventions.0.add.policy.factor")
    assert summary.height == 20 and summary["valid"].all()
    assert summary.filter(greed == 2)["survival"].to_list() == [12] * 4
    greedy = summary.filter(greed == 10).sort(arrival)
    assert greedy["collapsed"].all()
    assert (greedy["survival"] >= greedy["interventions.0.when.round"]).all()
    assert greedy["survival"].is_sorted() and greedy["survival"].n_unique() == 4


def test_a_resume_after_a_set_that_adds_a_state_column_goes_on_as_the_whole_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Harvest's `repeat_last` fallback keeps each citizen's last request in a state column; set at round 2, the
    column exists only from then on, so the checkpoints after it hold it and a resume must rebuild it first."""
    from society.core import runner
    from tests.society.test_cohorts import cached_model

    scenario = load_scenario(SCENARIOS / "village_llm.yaml", [
        "population.size=12", "rounds=5", "commons.on_collapse=continue",
        "population.policies.0.persona={roles: {woodcutter: 1.0}}",
        "interventions=[{when: {round: 2}, set: {schedule.0.params.fallback: repeat_last}}]",
    ])
    monkeypatch.setattr(runner, "connect", cached_model([], []))
    whole = load_run(run_scenario(scenario, tmp_path / "whole"))
    original_step = Society.step

    def stop_after_round_3(self: Society) -> None:
        original_step(self)
        if self.round == 3:
            assert "last_request_0" in self.state
            raise KeyboardInterrupt

    monkeypatch.setattr(Society, "step", stop_after_round_3)
    with pytest.raises(RunInterrupted):
        run_scenario(scenario, tmp_path / "cut")
    monkeypatch.setattr(Society, "step", original_step)
    resumed = load_run(resume_run(tmp_path / "cut"))
    for name in ("rounds", "citizens", "events"):
        assert_frame_equal(getattr(whole, name).drop("llm_cached", strict=False),
                           getattr(resumed, name).drop("llm_cached", strict=False))
