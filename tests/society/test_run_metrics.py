"""Run-level metrics from a run's tables: GovSim's over-usage, in `society info` and a sweep's summary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from society import load_run, load_scenario
from society.cli import main
from society.core.runner import run_scenario
from society.rundir.run_metrics import govsim_over_usage, run_metrics
from society.sweeps.summary import final_metrics

SCENARIOS = Path(__file__).parents[2] / "scenarios"


def test_govsim_over_usage_counts_positive_requests_only() -> None:
    requested = [0.0, 5.0, 12.0, 10.0, 0.0, 10.0 + 1e-12]
    frame = pl.DataFrame({"requested": requested, "fair_share": [10.0] * 6})
    share = frame.select(govsim_over_usage(pl.col("requested"), pl.col("fair_share"))).item()
    assert share == pytest.approx(1 / 4)  # 12 of the positive 5, 12, 10, 10+; zeros are no action
    nobody = frame.with_columns(requested=pl.lit(0.0))
    assert nobody.select(govsim_over_usage(pl.col("requested"), pl.col("fair_share"))).item() is None


def greedy_fishery(tmp_path: Path, *overrides: str) -> Path:
    settings = ["rounds=6", "population.policies=[{policy: greedy, fraction: 0.4, factor: 2}, "
                "{policy: sustainable, fraction: 0.6}]", *overrides]
    return run_scenario(load_scenario(SCENARIOS / "govsim_fishery.yaml", settings), tmp_path / "run")


def test_run_level_share_differs_from_the_per_round_share(tmp_path: Path) -> None:
    run = load_run(greedy_fishery(tmp_path))
    citizens = run.citizens
    positive = citizens.filter(pl.col("requested") > 0)
    expected = np.mean(positive["requested"].to_numpy() > positive["fair_share"].to_numpy() + 1e-9)
    assert 0 < expected < 1
    assert run_metrics(run.path)["govsim_over_usage"] == pytest.approx(expected)
    assert "over_usage" not in run.rounds.columns and "over_share_round" in run.rounds.columns
    info = CliRunner().invoke(main, ["info", str(run.path)])
    assert info.exit_code == 0, info.output
    assert f"govsim_over_usage    {expected:.4g}" in info.output
    assert final_metrics(run.path)["govsim_over_usage"].item() == pytest.approx(expected)


def test_no_figure_without_every_round_of_citizens_or_without_harvests(tmp_path: Path) -> None:
    sparse = greedy_fishery(tmp_path, "output.citizens_every=2")
    assert run_metrics(sparse) == {"govsim_over_usage": None}
    assert "govsim_over_usage    n/a" in CliRunner().invoke(main, ["info", str(sparse)]).output
    ostrom = run_scenario(load_scenario(SCENARIOS / "ostrom_cpr.yaml", ["rounds=2"]), tmp_path / "ostrom")
    assert run_metrics(ostrom) == {"govsim_over_usage": None}
