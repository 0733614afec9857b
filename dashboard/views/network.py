"""Network: the social graph coloured by cooperation, wealth or faction, with a round slider; large graphs sampled."""

import polars as pl
import streamlit as st

from dashboard import charts, queries
from dashboard.catalog import run_manifest
from dashboard.ui import plain_errors, require_run
from society.rundir.layout import GRAPH

COLOURINGS = {
    "cooperation (take ÷ sustainable share)": ("ratio", "ratio"),
    "wealth": ("wealth", "amount"),
    "faction": ("faction", "category"),
}

st.title("Network")
run = require_run()
manifest, _ = run_manifest(run)
if not (run / GRAPH).is_file():
    st.info(f"This run has no {GRAPH}, so there is no network to draw.")
    st.stop()
recorded = queries.citizen_rounds(run)
if not recorded:
    st.info("No citizens' round has been written yet.")
    st.stop()
left, middle, right = st.columns([3, 2, 2])
with plain_errors():
    collapsed = queries.first_collapse(queries.rounds(run))
before = [number for number in recorded if collapsed is None or number < collapsed]
opening = before[-1] if before else recorded[0]  # a collapsed commons says nothing about who cooperated
number = left.select_slider("Round", recorded, value=opening) if len(recorded) > 1 else recorded[0]
colouring = middle.selectbox("Colour by", list(COLOURINGS))
limit = right.slider("Citizens drawn at most", 100, 2000, 500, step=100)
with plain_errors():
    sample = queries.graph_sample(run, int(manifest["citizens"]), limit, 0)
    citizens = queries.citizens_at(run, number)
column, kind = COLOURINGS[colouring]
if column == "faction" and "faction" not in citizens.columns:
    column = "policy"
    st.caption("No factions in this run: citizens are coloured by their policy.")
if column not in citizens.columns:
    st.info(f"This run's citizens have no `{column}` column to colour by.")
    st.stop()
shown = [name for name in ("policy", column) if name in citizens.columns]
nodes = sample.nodes.join(citizens.select("citizen", *dict.fromkeys(shown)), on="citizen", how="left")
if kind == "category":
    nodes = nodes.with_columns(pl.col(column).cast(pl.Utf8))
drawn = f"{sample.nodes.height:,} of {sample.total_nodes:,} citizens" if sample.nodes.height < sample.total_nodes \
    else f"all {sample.total_nodes:,} citizens"
st.altair_chart(charts.network(nodes, sample.edges, column, kind, f"Social graph at round {number}: {drawn}"),
                width="stretch")
if collapsed is not None:
    st.caption(f"Patches collapsed in round {collapsed}: the page opens on round {opening}, the last before it.")
if kind == "ratio":
    st.caption("Cooperation is a citizen's take divided by its sustainable share: 1 (white) takes exactly the "
               "sustainable share, green less, red more.")
if sample.nodes.height < sample.total_nodes:
    st.caption(f"The graph has {sample.total_edges:,} edges; a connected breadth-first sample is drawn so the "
               "page stays quick.")
