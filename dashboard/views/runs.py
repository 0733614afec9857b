"""Runs: every run and sweep in the runs folder, the picked run's scenario and headline metrics, comparisons."""

import polars as pl
import streamlit as st

from dashboard import charts, queries
from dashboard.catalog import overview
from dashboard.compare import WITH
from dashboard.ui import PICKED, entries, picked_run, plain_errors, runs_dir

HEADLINE = ("efficiency", "survival", "equality", "stock_total", "total_harvest", "wealth_gini", "punishments")

st.title("Runs")
found = entries()
if not found:
    st.info(f"`{runs_dir()}` holds no run or sweep yet. Start one on the Live page or with `society run SCENARIO`.")
    st.stop()
st.dataframe(pl.DataFrame(overview(found)), hide_index=True, width="stretch")

st.header("Picked run")
run = picked_run()
if run is not None:
    with plain_errors():
        rounds = queries.rounds(run)
        scenario = queries.scenario_text(run)
    if rounds.is_empty():
        st.info("No round has been written yet.")
    else:
        last = rounds.row(-1, named=True)
        shown = [name for name in HEADLINE if name in last and last[name] is not None]
        st.caption(f"After round {last['round']}")
        for column, name in zip(st.columns(len(shown)), shown):
            value = last[name]
            column.metric(name, queries.format_number(value))
        over_usage = queries.whole_run(run)["govsim_over_usage"]
        if over_usage is not None:
            st.metric("govsim_over_usage (whole run)", queries.format_number(over_usage))
            st.caption("GovSim's over-usage, one figure per run: of all positive harvest requests, the share above "
                       "the citizen's sustainable share that round (over_share_round is the share of all citizens, "
                       "round by round).")
    if scenario is not None:
        with st.expander("Scenario"):
            st.code(scenario, language="yaml")

st.header("Compare runs")
usable = [entry for entry in found if entry.kind == "run" and entry.problem is None]
if len(usable) < 2:
    st.info("Comparing needs two or more readable runs in the runs folder.")
    st.stop()
names = [entry.name for entry in usable]
sidebar = [name for name in (st.session_state.get(PICKED), *(st.session_state.get(WITH) or [])) if name in names]
chosen = st.multiselect("Runs to compare", names, default=sidebar if len(sidebar) >= 2 else names[:2])
if len(chosen) < 2:
    st.info("Pick two or more runs.")
    st.stop()
paths = {entry.name: entry.path for entry in usable}
with plain_errors():
    frames = {name: queries.rounds(paths[name]) for name in chosen}
frames = {name: frame for name, frame in frames.items() if not frame.is_empty()}
common = set.intersection(*(set(frame.columns) for frame in frames.values())) if frames else set()
first = next(iter(frames.values())) if frames else pl.DataFrame()
metrics = [name for name, dtype in first.schema.items() if name in common and name != "round" and dtype.is_numeric()]
if not metrics:
    st.info("The picked runs share no per-round metric yet.")
    st.stop()
metric = st.selectbox("Metric", metrics, index=metrics.index("efficiency") if "efficiency" in metrics else 0)
long = pl.concat([frame.select("round", pl.col(metric).cast(pl.Float64)).with_columns(run=pl.lit(name))
                  for name, frame in frames.items()])
marks = [queries.collapse_rounds(frame).with_columns(run=pl.lit(name))
         for name, frame in frames.items() if "collapsed_patches" in frame.columns]
collapses = pl.concat(marks) if marks else None
st.altair_chart(charts.compare_runs(long, metric, collapses), width="stretch")
status = {entry.name: entry.status for entry in usable}
st.caption("Side by side: " + ", ".join(f"`{name}` {status[name]} after {frame.height:,} rounds"
                                         for name, frame in frames.items()))
numeric = [key for key in sorted(common)
           if key != "round" and (first.schema[key].is_numeric() or first.schema[key] == pl.Boolean)]
st.dataframe(queries.totals_and_finals(frames, numeric), hide_index=True, width="stretch")
st.caption("Total: the sum over every round (what counts such as blocked_attempts add up to; for a yes/no metric, "
           "the rounds in which it held); final: the value after the last round.")
