"""Norms: personal norms over rounds, compliance and the other norm metrics, sanctions, time to emergence."""

import polars as pl
import streamlit as st

from dashboard import charts, queries
from dashboard.ui import lacks, plain_errors, present, require_run

SANCTION_KINDS = ("punish", "sanction", "fine")

st.title("Norms")
run = require_run()
with plain_errors():
    rounds = queries.rounds(run)
    distribution = queries.norm_distribution(run, 24)
    counts = queries.event_counts(run)
if rounds.is_empty():
    st.info("No round has been written yet.")
    st.stop()

emerged = queries.first_value(rounds, "norm_emergence_round")
if "norm_emergence_round" in rounds.columns:
    st.metric("Norm emerged", f"round {emerged}" if emerged is not None else f"not yet (after {rounds.height} rounds)")

st.subheader("Personal norms")
if not lacks(queries.citizen_columns(run), ["personal_norm"], "personal norms (citizens' personal_norm)"):
    st.altair_chart(charts.norm_heatmap(distribution), width="stretch")

st.subheader("Compliance and agreement")
metrics = present(rounds.columns, queries.NORM_COLUMNS)
if not lacks(rounds.columns, queries.NORM_COLUMNS, "norm metrics (add the norms phases to the schedule)"):
    st.altair_chart(charts.metric_lines(rounds, metrics, "Norm metrics over rounds"), width="stretch")

st.subheader("Sanctions")
sanctions = counts.filter(pl.col("kind").is_in(SANCTION_KINDS)) if not counts.is_empty() else counts
if sanctions.is_empty():
    st.info("No sanction (punish, sanction or fine event) has been recorded in this run.")
else:
    st.altair_chart(charts.event_bars(sanctions, "Sanctions per round"), width="stretch")
messages = counts.filter(pl.col("kind") == "message")["count"].sum() if not counts.is_empty() else 0
st.caption(f"Messages between neighbours: {messages}.")
