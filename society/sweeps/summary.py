"""summary.parquet: one row per cell and seed with its axis values, status, validity, final-round and run-level
metrics; a fork grid's rows also say each fork's `divergence_round` from its parent: the first round in which any of
its tables differs (null: none ever does).

`valid` is the run's verdict on its fallbacks (the manifest's `validity`: false when fallbacks, not the model,
made more than `llm.invalid_threshold` of its LLM decisions), `fallback_share` the share they made; both are null
for a run without LLM citizens or one not completed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from society.core.fork import divergence_round
from society.rundir.layout import cell_run_dir, read_manifest, read_parquet, table_files
from society.rundir.run_metrics import run_metrics
from society.sweeps.cell import run_status
from society.sweeps.grid import SweepSpec


def final_metrics(run_dir: Path) -> pl.DataFrame:
    """The last recorded round of a run (its `rounds` table has one Parquet file per round) with the run-level
    metrics beside it."""
    files = table_files(run_dir, "rounds")
    if not files:
        return pl.DataFrame()
    whole_run = run_metrics(run_dir)
    return pl.concat([read_parquet(files[-1]), pl.DataFrame([whole_run], schema=dict.fromkeys(whole_run, pl.Float64))],
                     how="horizontal")


def summary_frame(folder: Path, spec: SweepSpec) -> pl.DataFrame:
    """Every run of the sweep in grid order: cell, seed, the axes, status, error, run_dir, final metrics."""
    ids: dict[str, list[Any]] = {"cell": [], "seed": [], "status": [], "error": [], "run_dir": [], "valid": [],
                                 "fallback_share": [], "divergence_round": []}
    axes: dict[str, list[Any]] = {path: [] for path in spec.axes}
    metrics: list[pl.DataFrame] = []
    for cell in spec.cells():
        for seed in spec.seeds:
            relative = cell_run_dir(cell.index, seed)
            status, error = run_status(folder / relative)
            validity = read_manifest(folder / relative).get("validity") if status == "completed" else None
            validity = validity if isinstance(validity, dict) else {}
            for key, value in (("cell", cell.index), ("seed", seed), ("status", status), ("error", error),
                               ("run_dir", str(relative)), ("valid", validity.get("valid")),
                               ("fallback_share", validity.get("fallback_share")),
                               ("divergence_round", _divergence(folder / relative, spec, status))):
                ids[key].append(value)
            for path, value in cell.values.items():
                axes[path].append(value)
            metrics.append(final_metrics(folder / relative) if status == "completed" else pl.DataFrame())
    frame = pl.DataFrame(
        [
            pl.Series("cell", ids["cell"], pl.Int64),
            pl.Series("seed", ids["seed"], pl.Int64),
            *(_axis_column(path, values) for path, values in axes.items()),
            pl.Series("status", ids["status"], pl.Utf8),
            pl.Series("error", ids["error"], pl.Utf8),
            pl.Series("run_dir", ids["run_dir"], pl.Utf8),
            pl.Series("valid", ids["valid"], pl.Boolean),
            pl.Series("fallback_share", ids["fallback_share"], pl.Float64),
            *([pl.Series("divergence_round", ids["divergence_round"], pl.Int64)] if spec.fork is not None else []),
        ]
    )
    rows = [m.head(1).with_columns(_row=pl.lit(i, pl.Int64)) if m.height else pl.DataFrame({"_row": [i]})
            for i, m in enumerate(metrics)]
    finals = pl.concat(rows, how="diagonal_relaxed").sort("_row").drop("_row")
    return pl.concat([frame, finals], how="horizontal")


def _divergence(run_dir: Path, spec: SweepSpec, status: str) -> int | None:
    """A completed fork's first round that differs from its parent's (null when none does, or not a fork)."""
    if spec.fork is None or status != "completed":
        return None
    return divergence_round(run_dir, Path(spec.fork.run))


def _axis_column(path: str, values: list[Any]) -> pl.Series:
    """An axis as a typed column (ints and floats together as floats), or as JSON text when its values share
    no type (e.g. 1 and "a")."""
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return pl.Series(path, values, pl.Int64 if all(isinstance(v, int) for v in values) else pl.Float64)
    try:
        return pl.Series(path, values, strict=True)
    except (TypeError, pl.exceptions.PolarsError):
        return pl.Series(path, [json.dumps(value) for value in values], pl.Utf8)
