"""Norms: personal norms over rounds, compliance and the other norm metrics, sanctions, time to emergence."""

import streamlit as st

from dashboard import charts, queries, side_by_side
from dashboard.compare import compared_runs
from dashboard.ui import lacks, plain_errors, present, require_run

SANCTION_KINDS = ("punish", "sanction", "fine")
NORM_AXIS = "share of citizens or index (0–1); dispersion: sd of norms"

st.title("Norms")
run = require_run()
if compared := compared_runs(run):
    side_by_side.norms(compared, SANCTION_KINDS)
    st.stop()
with plain_errors():
    rounds = queries.rounds(run)
    distribution = queries.norm_distribution(run, 24)
    counts = queries.event_counts(run)
if rounds.is_empty():
    st.info("No round has been written yet.")
    st.stop()

collapses = queries.collapse_rounds(rounds)
emerged, collapsed = queries.norm_emergence(rounds)
if "norm_emergence_round" in rounds.columns:
    if emerged is not None:
        st.metric("Norm emerged", f"round {emerged}")
    elif collapsed is not None:
        st.metric("Norm emerged", f"not before the collapse (round {collapsed})")
    else:
        st.metric("Norm emerged", f"not yet (after {rounds.height} rounds)")
    if collapsed is not None:
        held = f"The norm held until every patch had collapsed, in round {collapsed}. " if emerged is not None else ""
        st.info(held + f"From round {collapsed} on the commons is collapsed: nobody can take anything, so citizens "
                "agreeing then is not cooperating, and no norm is counted as emerging.")

st.subheader("Personal norms")
if not lacks(queries.citizen_columns(run), ["personal_norm"], "personal norms (citizens' personal_norm)"):
    st.altair_chart(charts.norm_heatmap(distribution, collapses), width="stretch")

st.subheader("Compliance and agreement")
metrics = present(rounds.columns, queries.NORM_COLUMNS)
if not lacks(rounds.columns, queries.NORM_COLUMNS, "norm metrics (add the norms phases to the schedule)"):
    st.altair_chart(charts.metric_lines(rounds, metrics, "Norm metrics over rounds", NORM_AXIS, collapses),
                    width="stretch")
    st.caption("Compliance and cooperation: shares of citizens taking within the community norm and within their "
               "sustainable share; agreement: share of sanctioned citizens who had taken more than the norm; "
               "stability: 1 minus the relative change of personal norms; dispersion: the standard deviation of "
               "personal norms (take ratios). Dashed red rules mark rounds in which patches collapsed.")

numbers = rounds["round"].to_list()
st.subheader("Sanctions")
sanctions = queries.per_round(counts, SANCTION_KINDS, numbers)
if sanctions.is_empty():
    st.info("No sanction (punish, sanction or fine event) has been recorded in this run.")
else:
    st.altair_chart(charts.event_bars(sanctions, "Sanctions per round", "sanctions", collapses), width="stretch")
messages = queries.per_round(counts, ("message",), numbers)
total = int(messages["count"].sum()) if not messages.is_empty() else 0
st.caption(f"Messages between neighbours: {total:,} in {len(numbers)} rounds.")
if total:
    st.altair_chart(charts.event_bars(messages, "Messages per round", "messages", collapses), width="stretch")
