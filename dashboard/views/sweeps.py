"""Sweeps: a metric over two grid axes as a heatmap, seeds averaged, with 95% intervals; every cell's runs opened
from the page. The sweep, metric and axes are kept in the URL."""

import json

import polars as pl
import streamlit as st

from dashboard import charts, queries
from dashboard.ui import entries, kept_choice, plain_errors, run_link, runs_dir
from society.rundir.layout import SUMMARY, SWEEP

st.title("Sweeps")
sweeps = [entry for entry in entries() if entry.kind == "sweep"]
if not sweeps:
    st.info(f"`{runs_dir()}` holds no sweep (a folder with {SWEEP}). Start one with `society sweep GRID.yaml`.")
    st.stop()
labels = {entry.name: entry.label for entry in sweeps}
name = kept_choice(st, "Sweep", list(labels), "sweep", format_func=labels.get)
entry = next(e for e in sweeps if e.name == name)
if entry.problem is not None:
    st.error(entry.problem)
    st.stop()
with st.expander("Grid"):
    st.code(json.dumps(entry.info, indent=2, default=str), language="json")
with plain_errors():
    summary = queries.sweep_summary(entry.path)
if summary.is_empty():
    st.info(f"No cell of this sweep has finished yet ({SUMMARY} is missing or empty).")
    st.stop()
if "status" in summary.columns:
    failed = summary.filter(pl.col("status") != "completed")
    if failed.height:
        st.warning(f"{failed.height} of {summary.height} cell runs did not complete; they are left out.")
        st.dataframe(failed.select([c for c in ("cell", "seed", "status", "error") if c in failed.columns]),
                     hide_index=True)
    summary = summary.filter(pl.col("status") == "completed")
invalid = summary.filter(pl.col("valid").not_()) if "valid" in summary.columns else summary.clear()
if invalid.height:
    st.error(f"{invalid.height} of {summary.height} completed runs are invalid: fallbacks, not the model, made too "
             "many of their LLM decisions (`valid` in the summary).")
    if st.checkbox("Leave invalid runs out", value=True, key="leave_invalid_out"):
        summary = summary.filter(pl.col("valid").fill_null(True))
axes = queries.sweep_axes(entry.info, summary)
if not axes:
    st.error(f"{entry.path / SUMMARY}: no axis column (a dotted path such as commons.capacity) found.")
    st.stop()
metrics = queries.sweep_metrics(summary, axes)
if not metrics:
    st.info("The summary holds no numeric metric yet.")
    st.stop()
rates = {name for name in metrics if summary.schema[name] == pl.Boolean}
left, middle, right = st.columns(3)
metric = kept_choice(left, "Metric", metrics, "metric", "efficiency",
                     format_func=lambda name: f"{name} (share of runs)" if name in rates else name)
x = kept_choice(middle, "Across", axes, "across")
rest = [axis for axis in axes if axis != x]
y = kept_choice(right, "Down", rest, "down") if rest else None
for axis in [axis for axis in rest if axis != y]:
    values = summary[axis].unique().sort().to_list()
    value = st.select_slider(f"Fix {axis}", values)
    summary = summary.filter(pl.col(axis) == value)
shown = [x] + ([y] if y else [])
grid = queries.interval_grid(summary, metric, shown)
if grid.is_empty():
    st.info(f"No completed cell has a value for {metric}.")
    st.stop()
cells = queries.cell_runs(summary, shown)
if not cells.is_empty():
    grid = grid.join(cells, on=shown, how="left").with_columns(
        link=pl.col("runs").list.first().map_elements(lambda path: run_link(entry.name, path, "commons"),
                                                       return_dtype=pl.Utf8)
    )
if y is not None:
    st.altair_chart(charts.sweep_heatmap(grid.drop("cell", "runs", strict=False), x, y, metric), width="stretch")
    st.caption("Click a cell to open its first seed's run on the Commons page; every seed is listed below.")
st.altair_chart(charts.sweep_intervals(grid.drop("cell", "runs", strict=False), x, y, metric), width="stretch")
what = "the share of runs where it is true" if metric in rates else "the mean over seeds"
st.caption(f"Each value is {what} ({grid['seeds'].min()}–{grid['seeds'].max()} per cell) with a "
           "Student-t 95% interval.")
if not cells.is_empty():
    st.subheader("Cells and their runs")
    table = cells.select(*shown, "cell", run=pl.col("runs")).explode("run").with_columns(
        open=pl.col("run").map_elements(lambda path: run_link(entry.name, path, "commons"), return_dtype=pl.Utf8)
    )
    st.dataframe(table, hide_index=True, width="stretch",
                 column_config={"open": st.column_config.LinkColumn("open", display_text="open run")})
