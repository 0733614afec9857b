"""The norms phases inside a society: tables, determinism, resume, and clear errors for bad parameters."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from society import ScenarioError, load_run, load_scenario
from society.core.model import Society
from society.core.runner import run_scenario

from .conftest import norm_scenario

NORM_ROUND_COLUMNS = {
    "norm_dispersion", "compliance", "sanction_norm_agreement", "cooperation_index", "norm_emergence_round",
    "norm_stability",
}


def play(society: Society) -> list[dict]:
    rows = []
    while society.running:
        society.step()
        rows.append(society.round_row)
    return rows


def test_run_tables_carry_the_norm_columns(tmp_path) -> None:
    scenario = norm_scenario(output={"dir": str(tmp_path)})
    run = load_run(run_scenario(scenario, tmp_path / "run"))
    assert NORM_ROUND_COLUMNS <= set(run.rounds.columns)
    assert {"personal_norm", "empirical_expectation", "normative_expectation"} <= set(run.citizens.columns)
    kinds = set(run.events["kind"])
    assert {"message", "punish"} <= kinds
    assert run.rounds["norm_dispersion"].min() >= 0 and run.rounds["compliance"].is_between(0, 1).all()


def test_same_seed_same_rows_and_resume_is_identical() -> None:
    first = play(Society(norm_scenario()))
    assert first == play(Society(norm_scenario()))
    society = Society(norm_scenario())
    for _ in range(3):
        society.step()
    checkpoint = society.checkpoint()
    resumed = Society(norm_scenario())
    resumed.restore(checkpoint)
    assert play(resumed) == first[3:]


def test_sanctions_hit_takes_above_the_punishers_norm() -> None:
    society = Society(norm_scenario(schedule=["harvest", {"phase": "norm_punish", "params": {"tolerance": 0.0}}]))
    society.step()
    events = society.round_events()
    state = society.state
    actors, targets = events["actor"].to_numpy(), events["target"].to_numpy()
    assert actors.size > 0
    assert np.all(state["ratio"][targets] > state["personal_norm"][actors])
    greedy = society.group_members[3]
    assert np.isin(targets, greedy).mean() > greedy.size / society.num_citizens  # greedy are over-represented


def test_learning_spreads_the_norms_of_better_paid_neighbours() -> None:
    scenario = norm_scenario(schedule=["harvest", "regrow", {"phase": "norm_punish", "params": {"impact": 30}},
                                       {"phase": "social_learning", "params": {"conformity": 0.0}}], rounds=8)
    society = Society(scenario)
    start = society.state["personal_norm"].copy()
    rows = play(society)
    assert sum(row["imitations"] for row in rows) > 0
    assert np.median(society.state["personal_norm"]) < np.median(start)


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("schedule.3.params.punishers=[sustainable, saints]", "schedule[3].params.punishers"),
        ("schedule.0.params.mode=shout", "schedule[0].params.mode"),
        ("schedule.4.params.conformity=2", "schedule[4].params.conformity"),
    ],
)
def test_bad_parameters_name_the_file_and_field(override: str, field: str) -> None:
    with pytest.raises(ScenarioError) as error:
        load_scenario("scenarios/norms_rich_altruistic.yaml", [override])
    message = str(error.value)
    assert message.startswith("scenarios/norms_rich_altruistic.yaml: " + field) and "\n" not in message


def test_public_goods_groups_payoffs_and_punishment() -> None:
    scenario = norm_scenario(
        population={"size": 10, "policies": [{"policy": "sustainable", "fraction": 0.5},
                                             {"policy": "greedy", "fraction": 0.5}]},
        commons=None, graph={"kind": "complete"},
        schedule=[{"phase": "public_goods", "params": {"punishment": True, "rate": 1.0}}],
    )
    society = Society(scenario)
    society.step()
    state, row = society.state, society.round_row
    full = society.group_members[0]
    np.testing.assert_array_equal(state["contribution"][full], 20.0)
    np.testing.assert_array_equal(state["contribution"][society.group_members[1]], 0.0)
    assert row["pg_contribution_share"] == pytest.approx(0.5)
    events = society.round_events()
    assert set(events["actor"].to_list()) <= set(full.tolist())
    assert set(events["target"].to_list()) <= set(society.group_members[1].tolist())
    # every token put in returns 0.4 to each member: total wealth = kept + 0.4 * size * contributions - sanctions
    groups = pl.DataFrame({"g": state["pg_group"], "c": state["contribution"]}).group_by("g").agg(
        pl.col("c").sum().alias("sum"), pl.len().alias("size")
    )
    returns = float((0.4 * groups["sum"] * groups["size"]).sum())
    kept = float((20 - state["contribution"]).sum())
    assert state["wealth"].sum() == pytest.approx(kept + returns - events["cost"].sum() - events["impact"].sum())


def test_no_norm_emerges_on_a_collapsed_commons() -> None:
    """Half greedy on one patch: the commons collapses, then nobody can take anything and norms converge on the
    forced take ratio; that agreement is not a norm emerging."""
    population = {"size": 40, "policies": [{"policy": "sustainable", "fraction": 0.5, "noise": 0.1},
                                           {"policy": "greedy", "fraction": 0.5, "factor": 3}]}
    commons = {"patches": 1, "capacity": 800, "initial_stock": 400, "regrowth": {"kind": "logistic", "rate": 0.5},
               "collapse_threshold": 10, "on_collapse": "continue"}
    society = Society(norm_scenario(rounds=30, population=population, commons=commons))
    rows = play(society)
    collapse = society.collapse_round
    assert collapse is not None and collapse < 10
    after = [row for row in rows if row["round"] >= collapse]
    assert after[-1]["norm_dispersion"] < 0.1  # the norms did converge, on nothing left to take
    assert all(row["norm_emergence_round"] is None for row in after), [row["norm_emergence_round"] for row in after]
