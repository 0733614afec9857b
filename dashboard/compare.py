"""Runs side by side: the sidebar's pick of further runs to compare with the picked one, kept in the URL as
`?with=NAME` (repeated), and the runs a page then draws together."""

from __future__ import annotations

import contextlib
from pathlib import Path

import polars as pl
import streamlit as st

from dashboard.ui import PICKED, entries
from society.rundir.layout import RunDataError, read_manifest

WITH = "with"
UNKNOWN = "with_unknown"  # names the link asked to compare with that the runs folder does not hold


def compare_picker() -> None:
    """The sidebar's multi-pick of runs (sweep cells' seed runs included) to draw beside the picked run."""
    picked = st.session_state.get(PICKED) or st.query_params.get(PICKED)
    choices = [entry.name for entry in entries() if entry.kind == "run" and entry.problem is None
               and entry.name != picked]
    if WITH not in st.session_state:
        wanted = st.query_params.get_all(WITH)
        st.session_state[UNKNOWN] = [name for name in wanted if name not in choices and name != picked]
        st.session_state[WITH] = [name for name in wanted if name in choices]
    else:
        st.session_state[WITH] = [name for name in st.session_state[WITH] if name in choices]
    if not choices:
        return
    st.sidebar.multiselect("Compare with", choices, key=WITH, placeholder="Other runs",
                           help="Commons, Norms and Power then draw these runs beside the picked one, on shared "
                                "axes.")
    if st.session_state[WITH]:
        st.query_params[WITH] = st.session_state[WITH]
    elif WITH in st.query_params:
        del st.query_params[WITH]


def compared_runs(run: Path) -> dict[str, Path]:
    """The picked run (`run`) and the runs picked to compare with it, by name, in that order; empty when no other
    run is picked. Names from the link that the folder does not hold are said, never replaced."""
    unknown = st.session_state.get(UNKNOWN) or []
    if unknown:
        st.warning(f"Not compared: the runs folder holds no readable run named {', '.join(map(repr, unknown))} "
                   "(from the link).")
    others = st.session_state.get(WITH) or []
    if not others:
        return {}
    paths = {entry.name: entry.path for entry in entries()}
    name = st.session_state.get(PICKED) or st.query_params.get(PICKED)
    return {str(name): run} | {other: paths[other] for other in others if other in paths}


def fork_divergences(runs: dict[str, Path]) -> pl.DataFrame:
    """Each compared run forked from another compared run: run, parent, the round its change applied at (`at`) and
    the first round whose rounds differ from its parent's (`round`, null when none does)."""
    from society.core.fork import divergence_round, fork_parent

    by_path = {path.resolve(): name for name, path in runs.items()}
    rows = []
    for name, path in runs.items():
        with contextlib.suppress(RunDataError, OSError, KeyError, TypeError):
            manifest = read_manifest(path)
            parent = by_path.get(fork_parent(path, manifest))
            if parent is not None:
                rows.append({"run": name, "parent": parent, "at": manifest.get("fork_at"),
                             "round": divergence_round(path, runs[parent])})
    return pl.DataFrame(rows, schema={"run": pl.Utf8, "parent": pl.Utf8, "at": pl.Int64, "round": pl.Int64})
