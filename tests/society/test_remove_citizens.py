"""Removing citizens: a `remove` intervention parks heuristic citizens; they leave every later table and act no more."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from society import Society, load_scenario
from society.core.runner import run_scenario
from society.scenario.problems import ScenarioError
from tests.society.conftest import whole_and_resumed

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
FISHERY = SCENARIOS / "govsim_fishery.yaml"
GREEDY_LAKE = ["population.size=10", "commons.on_collapse=continue",
               "population.policies=[{policy: sustainable, fraction: 0.6}, {policy: greedy, fraction: 0.4, factor: 3}]"]
REMOVE_GREEDY = "interventions=[{when: {round: 2}, remove: {policy: greedy, count: 4}}]"


def tables(society: Society) -> dict[str, list[pl.DataFrame]]:
    played: dict[str, list[pl.DataFrame]] = {"rounds": [], "citizens": [], "events": []}
    while society.running:
        society.step()
        played["rounds"].append(pl.DataFrame([society.round_row]))
        played["citizens"].append(society.round_citizens())
        played["events"].append(society.round_events())
    return played


def test_removing_the_greedy_citizens_lets_the_lake_survive() -> None:
    without = Society(load_scenario(FISHERY, GREEDY_LAKE))
    before = tables(without)
    assert without.collapse_round == 2
    removed = Society(load_scenario(FISHERY, [*GREEDY_LAKE, REMOVE_GREEDY]))
    after = tables(removed)
    assert removed.collapse_round is None and removed.round == 12 and removed.commons.stock[0] > 50
    for name in ("rounds", "citizens", "events"):  # round 1 is the same run
        assert_frame_equal(before[name][0], after[name][0])
    greedy = np.flatnonzero(without.state["group"] == 1)
    [event] = after["events"][1].filter(pl.col("kind") == "intervention")["detail"].to_list()
    assert json.loads(event)["remove"] == {"citizens": greedy.tolist(), "policies": ["greedy"] * 4}
    for round_citizens in after["citizens"][1:]:
        assert sorted(round_citizens["citizen"].to_list()) == sorted(set(range(10)) - set(greedy.tolist()))
        assert round_citizens["policy"].unique().to_list() == ["sustainable"]
    assert removed.commons.citizens_per_patch.tolist() == [6]
    assert removed.graph.degrees[greedy].tolist() == [0] * 4 and removed.graph.degrees.max() == 5
    assert removed.state["take"][greedy].tolist() == [0.0] * 4


def test_a_removed_citizen_is_neither_punished_nor_punishes() -> None:
    overrides = [*GREEDY_LAKE, "rounds=4", "schedule=[harvest, regrow, {phase: punish, params: {threshold: 1.2, "
                 "punishers: [sustainable, greedy]}}]", "interventions=[{when: {round: 2}, remove: {citizens: [0, 3]}}]"]
    society = Society(load_scenario(FISHERY, overrides))
    played = tables(society)
    punished = pl.concat(played["events"][1:]).filter(pl.col("kind") == "punish")
    assert punished.height > 0
    assert not set(punished["actor"].to_list() + punished["target"].to_list()) & {0, 3}


def test_a_run_resumed_after_a_removal_goes_on_as_the_whole_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = load_scenario(FISHERY, [*GREEDY_LAKE, REMOVE_GREEDY, "output.checkpoint_every=1"])
    whole, resumed = whole_and_resumed(scenario, tmp_path, monkeypatch, 4)
    for name in ("rounds", "citizens", "events"):
        assert_frame_equal(getattr(whole, name), getattr(resumed, name))
    assert resumed.citizens.group_by("round").len().sort("round")["len"].to_list() == [10] + [6] * 11


def test_removal_draws_are_seeded() -> None:
    overrides = [*GREEDY_LAKE, "interventions=[{when: {round: 2}, remove: {policy: greedy, count: 2}}]"]
    first = Society(load_scenario(FISHERY, overrides))
    again = Society(load_scenario(FISHERY, overrides))
    for society in (first, again):
        society.step()
        society.step()
    assert first.state["present"].tolist() == again.state["present"].tolist()
    assert (~first.state["present"]).sum() == 2 and set(first.state["group"][~first.state["present"]]) == {2}


@pytest.mark.parametrize(("remove", "field", "expected"), [
    ("{policy: greedy, count: 5}", "interventions[0].remove.count", "5 citizens to remove but 4 follow 'greedy'"),
    ("{policy: imitator}", "interventions[0].remove.policy", "no citizen follows 'imitator'; the policies are"),
    ("{citizens: [3, 10, 12]}", "interventions[0].remove.citizens", "citizens [10, 12] do not exist"),
    ("{citizens: [1, 1]}", "interventions[0].remove", "a citizen is listed twice"),
    ("{policy: greedy, citizens: [1]}", "interventions[0].remove", "expected exactly one of policy"),
])
def test_a_removal_the_run_could_not_make_is_refused(remove: str, field: str, expected: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(FISHERY, [*GREEDY_LAKE, f"interventions=[{{when: {{round: 2}}, remove: {remove}}}]"])
    assert any(problem.field == field and expected in problem.message for problem in caught.value.problems), \
        caught.value.problems


def test_newcomers_count_toward_a_later_removal() -> None:
    overrides = [*GREEDY_LAKE, "interventions=[{when: {round: 2}, add: {count: 2, policy: greedy}}, "
                 "{when: {round: 3}, remove: {policy: greedy, count: 6}}, {when: {round: 4}, remove: {citizens: [11]}}]"]
    society = Society(load_scenario(FISHERY, overrides))
    tables(society)
    assert society.state["present"].tolist() == [g == 0 for g in society.state["group"][:10]] + [False, False]


@pytest.mark.parametrize("schedule", ["[harvest, regrow, social_learning, norm_beliefs]",
                                      "[communicate, harvest, regrow, norm_punish]"])
def test_a_removal_goes_with_any_schedule(schedule: str) -> None:
    society = Society(load_scenario(FISHERY, [*GREEDY_LAKE, REMOVE_GREEDY, f"schedule={schedule}"]))
    tables(society)
    assert society.round == 12 and int(society.state["present"].sum()) == 6


def test_society_info_says_who_arrived_and_who_left(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from society.cli import main

    both = ("interventions=[{when: {round: 2}, remove: {policy: greedy, count: 4}}, "
            "{when: {round: 3}, add: {count: 2, policy: {policy: sustainable}}}]")
    run = run_scenario(load_scenario(FISHERY, [*GREEDY_LAKE, both]), tmp_path / "run")
    shown = CliRunner().invoke(main, ["info", str(run)])
    assert shown.exit_code == 0 and "(seed 42, 10 citizens, then 2 arrived and 4 left)" in shown.output
    plain = run_scenario(load_scenario(FISHERY, GREEDY_LAKE), tmp_path / "plain")
    assert "(seed 42, 10 citizens)\n" in CliRunner().invoke(main, ["info", str(plain)]).output
