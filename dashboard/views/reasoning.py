"""Reasoning: every LLM citizen's answers across rounds in one table (request, what it got, its reason, fallbacks),
filtered by citizen, phase and fallback, searched by text; with a survey, the run's persona validity first."""

import polars as pl
import streamlit as st

from dashboard import queries
from dashboard.catalog import run_manifest
from dashboard.ui import plain_errors, require_run

SHOWN_AT_MOST = 300

st.title("Reasoning")
run = require_run()
manifest, _ = run_manifest(run)
llm = manifest.get("llm")
with plain_errors():
    table = queries.reasoning(run, llm.get("model") if isinstance(llm, dict) else None)
    validity = queries.persona_validity(run)
if table.is_empty():
    st.info("This run made no model call (no llm_calls recorded): its citizens follow heuristic policies.")
    st.stop()
if validity is not None:
    st.subheader("Persona validity")
    st.caption("Pearson's r, over the LLM citizens, of each assigned Big Five score with the score surveyed from its "
               "answers and with what it did (take share, punishments given, votes for the winner); blank: fewer "
               "than 3 citizens or no variance.")
    st.dataframe(validity.fill_nan(None).to_pandas(), hide_index=True)
left, middle, right = st.columns([3, 2, 1])
citizens = left.multiselect("Citizens (all when empty)", table["citizen"].unique().sort().to_list())
phases = middle.multiselect("Phases (all when empty)", table["phase"].unique().sort().to_list())
only_fallbacks = right.checkbox("Fallbacks only")
search = st.text_input("Search requests, reasons and personas", placeholder="e.g. fair, punish, 10")
if citizens:
    table = table.filter(pl.col("citizen").is_in(citizens))
if phases:
    table = table.filter(pl.col("phase").is_in(phases))
if only_fallbacks:
    table = table.filter(pl.col("fallback"))
if search:
    needle = search.lower()
    table = table.filter(pl.any_horizontal(pl.col(name).fill_null("").str.to_lowercase().str.contains(needle,
                                                                                                       literal=True)
                                           for name in ("request", "reason", "persona")))
fallbacks = int(table["fallback"].sum())
st.caption(f"{table.height:,} calls match ({fallbacks:,} fell back to the heuristic policy)"
           + (f"; the first {SHOWN_AT_MOST} are shown" if table.height > SHOWN_AT_MOST else "") +
           ". Granted: the citizen's take that round (harvest calls only).")
st.table(table.head(SHOWN_AT_MOST).with_columns(
    granted=pl.col("granted").map_elements(queries.format_number, return_dtype=pl.Utf8),
    fallback=pl.when(pl.col("fallback")).then(pl.lit("yes")).otherwise(pl.lit("")),
).to_pandas())
