"""The Society model: determinism, accounting, punishment, collapse and resume."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from society import Society, load_run, load_scenario
from society.core.runner import RunInterrupted, resume_run, run_scenario
from tests.society.conftest import make_scenario

SCENARIOS = Path(__file__).parents[2] / "scenarios"


def tables(path: Path) -> dict[str, pl.DataFrame]:
    run = load_run(path)
    return {"rounds": run.rounds, "citizens": run.citizens, "events": run.events}


def test_same_seed_same_tables_other_seed_different(tmp_path: Path, small_scenario) -> None:
    first = tables(run_scenario(small_scenario, tmp_path / "a"))
    second = tables(run_scenario(small_scenario, tmp_path / "b"))
    for name in first:
        assert_frame_equal(first[name], second[name])
    assert first["events"].height > 0
    other = tables(run_scenario(small_scenario.model_copy(update={"seed": 12}), tmp_path / "c"))
    assert not first["citizens"].equals(other["citizens"])


def test_harvest_accounting_every_round(small_scenario) -> None:
    society = Society(small_scenario)
    harvest, regrow, punish = society.phases
    state, commons = society.state, society.commons
    for _ in range(small_scenario.rounds):
        society.steps += 1
        before = commons.stock.copy()
        harvest.run()
        taken = np.bincount(commons.patch_of_citizen, weights=state["take"], minlength=commons.num_patches)
        np.testing.assert_allclose(commons.stock, before - taken, atol=1e-9)
        assert np.all(taken <= before + 1e-9)
        assert np.all(state["take"] <= state["requested"] + 1e-12)
        assert np.all(state["take"] >= 0)
        regrow.run()
        assert np.all(commons.stock <= commons.capacity + 1e-9)
        assert np.all(commons.stock >= 0)
        punish.run()


def test_punishment_costs_and_impacts_add_up(small_scenario) -> None:
    society = Society(small_scenario)
    params = society.phases[2].params
    acts = 0
    for _ in range(small_scenario.rounds):
        wealth_before = society.state["wealth"].copy()
        society.step()
        events = society.round_events()
        state = society.state
        acts += events.height
        assert state["punish_paid"].sum() == pytest.approx(events.height * params.cost)
        assert state["punish_received"].sum() == pytest.approx(events.height * params.impact)
        paid = np.bincount(events["actor"].to_numpy(), minlength=society.num_citizens) * params.cost
        np.testing.assert_allclose(state["punish_paid"], paid)
        np.testing.assert_allclose(
            state["wealth"] - wealth_before, state["take"] - state["punish_paid"] - state["punish_received"]
        )
        violators = state["take"] > params.threshold * state["fair_share"] + 1e-9
        assert violators[events["target"].to_numpy()].all()
        assert society.round_row["punishments"] == events.height
    assert acts > 0


def test_collapse_stops_the_run_or_is_flagged(tmp_path: Path) -> None:
    greedy = {"size": 5, "policies": [{"policy": "greedy", "fraction": 1.0, "factor": 3}]}
    commons = {"capacity": 100, "regrowth": {"kind": "doubling"}, "collapse_threshold": 5, "allocation": "random_units"}
    stop = make_scenario(population=greedy, graph={"kind": "complete"}, rounds=12, commons=commons,
                         schedule=["harvest", "regrow"])
    run = load_run(run_scenario(stop, tmp_path / "stop"))
    assert run.manifest["ended_by"] == "collapse"
    assert run.rounds.height == run.manifest["collapse_round"] < 12
    assert run.rounds["collapsed"][-1]
    assert run.rounds["survival"][-1] == run.manifest["collapse_round"]
    flagged = stop.model_copy(update={"commons": stop.commons.model_copy(update={"on_collapse": "continue"})})
    run = load_run(run_scenario(flagged, tmp_path / "continue"))
    assert run.rounds.height == 12
    assert run.manifest["ended_by"] == "rounds"
    assert run.rounds["collapsed"].any() and run.rounds["stock_total"][-1] == 0


def test_govsim_fishery_sustainable_survives_greedy_collapses(tmp_path: Path) -> None:
    sustainable = load_scenario(SCENARIOS / "govsim_fishery.yaml", ["population.policies=[{policy: sustainable, fraction: 1}]"])
    run = load_run(run_scenario(sustainable, tmp_path / "s"))
    assert run.rounds.height == 12 and not run.rounds["collapsed"].any()
    assert run.rounds["stock_total"].to_list() == [100.0] * 12
    assert run.rounds["efficiency"][-1] == pytest.approx(1.0)
    assert run.rounds["over_share_round"].sum() == 0
    greedy = load_scenario(
        SCENARIOS / "govsim_fishery.yaml", ["population.policies=[{policy: greedy, fraction: 1, factor: 3}]"]
    )
    run = load_run(run_scenario(greedy, tmp_path / "g"))
    assert run.manifest["collapse_round"] == 1
    assert run.rounds["total_harvest"][0] == 100
    assert run.rounds["efficiency"][0] == pytest.approx(1 - (600 - 100) / 600)


def test_interrupted_then_resumed_equals_uninterrupted(tmp_path: Path, monkeypatch, small_scenario) -> None:
    scenario = small_scenario.model_copy(
        update={"output": small_scenario.output.model_copy(update={"checkpoint_every": 3})}
    )
    reference = tables(run_scenario(scenario, tmp_path / "whole"))
    original_step = Society.step

    def crash_in_round_6(self: Society) -> None:
        original_step(self)
        if self.round == 6:
            raise KeyboardInterrupt

    monkeypatch.setattr(Society, "step", crash_in_round_6)
    with pytest.raises(RunInterrupted):
        run_scenario(scenario, tmp_path / "broken")
    monkeypatch.undo()
    broken = load_run(tmp_path / "broken")
    assert broken.manifest["status"] == "interrupted"
    assert broken.rounds.height == 5  # rounds 4 and 5 were written after the checkpoint of round 3
    resume_run(tmp_path / "broken")
    resumed = tables(tmp_path / "broken")
    for name in reference:
        assert_frame_equal(reference[name], resumed[name])
    assert load_run(tmp_path / "broken").manifest["status"] == "completed"


@pytest.mark.parametrize("signals", [1, 2])
def test_ctrl_c_mid_round_finishes_that_round_and_checkpoints_it_twice_stops_at_once(
    signals: int, tmp_path: Path, monkeypatch, small_scenario
) -> None:
    """Without LLM citizens a first Ctrl-C lets the round end (checkpointed, though 4 is no multiple of the default
    10); a second stops mid-round, and the resume starts over (no checkpoint yet). Both resume identically."""
    reference = tables(run_scenario(small_scenario, tmp_path / "whole"))
    original_step = Society.step

    def ctrl_c_in_round_4(self: Society) -> None:
        if self.round == 4:
            for _ in range(signals):
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)  # the handler runs before the round goes on
        original_step(self)

    monkeypatch.setattr(Society, "step", ctrl_c_in_round_4)
    with pytest.raises(RunInterrupted):
        run_scenario(small_scenario, tmp_path / "cut")
    monkeypatch.undo()
    cut = load_run(tmp_path / "cut")
    played = 4 if signals == 1 else 3
    assert cut.manifest["status"] == "interrupted" and cut.rounds.height == played
    assert cut.manifest["rounds_completed"] == (4 if signals == 1 else 0)
    checkpoint = tmp_path / "cut" / "checkpoint.json"
    if signals == 1:
        assert json.loads(checkpoint.read_text())["round"] == 4
    else:
        assert not checkpoint.exists()
    resume_run(tmp_path / "cut")
    resumed = tables(tmp_path / "cut")
    for name in reference:
        assert_frame_equal(reference[name], resumed[name])



def test_citizens_are_mesa_agents_viewing_the_arrays(small_scenario) -> None:
    society = Society(small_scenario)
    society.step()
    citizens = society.citizens
    assert len(citizens) == small_scenario.population.size
    citizen = citizens.select(lambda c: c.index == 7)[0]
    assert citizen.wealth == society.state["wealth"][7]
    citizen.wealth = 123.0
    assert society.state["wealth"][7] == 123.0
    assert citizen.policy in {"sustainable", "conditional", "imitator", "greedy", "fixed"}
    assert set(citizen.neighbors) == set(society.graph.neighbors(7).tolist())


def test_policy_mix_has_exact_counts(small_scenario) -> None:
    society = Society(small_scenario)
    counts = np.bincount(society.state["group"], minlength=5)
    assert counts.tolist() == [18, 12, 12, 12, 6]
