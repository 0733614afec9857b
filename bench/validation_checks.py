"""Scientific checks: heuristic societies replaying published experiments, compared with the published figures.

Each check plays shipped scenarios (with `--set`-style overrides for the other treatments) over several seeds,
in memory, and reports what the play gave beside what the paper reports. `bench/validation.py` runs them with
many seeds and writes `docs/validation.md`; the tests run them with a few seeds and check their direction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from society.core.model import Society
from society.scenario.files import load_scenario

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
CPR_MAX_NET_YIELD = 324.0  # 23X - 0.25X^2 - 5X at the optimum X = 36 (cents per round)
OSTROM_NASH_SHARE = 128 / CPR_MAX_NET_YIELD


@dataclass(frozen=True)
class Treatment:
    """One arm of a check: a scenario file and the overrides that make the treatment."""

    name: str
    scenario: str
    overrides: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outcome:
    """One treatment's result over seeds: the mean and the per-seed values of the measured quantity."""

    treatment: str
    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))


def play(treatment: Treatment, seed: int) -> pl.DataFrame:
    """The `rounds` table of one seeded run of a treatment, played in memory (list-valued columns left out)."""
    settings = [*treatment.overrides, f"seed={seed}"]
    society = Society(load_scenario(SCENARIOS / treatment.scenario, settings))
    rows = []
    while society.running:
        society.step()
        rows.append({k: v for k, v in society.round_row.items() if not isinstance(v, list)})
    return pl.DataFrame(rows)


def measure(treatments: list[Treatment], seeds: range, quantity: Callable[[pl.DataFrame], float]) -> list[Outcome]:
    """`quantity(rounds)` for every treatment and seed."""
    return [Outcome(t.name, tuple(float(quantity(play(t, seed))) for seed in seeds)) for t in treatments]


# ---- (i) Ostrom's lab CPR game -------------------------------------------------------------------------------

_CPR = "norms_ostrom_cpr.yaml"
_INVEST = "{phase: invest, params: {endowment: 25, outside_return: 5, a: 23, b: 0.25}}"
_MEET = "{phase: communicate, params: {mode: meeting, proposal: median, universalization: true, influence: 0.5, persuasion: 0.3}}"
_SANCTION = "{phase: norm_punish, params: {cost: 1, impact: 3, tolerance: 0.1}}"
CPR_TREATMENTS = [
    Treatment("Nash play (8 tokens each)", _CPR, (
        "population.policies=[{policy: fixed, fraction: 1.0, amount: 8}]", f"schedule=[{_INVEST}, norm_beliefs]")),
    Treatment("learners, no communication", _CPR, (f"schedule=[{_INVEST}, social_learning, norm_beliefs]",)),
    Treatment("sanctioning only", _CPR, (f"schedule=[{_INVEST}, {_SANCTION}, social_learning, norm_beliefs]",)),
    Treatment("communication only", _CPR, (f"schedule=[{_MEET}, {_INVEST}, social_learning, norm_beliefs]",)),
    Treatment("communication + sanctioning", _CPR),
]


def cpr_net_yield_share(rounds: pl.DataFrame) -> float:
    """Mean share of the maximum net yield over the rounds, with the sanctions' fees and fines counted as losses."""
    sanctions = pl.lit(0.0)
    if "norm_punishment_cost" in rounds.columns:
        sanctions = pl.col("norm_punishment_cost") + pl.col("norm_punishment_impact")
    net = rounds.select((pl.col("net_yield") - sanctions) / CPR_MAX_NET_YIELD)
    return float(net.to_series().mean())


def ostrom_cpr(seeds: range) -> list[Outcome]:
    """Net yield (share of the maximum, sanctions counted) of each CPR treatment."""
    return measure(CPR_TREATMENTS, seeds, cpr_net_yield_share)


# ---- (ii) Fehr & Gächter's public goods game -----------------------------------------------------------------

PG_TREATMENTS = [
    Treatment("without punishment", "norms_public_goods.yaml", ("schedule.0.params.punishment=false",)),
    Treatment("with punishment", "norms_public_goods.yaml"),
]


def contribution_path(treatment: Treatment, seeds: range) -> np.ndarray:
    """Mean contribution (share of the endowment) per round, averaged over seeds."""
    return np.mean([play(treatment, seed)["pg_contribution_share"].to_numpy() for seed in seeds], axis=0)


def contribution_change(rounds: pl.DataFrame) -> float:
    """Last round's mean contribution minus the first round's (share of the endowment)."""
    share = rounds["pg_contribution_share"]
    return float(share[-1] - share[0])


def public_goods(seeds: range) -> list[Outcome]:
    """Change in contributions from the first to the last round, without and with punishment."""
    return measure(PG_TREATMENTS, seeds, contribution_change)


# ---- (iii) GovSim's fishery ----------------------------------------------------------------------------------

GOVSIM_TREATMENTS = [
    Treatment("greedy (2x the sustainable share)", "govsim_fishery.yaml",
              ("population.policies=[{policy: greedy, fraction: 1.0, factor: 2}]",)),
    Treatment("sustainable", "govsim_fishery.yaml",
              ("population.policies=[{policy: sustainable, fraction: 1.0}]",)),
    Treatment("greedy-leaning learners, no meeting, no sanctions", "norms_govsim_meeting.yaml",
              ("schedule=[harvest, regrow, social_learning, norm_beliefs]",)),
    Treatment("greedy-leaning learners, universalization meeting + sanctions", "norms_govsim_meeting.yaml"),
]


def survival_months(rounds: pl.DataFrame) -> float:
    """Months the fishery lasted (GovSim's survival time, at most the scenario's 12)."""
    return float(rounds["survival"][-1])


def govsim(seeds: range) -> list[Outcome]:
    """Survival time of each fishery population."""
    return measure(GOVSIM_TREATMENTS, seeds, survival_months)
