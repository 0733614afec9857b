"""Power: the Power-Preservation Index, elections with winners and vote shares, entrenchment, incumbency."""

import polars as pl
import streamlit as st

from dashboard import charts, queries
from dashboard.ui import lacks, plain_errors, present, require_run

st.title("Power")
run = require_run()
with plain_errors():
    rounds = queries.rounds(run)
    elections = queries.events(run, ("election",))
    blocked = queries.events(run, ("blocked",))
if rounds.is_empty():
    st.info("No round has been written yet.")
    st.stop()
if lacks(rounds.columns, queries.POWER_COLUMNS, "institutions data (add an elections phase to the schedule)"):
    st.stop()
collapses = queries.collapse_rounds(rounds)

ppi = present(rounds.columns, ("ppi", "ppi_cumulative"))
if ppi:
    st.altair_chart(charts.metric_lines(rounds, ppi, "Power-Preservation Index", "PPI", collapses), width="stretch")

st.subheader("Elections")
if elections.is_empty():
    st.info("No election has been held in this run yet.")
else:
    st.altair_chart(charts.election_timeline(queries.vote_shares(elections)), width="stretch")
if "leader" in rounds.columns and rounds["leader"].drop_nulls().len():
    leaders = rounds.select("round", pl.col("leader").cast(pl.Utf8)).drop_nulls()
    st.altair_chart(charts.leader_timeline(leaders, collapses), width="stretch")

st.subheader("Entrenchment")
tries = present(rounds.columns, ("entrenchment_attempts", "entrenchment_successes"))
if tries:
    st.altair_chart(charts.metric_lines(rounds, tries, "Entrenchment attempts and successes", "actions",
                                        collapses),
                    width="stretch")
if blocked.is_empty():
    st.caption("No leader action was blocked.")
else:
    st.altair_chart(charts.blocked_actions(queries.blocked_by_rule(blocked)), width="stretch")

st.subheader("Incumbency and stability")
steadiness = present(rounds.columns, ("incumbency_rate", "turnover", "policy_stability"))
if steadiness:
    st.altair_chart(charts.metric_lines(rounds, steadiness, "Incumbency, turnover and policy stability",
                                        "rate or count", collapses),
                    width="stretch")
