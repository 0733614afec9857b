"""A removal in every shipped world with phases beyond harvest: removed citizens leave every phase and metric."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from society import Society, load_scenario
from society.core.metrics import gini
from society.phases.survey import round_answers

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
WORLDS = {
    "institutions_none": ["rounds=10"], "institutions_charter": ["rounds=10"], "institutions_mediated": ["rounds=10"],
    "norms_govsim_meeting": [], "norms_ostrom_cpr": ["rounds=10"], "norms_public_goods": [],
    "norms_rich_altruistic": ["rounds=10"], "norms_scarce_selfish": ["rounds=10"], "ostrom_cpr": [],
}
AT = 5


def leaving(name: str, overrides: list[str]) -> list[int]:
    """Citizens 0 and 1, and (in a world with elections) the leader in office and two politicians before round AT."""
    society = Society(load_scenario(SCENARIOS / f"{name}.yaml", overrides))
    while society.round < AT - 1:
        society.step()
    chosen = {0, 1}
    if "politician" in society.state:
        chosen |= set(np.flatnonzero(society.state["politician"] >= 0)[:2].tolist())
        leader = society.round_row["leader"]
        chosen |= set() if leader is None else {leader}
    return sorted(chosen)


@pytest.mark.parametrize("name", sorted(WORLDS))
def test_removed_citizens_leave_every_phase_and_metric(name: str) -> None:
    removed = leaving(name, WORLDS[name])
    scenario = load_scenario(SCENARIOS / f"{name}.yaml",
                             [*WORLDS[name], f"interventions=[{{when: {{round: {AT}}}, remove: {{citizens: {removed}}}}}]"])
    society = Society(scenario)
    played_after = 0
    while society.running:
        society.step()
        if society.round < AT:
            continue
        played_after += 1
        events = society.round_events().filter(pl.col("kind") != "intervention")
        assert not set(events["actor"].to_list() + events["target"].to_list()) & set(removed), events
        assert not set(society.round_citizens()["citizen"].to_list()) & set(removed)
        survey = round_answers(society)
        assert survey is None or not set(survey["citizen"].to_list()) & set(removed)
        present = np.ones(society.num_citizens, dtype=bool)
        present[removed] = False
        state, row = society.state, society.round_row
        assert row["wealth_mean"] == pytest.approx(state["wealth"][present].mean(), rel=1e-12)
        assert row["wealth_gini"] == pytest.approx(gini(state["wealth"][present]), abs=1e-12)
        assert row["equality"] == pytest.approx(1.0 - gini(state["total_take"][present]), abs=1e-12)
        if "leader" in row:
            assert row["leader"] not in removed
        if "monitored_share" in row:
            assert row["monitored_share"] == pytest.approx(state["detected"][present].mean())
        if "community_norm" in row:
            assert row["community_norm"] == pytest.approx(np.median(state["personal_norm"][present]))
            [beliefs] = [phase for phase in society.phases if phase.name == "norm_beliefs"]
            assert row["cooperation_index"] == pytest.approx(
                np.mean(state["ratio"][present] <= 1.0 + beliefs.params.tolerance + 1e-9))
        if "pg_contribution_mean" in row:
            assert row["pg_contribution_mean"] == pytest.approx(state["contribution"][present].mean())
        if "group_investment" in row:
            assert row["over_share_round"] == pytest.approx(
                np.mean(state["take"][present] > state["fair_share"][present] + 1e-9))
    assert played_after == scenario.rounds - AT + 1


def test_a_removed_leader_leaves_the_office_empty_until_the_next_election() -> None:
    name = "institutions_none"
    society = Society(load_scenario(SCENARIOS / f"{name}.yaml", ["rounds=10"]))
    while society.round < AT - 1:
        society.step()
    leader = society.round_row["leader"]
    assert leader is not None
    society = Society(load_scenario(SCENARIOS / f"{name}.yaml", [
        "rounds=10", f"interventions=[{{when: {{round: {AT}}}, remove: {{citizens: [{leader}]}}}}]"]))
    while society.round < AT:
        society.step()
    assert society.round_row["leader"] != leader
    assert society.round_row["leader"] is None or society.round_row["election"]


def test_wealth_mean_after_a_removal_is_the_mean_over_those_still_there() -> None:
    society = Society(load_scenario(SCENARIOS / "govsim_fishery.yaml", [
        "population.size=10", "rounds=3", "interventions=[{when: {round: 2}, remove: {citizens: [2, 5, 7]}}]"]))
    society.step()
    society.state["wealth"][:] = np.arange(10.0) * 10  # known wealth: the removed hold 20, 50 and 70
    society.step()
    kept = [0, 1, 3, 4, 6, 8, 9]
    expected = sum(society.state["wealth"][c] for c in kept) / 7
    assert society.round_row["wealth_mean"] == pytest.approx(expected)
    assert society.round_row["wealth_mean"] != pytest.approx(society.state["wealth"].mean())
