"""Ostrom's CPR game: best-responding citizens find the symmetric Nash the phase derives, wherever the game moves it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from society import Society, load_run, load_scenario
from society.core.runner import run_scenario

SCENARIOS = Path(__file__).parents[2] / "scenarios"
TOLERANCE = 0.05
"""Tokens per citizen: how close the last rounds' mean investment must come to the derived Nash."""


def play(settings: list[str]) -> tuple[Society, list[float]]:
    """The shipped game with `settings`, played to the end: the society and each round's group investment."""
    society = Society(load_scenario(SCENARIOS / "ostrom_cpr.yaml", settings))
    totals = []
    while society.running:
        society.step()
        totals.append(society.round_row["group_investment"])
    return society, totals


def test_the_shipped_game_converges_to_8_tokens_each_and_39_5_percent(tmp_path: Path) -> None:
    run = load_run(run_scenario(load_scenario(SCENARIOS / "ostrom_cpr.yaml"), tmp_path / "nash"))
    first, last = run.rounds["group_investment"][0], run.rounds["group_investment"].tail(5).to_numpy()
    assert abs(first - 64.0) > 8 * TOLERANCE  # the first round is not already the Nash
    np.testing.assert_allclose(last, 64.0, atol=8 * TOLERANCE)
    np.testing.assert_allclose(run.rounds["net_yield"].tail(3).to_numpy(), 128.0, atol=1.0)
    assert round(run.rounds["net_yield_share"][-1] * 100, 1) == 39.5
    optimum = load_scenario(SCENARIOS / "ostrom_cpr.yaml", [
        "population.policies=[{policy: sustainable, fraction: 1}]", "schedule.0.params.heuristic=policy"])
    run = load_run(run_scenario(optimum, tmp_path / "optimum"))
    assert run.rounds["net_yield"][0] == pytest.approx(324.0)


@pytest.mark.parametrize(("a", "b", "outside", "endowment", "nash", "optimum"), [
    (23, 0.25, 5, 25, 8.0, 36.0),  # Ostrom, Gardner & Walker: 18 / (0.25 * 9)
    (30, 0.25, 5, 25, 25 / 2.25, 50.0),  # a richer pool
    (23, 0.5, 5, 25, 4.0, 18.0),  # a steeper one
    (23, 0.25, 11, 25, 12 / 2.25, 24.0),  # a better outside market
    (23, 0.25, 5, 6, 6.0, 36.0),  # an endowment below the interior Nash: everyone invests all of it
])
def test_measured_equilibrium_follows_the_derived_nash_when_the_game_moves(
    a: float, b: float, outside: float, endowment: float, nash: float, optimum: float
) -> None:
    society, totals = play([f"schedule.0.params.a={a}", f"schedule.0.params.b={b}", "rounds=60",
                            f"schedule.0.params.outside_return={outside}", f"schedule.0.params.endowment={endowment}"])
    phase = society.phases[0]
    assert phase.nash == pytest.approx(nash) and phase.optimum == pytest.approx(optimum)
    np.testing.assert_allclose(np.array(totals[-5:]) / 8, nash, atol=TOLERANCE)
    np.testing.assert_allclose(society.state["take"], nash, atol=TOLERANCE)


def test_best_replies_without_enough_inertia_oscillate_instead() -> None:
    """Below inertia 1 - 4/(n + 1) the symmetric deviation grows each round (Cournot's instability with n >= 3)."""
    _, totals = play(["schedule.0.params.inertia=0.3", "rounds=30"])
    assert np.ptp(totals[-4:]) > 50
