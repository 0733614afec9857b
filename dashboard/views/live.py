"""Live: start a shipped scenario in its own process and watch it round by round without freezing the page."""

import streamlit as st

from dashboard import charts, queries
from dashboard.catalog import run_manifest
from dashboard.launcher import LiveRun, shipped_scenarios, start_run
from dashboard.ui import plain_errors, runs_dir
from society.rundir.layout import is_run_dir

REFRESH_S = 1.0
WATCHED = ("stock_total", "total_harvest", "group_investment", "net_yield")


def watch(live: LiveRun) -> None:
    """Progress, status and charts of the live run; reruns on its own every second while the run goes on."""
    code = live.exit_code
    if code is not None and st.session_state.get("live_seen_end") != live.run_dir:
        st.session_state["live_seen_end"] = live.run_dir
        st.rerun(scope="app")
    manifest, problem = run_manifest(live.run_dir) if is_run_dir(live.run_dir) else ({}, None)
    if code not in (None, 0):
        st.error(f"The run stopped with exit code {code}:\n\n```\n{live.log_tail()}\n```")
    if not manifest:
        st.info(problem or "Building the society (the first round is not written yet)…")
        if code is None:
            st.button("Stop", on_click=live.stop)
        return
    with plain_errors():
        rounds = queries.rounds(live.run_dir)
    done, planned = rounds.height, int(manifest["rounds_planned"])
    st.progress(min(done / planned, 1.0), text=f"`{live.run_dir.name}`: round {done} of {planned} · "
                                                f"{manifest['status'] if code is not None else 'running'}")
    if code is None:
        st.button("Stop", on_click=live.stop,
                  help="Interrupts the run like Ctrl-C; `society run --resume` continues it.")
    if rounds.is_empty():
        return
    collapses = queries.collapse_rounds(rounds)
    if "stock" in rounds.columns:
        st.altair_chart(charts.stock_per_patch(queries.stock_per_patch(rounds), collapses), width="stretch")
    watched = [name for name in WATCHED if name in rounds.columns]
    if watched:
        st.altair_chart(charts.metric_lines(rounds, watched, "Live metrics", "amount", collapses), width="stretch")


st.title("Live")
scenarios = shipped_scenarios()
if not scenarios:
    st.info("No shipped scenario found (the repository's scenarios/ folder).")
    st.stop()
with st.form("start"):
    scenario = st.selectbox("Scenario", scenarios, format_func=lambda path: path.name)
    left, middle, right = st.columns(3)
    rounds_wanted = left.number_input("Rounds (0: as shipped)", 0, 100_000, 0)
    size = middle.number_input("Citizens (0: as shipped)", 0, 10_000_000, 0)
    seed = right.number_input("Seed (empty: as shipped)", 0, 2**31 - 1, None)
    start = st.form_submit_button("Start")
if start:
    overrides = [f"rounds={rounds_wanted}"] * bool(rounds_wanted) + [f"population.size={size}"] * bool(size)
    overrides += [f"seed={seed}"] if seed is not None else []
    st.session_state["live"] = start_run(scenario, runs_dir(), overrides)
live = st.session_state.get("live")
if live is None:
    st.caption(f"Start a scenario: it runs in its own process and writes a new run into `{runs_dir()}`.")
    st.stop()
st.fragment(watch, run_every=REFRESH_S if live.exit_code is None else None)(live)
