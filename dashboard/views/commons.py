"""Commons: stock per patch over rounds, harvest against the sustainable line, collapse markers, requests by model;
with runs picked to compare, every run on shared axes."""

import polars as pl
import streamlit as st

from dashboard import charts, queries, side_by_side
from dashboard.compare import compared_runs
from dashboard.ui import lacks, plain_errors, require_run

st.title("Commons")
run = require_run()
if compared := compared_runs(run):
    side_by_side.commons(compared)
    st.stop()
with plain_errors():
    rounds = queries.rounds(run)
    sustainable = queries.sustainable_harvest(run)
if rounds.is_empty():
    st.info("No round has been written yet.")
    st.stop()
if lacks(rounds.columns, ["stock"], "commons (its schedule has no harvest phase)"):
    st.stop()
collapses = queries.collapse_rounds(rounds)
with plain_errors():
    interventions = queries.intervention_rounds(run)
first, total, harvest = st.columns(3)
first.metric("First collapse", f"round {collapses['round'][0]}" if collapses.height else "none")
total.metric("Stock now", f"{rounds['stock_total'][-1]:.4g}")
harvest.metric("Harvest last round", f"{rounds['total_harvest'][-1]:.4g}")
st.altair_chart(charts.with_interventions(charts.stock_per_patch(queries.stock_per_patch(rounds), collapses),
                                         interventions), width="stretch")
with plain_errors():
    asked, fallbacks = queries.requests_by_model(run), queries.fallbacks_by_model(run)
if not asked.is_empty():
    st.altair_chart(charts.lines_by(asked, "model", "asked", "Amount asked ÷ sustainable share, by model",
                                    "mean asked ÷ sustainable share", collapses), width="stretch")
    st.caption("Each model's citizens' mean request as a share of their sustainable share (1: the sustainable "
               f"share); citizens asking no model are drawn as `{queries.NO_MODEL}`.")
if not fallbacks.is_empty():
    st.altair_chart(charts.lines_by(fallbacks, "model", "fallback", "Fallback share, by model",
                                    "share of calls that fell back", collapses, domain=[0.0, 1.0]), width="stretch")
if sustainable.is_empty():
    st.info("This run recorded no citizens' sustainable shares, so there is no sustainable line to draw.")
    st.stop()
harvests = rounds.select("round", "total_harvest").join(sustainable, on="round", how="left")
st.altair_chart(charts.with_interventions(charts.harvest_against_sustainable(harvests, collapses), interventions),
                width="stretch")
st.caption("The sustainable line is the sum of every citizen's sustainable share: the harvest after which one "
           "round of regrowth restores the stock. Dashed red rules mark rounds in which patches collapsed"
           + ("; solid grey rules the rounds at whose start an intervention fired." if interventions.height else "."))
over = harvests.filter(pl.col("total_harvest") > pl.col("sustainable")).height
st.caption(f"Harvest exceeded the sustainable line in {over} of {harvests.height} rounds.")
