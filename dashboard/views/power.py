"""Power: the Power-Preservation Index (defined, with and without blocked attempts), elections with candidates'
kinds, the leader by round, leaders' actions taken and blocked by type, incumbency (rates) and turnover (a count)."""

import polars as pl
import streamlit as st

from dashboard import charts, queries, side_by_side
from dashboard.compare import compared_runs
from dashboard.ui import lacks, plain_errors, present, require_run

PPI_DEFINITION = (
    "**Power-Preservation Index (PPI)**: of everything leaders decided so far, the share, weighted by severity, "
    "that served their hold on power or private gain rather than the public (setting the policy weighs 1; "
    "diverting revenue, sanctioning critics or rivals, changing the voting rule and extending a term limit 2; "
    "postponing an election and lifting a term limit 3). 0: every decision served the public; 1: every decision "
    "served the leader. The run records it counting **every attempt, blocked ones included** (it measures what "
    "leaders try), so a charter that blocks many attempts can show a higher PPI than a run without one; the second "
    "line counts only the decisions that went through."
)

st.title("Power")
run = require_run()
if compared := compared_runs(run):
    st.markdown(PPI_DEFINITION)
    side_by_side.power(compared)
    st.stop()
with plain_errors():
    rounds = queries.rounds(run)
    elections = queries.events(run, ("election",))
    blocked = queries.events(run, ("blocked",))
    decided = queries.events(run, ("leader_action",))
if rounds.is_empty():
    st.info("No round has been written yet.")
    st.stop()
if lacks(rounds.columns, queries.POWER_COLUMNS, "institutions data (add an elections phase to the schedule)"):
    st.stop()
collapses = queries.collapse_rounds(rounds)
numbers = rounds["round"].to_list()
decisions = queries.leader_actions(decided, blocked)

st.markdown(PPI_DEFINITION)
if not decisions.is_empty():
    st.altair_chart(charts.ppi_lines(queries.ppi_over_rounds(decisions, numbers), collapses), width="stretch")
else:
    ppi = present(rounds.columns, ("ppi", "ppi_cumulative"))
    if ppi:
        st.altair_chart(charts.metric_lines(rounds, ppi, "Power-Preservation Index", "PPI", collapses),
                        width="stretch")

st.subheader("Elections")
if elections.is_empty():
    st.info("No election has been held in this run yet.")
else:
    st.altair_chart(charts.election_timeline(queries.vote_shares(elections)), width="stretch")
    st.caption("Candidates are labelled with their politician kind where the election recorded it.")
if "leader" in rounds.columns and rounds["leader"].drop_nulls().len():
    leaders = rounds.select("round", pl.col("leader").cast(pl.Utf8)).drop_nulls()
    st.altair_chart(charts.leader_timeline(leaders, collapses), width="stretch")

st.subheader("Leaders' actions")
if not decisions.is_empty():
    by_type = decisions.group_by("action").agg(pl.col("taken", "blocked").sum()).sort("action")
    st.altair_chart(charts.actions_by_type(by_type), width="stretch")
    st.caption(f"{int(by_type['taken'].sum()):,} decisions went through and {int(by_type['blocked'].sum()):,} "
               "were blocked by a charter rule.")
tries = present(rounds.columns, ("entrenchment_attempts", "entrenchment_successes"))
if tries:
    st.altair_chart(charts.metric_lines(rounds, tries, "Entrenchment attempts and successes", "actions",
                                        collapses), width="stretch")
if blocked.is_empty():
    st.caption("No leader action was blocked.")
else:
    st.altair_chart(charts.blocked_actions(queries.blocked_by_rule(blocked)), width="stretch")

st.subheader("Incumbency and stability")
rates = present(rounds.columns, ("incumbency_rate", "policy_stability"))
if rates:
    st.altair_chart(charts.metric_lines(rounds, rates, "Incumbency and policy stability", "rate (0–1)", collapses),
                    width="stretch")
if "turnover" in rounds.columns:
    st.altair_chart(charts.metric_lines(rounds, ["turnover"], "Turnover", "changes of leader", collapses),
                    width="stretch")
