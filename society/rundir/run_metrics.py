"""Run-level metrics: one figure per run, computed from its tables (for `society info`, sweeps and the dashboard).

`govsim_over_usage` is GovSim's over-usage (Piatti et al. 2024): of all positive harvest actions in the run, the
share above the sustainable threshold. Here a harvest action is what a citizen asked for (`requested`) in a
round of the `harvest` phase, and the threshold is its sustainable share that round (`fair_share`); a request
counts as above it by more than 1e-9, as the per-round `over_share_round` counts. It is None when the run has no
harvest phase, no positive request, or a citizens table that misses rounds (`output.citizens_every` other than
1), since then some actions were not recorded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from society.rundir.layout import collect, read_scenario, scan_table, table_columns, table_rounds

OVER_TOLERANCE = 1e-9


def govsim_over_usage(requested: pl.Expr, fair_share: pl.Expr) -> pl.Expr:
    """Share of the positive `requested` values above `fair_share` (null when none is positive)."""
    positive = requested > 0
    over = positive & (requested > fair_share + OVER_TOLERANCE)
    return pl.when(positive.sum() > 0).then(over.sum() / positive.sum()).otherwise(None)


def _has_harvest(scenario: dict[str, Any]) -> bool:
    steps = scenario.get("schedule") or []
    return any((step if isinstance(step, str) else step.get("phase")) == "harvest" for step in steps)


def run_metrics(run: Path) -> dict[str, float | None]:
    """The run-level metrics of the run folder `run` (see the module doc), each None where it cannot be computed."""
    row: dict[str, float | None] = {"govsim_over_usage": None}
    citizens = scan_table(run, "citizens")
    if (
        citizens is None
        or not _has_harvest(read_scenario(run))
        or not {"requested", "fair_share"} <= set(table_columns(run, "citizens"))
        or table_rounds(run, "citizens") != table_rounds(run, "rounds")
    ):
        return row
    share = collect(citizens.select(govsim_over_usage(pl.col("requested"), pl.col("fair_share"))), run, "citizens")
    row["govsim_over_usage"] = share.item()
    return row
