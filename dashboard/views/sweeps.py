"""Sweeps: a metric over two grid axes as a heatmap, seeds averaged, with 95% intervals."""

import json

import polars as pl
import streamlit as st

from dashboard import charts, queries
from dashboard.ui import entries, plain_errors, runs_dir
from society.rundir.layout import SUMMARY, SWEEP

st.title("Sweeps")
sweeps = [entry for entry in entries() if entry.kind == "sweep"]
if not sweeps:
    st.info(f"`{runs_dir()}` holds no sweep (a folder with {SWEEP}). Start one with `society sweep GRID.yaml`.")
    st.stop()
labels = {entry.name: entry.label for entry in sweeps}
entry = next(e for e in sweeps if e.name == st.selectbox("Sweep", list(labels), format_func=labels.get))
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
axes = queries.sweep_axes(entry.info, summary)
if not axes:
    st.error(f"{entry.path / SUMMARY}: no axis column (a dotted path such as commons.capacity) found.")
    st.stop()
skip = {"cell", "seed", "round", *axes}
metrics = [name for name, dtype in summary.schema.items() if name not in skip and dtype.is_numeric()]
if not metrics:
    st.info("The summary holds no numeric metric yet.")
    st.stop()
left, middle, right = st.columns(3)
metric = left.selectbox("Metric", metrics, index=metrics.index("efficiency") if "efficiency" in metrics else 0)
x = middle.selectbox("Across", axes)
rest = [axis for axis in axes if axis != x]
y = right.selectbox("Down", rest) if rest else None
for axis in [axis for axis in rest if axis != y]:
    values = summary[axis].unique().sort().to_list()
    value = st.select_slider(f"Fix {axis}", values)
    summary = summary.filter(pl.col(axis) == value)
shown = [x] + ([y] if y else [])
grid = queries.interval_grid(summary, metric, shown)
if grid.is_empty():
    st.info(f"No completed cell has a value for {metric}.")
    st.stop()
if y is not None:
    st.altair_chart(charts.sweep_heatmap(grid, x, y, metric), width="stretch")
st.altair_chart(charts.sweep_intervals(grid, x, y, metric), width="stretch")
st.caption(f"Each value is the mean over seeds ({grid['seeds'].min()}–{grid['seeds'].max()} per cell) with a "
           "Student-t 95% interval.")
