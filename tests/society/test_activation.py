"""Activation: a sampled share of LLM citizens is asked each round; the rest repeat, recorded as inactive."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from society import ScenarioError, Society, load_scenario
from society.rundir.checkpoint import read_checkpoint, write_checkpoint
from society.rundir.layout import CHECKPOINT
from tests.shipped_tables import SCENARIOS, SchemaAnswers


def village(
    probability: float, rounds: int = 8, by_role: dict | None = None, cohorts: bool = False, inactive: str = ""
) -> Society:
    overrides = ["population.size=120", f"rounds={rounds}", "commons.on_collapse=continue",
                 f"llm.activation.probability={probability}", f"llm.cohorts.enabled={str(cohorts).lower()}"]
    if by_role:
        overrides.append(f"llm.activation.by_role={by_role}")
    if inactive:
        overrides.append(f"llm.activation.inactive={inactive}")
    society = Society(load_scenario(SCENARIOS / "village_llm.yaml", overrides))
    society.llm.connection = SchemaAnswers()
    return society


def play(society: Society) -> tuple[list[dict], pl.DataFrame, list[np.ndarray]]:
    rows, calls, inactive = [], [], []
    while society.running and society.round < society.scenario.rounds:
        society.step()
        rows.append(society.round_row)
        calls.append(society.llm.round_calls())
        inactive.append(society.state["inactive"].copy())
    return rows, pl.concat(calls), inactive


def test_the_asked_share_follows_the_probability_and_inactive_citizens_are_never_fallbacks() -> None:
    society = village(0.3)
    rows, calls, inactive = play(society)
    members = society.llm.members
    shares = [float(1 - mask[members].mean()) for mask in inactive]
    assert abs(np.mean(shares) - 0.3) < 0.06  # 8 rounds x 120 citizens
    harvest = calls.filter(pl.col("phase") == "harvest")
    first = harvest.filter(pl.col("round") == 1)
    assert first.height == members.size  # nobody has a decision to repeat yet: everyone is asked
    answered_once: set[int] = set()
    for number, mask in enumerate(inactive, start=1):
        this_round = harvest.filter(pl.col("round") == number)
        asked = set(this_round["citizen"].to_list())
        assert not asked & set(np.flatnonzero(mask).tolist()) & answered_once  # one with an answer repeats it
        answered_once |= set(this_round.filter(~pl.col("fallback"))["citizen"].to_list())
    for row, mask in zip(rows, inactive):
        assert row["llm_inactive"] == int(mask.sum())
        assert row["llm_fallbacks"] == int(calls.filter((pl.col("round") == row["round"]) & pl.col("fallback")).height)
    assert sum(row["llm_repeated"] for row in rows) > 0


def test_an_inactive_citizen_repeats_its_last_answer() -> None:
    society = village(0.5, rounds=2)
    society.step()
    first = society.llm.round_calls().filter(~pl.col("fallback") & (pl.col("phase") == "harvest"))
    answered = dict(zip(first["citizen"].to_list(), first["answer"].to_list()))
    society.step()
    repeated = [c for c in np.flatnonzero(society.state["inactive"]) if int(c) in answered]
    assert repeated
    for citizen in repeated:
        amount = float(json.loads(answered[int(citizen)])["amount"])
        assert society.state["requested"][citizen] <= amount + 1e-9  # the amount again, within what it may take
    assert any(society.state["requested"][c] == pytest.approx(float(json.loads(answered[int(c)])["amount"]))
               for c in repeated)


def test_a_role_always_asked_is_asked_every_round() -> None:
    society = village(0.2, rounds=4, by_role={"elder": 1.0})
    _, _, inactive = play(society)
    roles = np.array(society.llm.personas["role"])
    elders = society.llm.members[roles == "elder"]
    assert elders.size and not any(mask[elders].any() for mask in inactive)


def test_without_activation_nothing_is_drawn_or_recorded() -> None:
    society = village(1.0, rounds=2)
    society.step()
    assert society.deciding.activation is None and "inactive" not in society.state
    assert "llm_inactive" not in society.round_row and "activation" not in society.rng_tree.state()


@pytest.mark.parametrize("inactive", ["", "{policy: greedy, factor: 2, noise: 0.2}"])
def test_a_resumed_run_with_activation_and_cohorts_equals_an_uninterrupted_one(tmp_path: Path, inactive: str) -> None:
    """Through the checkpoint files a run folder keeps (JSON and arrays), with activation and cohorts both on, and
    inactive citizens repeating or following a noisy heuristic policy."""
    whole = village(0.4, rounds=6, cohorts=True, inactive=inactive)
    rows, calls, _ = play(whole)
    cut = village(0.4, rounds=6, cohorts=True, inactive=inactive)
    for _ in range(3):
        cut.step()
    write_checkpoint(tmp_path, cut.checkpoint(), lambda path, data: path.write_bytes(data))
    resumed = village(0.4, rounds=6, cohorts=True, inactive=inactive)
    resumed.restore(read_checkpoint(tmp_path / CHECKPOINT, resumed.checkpoint()))
    later_rows, later_calls, _ = play(resumed)
    assert later_rows == rows[3:]
    assert later_calls.equals(calls.filter(pl.col("round") > 3))
    assert all(row.get("llm_heuristic", 0) > 0 for row in rows) == bool(inactive)


def neighbour_ratios(society: Society) -> np.ndarray:
    """Each citizen's neighbours' mean take ratio (1 without neighbours): what a conditional cooperator matches."""
    graph, ratio = society.graph, society.state["ratio"]
    return np.array([ratio[graph.indices[graph.indptr[c]:graph.indptr[c + 1]]].mean()
                     if graph.indptr[c + 1] > graph.indptr[c] else 1.0 for c in range(society.num_citizens)])


@pytest.mark.parametrize(("inactive", "multiple"), [
    ("{policy: greedy, factor: 2.5}", lambda society: 2.5),
    ("conditional", neighbour_ratios),
])
def test_inactive_citizens_following_a_policy_take_what_it_takes_and_are_never_fallbacks(
    inactive: str, multiple: Any
) -> None:
    society = village(0.3, rounds=5, inactive=inactive)
    commons = society.commons
    followed_at_all = 0
    for _ in range(5):
        wanted = multiple(society)  # read before the round: the ratios a conditional cooperator sees
        stock = commons.stock[commons.patch_of_citizen].copy()  # harvest comes first: what each may take
        society.step()
        state, row = society.state, society.round_row
        followers = np.flatnonzero(state["inactive"] & (stock > 0))
        expected = np.clip(np.broadcast_to(wanted, stock.shape)[followers] * state["fair_share"][followers],
                           0.0, stock[followers])
        np.testing.assert_allclose(state["requested"][followers], expected, rtol=1e-12)
        calls = society.llm.round_calls().filter(pl.col("phase") == "harvest")
        assert not set(calls["citizen"].to_list()) & set(followers.tolist())  # not asked, so never a fallback
        assert row["llm_heuristic"] == followers.size
        assert row["llm_fallbacks"] == calls["fallback"].sum() + society.llm.round_calls().filter(
            (pl.col("phase") != "harvest") & pl.col("fallback")).height
        followed_at_all += followers.size
    assert followed_at_all > 0


def test_a_policy_inactive_citizens_cannot_follow_is_refused_naming_the_field() -> None:
    for name in ("imitator", "llm", "gready"):
        with pytest.raises(ScenarioError, match=rf"llm\.activation\.inactive: '{name}' is not one of"):
            load_scenario(SCENARIOS / "village_llm.yaml", [f"llm.activation.inactive={name}"])
    with pytest.raises(ScenarioError, match=r"llm\.activation\.inactive\.amount: required"):
        load_scenario(SCENARIOS / "village_llm.yaml", ["llm.activation.inactive=fixed"])


def test_a_followed_policy_round_trips_through_the_saved_scenario() -> None:
    scenario = load_scenario(SCENARIOS / "village_llm.yaml", ["llm.activation.inactive={policy: fixed, amount: 4}"])
    saved = scenario.model_dump(mode="json")
    assert saved["llm"]["activation"]["inactive"] == {"noise": 0.0, "policy": "fixed", "amount": 4.0}
    assert type(scenario).model_validate(saved) == scenario


def test_an_unknown_role_is_refused() -> None:
    with pytest.raises(ScenarioError, match="llm.activation.by_role"):
        load_scenario(SCENARIOS / "village_llm.yaml", ["llm.activation.by_role={priest: 0.5}"])
