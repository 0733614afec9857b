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
_NASH = "ostrom_cpr.yaml"
_INVEST = "{phase: invest, params: {endowment: 25, outside_return: 5, a: 23, b: 0.25}}"
_MEET = "{phase: communicate, params: {mode: meeting, proposal: median, universalization: true, influence: 0.5, persuasion: 0.3}}"
_PLAIN_MEET = "{phase: communicate, params: {mode: meeting, proposal: median, influence: 0.5, persuasion: 0.3}}"
_SANCTION = "{phase: norm_punish, params: {cost: 1, impact: 3, tolerance: 0.1}}"
NASH_TREATMENT = Treatment("best responders (learning from random first investments)", _NASH, ("rounds=20",))
SETTLED_ROUNDS = 5
"""The last rounds over which the best responders' investment is read as their equilibrium."""
CPR_TREATMENTS = [
    Treatment("learners, no communication", _CPR, (f"schedule=[{_INVEST}, social_learning, norm_beliefs]",)),
    Treatment("sanctioning only", _CPR, (f"schedule=[{_INVEST}, {_SANCTION}, social_learning, norm_beliefs]",)),
    Treatment("communication only, no universalization", _CPR,
              (f"schedule=[{_PLAIN_MEET}, {_INVEST}, social_learning, norm_beliefs]",)),
    Treatment("communication only (universalization)", _CPR,
              (f"schedule=[{_MEET}, {_INVEST}, social_learning, norm_beliefs]",)),
    Treatment("communication (universalization) + sanctioning", _CPR),
]


@dataclass(frozen=True)
class CPRGame:
    """What the engine derives for the shipped CPR game: per-citizen Nash, optimal group investment, net yields."""

    citizens: int
    nash: float
    optimum: float
    max_net_yield: float
    nash_net_yield: float

    @property
    def nash_share(self) -> float:
        return self.nash_net_yield / self.max_net_yield


def cpr_game(treatment: Treatment = NASH_TREATMENT) -> CPRGame:
    """The invest phase's own derivation of the game's Nash and optimum (society/phases/invest.py)."""
    society = Society(load_scenario(SCENARIOS / treatment.scenario, list(treatment.overrides)))
    invest = next(phase for phase in society.phases if phase.name == "invest")
    n = society.num_citizens
    return CPRGame(n, invest.nash, invest.optimum, invest.net_yield(invest.optimum), invest.net_yield(n * invest.nash))


def cpr_net_yield_share(rounds: pl.DataFrame, max_net_yield: float) -> float:
    """Mean share of the maximum net yield over the rounds, with the sanctions' fees and fines counted as losses."""
    sanctions = pl.lit(0.0)
    if "norm_punishment_cost" in rounds.columns:
        sanctions = pl.col("norm_punishment_cost") + pl.col("norm_punishment_impact")
    return float(rounds.select((pl.col("net_yield") - sanctions) / max_net_yield).to_series().mean())


def settled_investment(rounds: pl.DataFrame) -> float:
    """Mean group investment over the last SETTLED_ROUNDS rounds, per citizen of the shipped 8."""
    return float(rounds["group_investment"].tail(SETTLED_ROUNDS).mean()) / cpr_game().citizens


def settled_net_yield_share(rounds: pl.DataFrame) -> float:
    """Mean share of the maximum net yield over the last SETTLED_ROUNDS rounds."""
    return float(rounds["net_yield_share"].tail(SETTLED_ROUNDS).mean())


def ostrom_nash(seeds: range) -> tuple[Outcome, Outcome]:
    """Best responders' settled investment per citizen and settled net yield share."""
    return (measure([NASH_TREATMENT], seeds, settled_investment)[0],
            measure([NASH_TREATMENT], seeds, settled_net_yield_share)[0])


def ostrom_cpr(seeds: range) -> list[Outcome]:
    """Net yield (share of the maximum, sanctions counted) of each CPR treatment."""
    maximum = cpr_game(Treatment("as shipped", _CPR)).max_net_yield
    return measure(CPR_TREATMENTS, seeds, lambda rounds: cpr_net_yield_share(rounds, maximum))


# ---- (ii) Fehr & Gächter's public goods game -----------------------------------------------------------------

PG_TREATMENTS = [
    Treatment("without punishment", "norms_public_goods.yaml", ("schedule.0.params.punishment=false",)),
    Treatment("with punishment", "norms_public_goods.yaml"),
]
PG_SENSITIVITY = [
    Treatment("without punishment, conditional cooperators match 0.6", "norms_public_goods.yaml",
              ("schedule.0.params.punishment=false", "schedule.0.params.match=0.6")),
    Treatment("with punishment, nobody learns to expect it (learning 0)", "norms_public_goods.yaml",
              ("schedule.0.params.learning=0",)),
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
