"""What every page shares: the runs folder, the run picked in the sidebar, and plain messages instead of errors."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import streamlit as st

from dashboard.catalog import Entry, discover
from society.rundir.layout import RunDataError

RUNS_DIR_ENV = "SOCIETY_RUNS_DIR"
PICKED = "run"


def runs_dir() -> Path:
    """The runs folder the dashboard was started on (`$SOCIETY_RUNS_DIR`, default `runs`)."""
    return Path(os.environ.get(RUNS_DIR_ENV, "runs"))


def entries() -> list[Entry]:
    return discover(runs_dir())


def run_picker() -> None:
    """The sidebar's run picker, kept in the URL (`?run=NAME`) so a page can be linked with its run; a name the
    folder does not hold picks nothing (the page then says so), never another run."""
    choices = [entry for entry in entries() if entry.kind != "sweep"]
    if not choices:
        st.sidebar.caption(f"No runs in `{runs_dir()}` yet.")
        return
    names = [entry.name for entry in choices]
    labels = {entry.name: entry.label for entry in choices}
    wanted = st.session_state.get(PICKED) or st.query_params.get(PICKED)
    index = names.index(wanted) if wanted in names else None if wanted else 0
    st.sidebar.selectbox("Run", names, index=index, key=PICKED, format_func=labels.get, placeholder="Pick a run")
    if st.session_state[PICKED] is not None:
        st.query_params[PICKED] = st.session_state[PICKED]


def kept_choice(container: Any, label: str, options: Sequence[Any], param: str, default: Any = None,
                format_func: Callable[[Any], Any] = str) -> Any:
    """A selectbox in `container` whose choice is kept in the URL as `?param=`: a linked page opens on it."""
    key = f"kept_{param}"
    if st.session_state.get(key) not in options:
        wanted = st.query_params.get(param)
        fallback = default if default in options else options[0]
        st.session_state[key] = next((option for option in options if str(option) == wanted), fallback)
    chosen = container.selectbox(label, options, key=key, format_func=format_func)
    st.query_params[param] = str(chosen)
    return chosen


def run_link(sweep: str, run_dir: str, page: str) -> str:
    """The link that opens a sweep's run (its folder relative to the sweep) on `page`."""
    return f"{page}?{PICKED}={quote(f'{sweep}/{run_dir}', safe='/')}"


def picked_run() -> Path | None:
    """The picked run's folder, after saying plainly when it cannot be shown (None) or is not finished."""
    name = st.session_state.get(PICKED) or st.query_params.get(PICKED)
    entry = next((entry for entry in entries() if entry.name == name), None)
    if entry is None and name:
        st.warning(f"`{runs_dir()}` holds no run named `{name}` (from the link): pick a run in the sidebar.")
        return None
    if entry is None:
        st.info(f"No run to show: `{runs_dir()}` holds no run yet. Start one on the Live page or with "
                "`society run SCENARIO`.")
        return None
    if entry.problem is not None:
        st.error(entry.problem)
        return None
    status, info = entry.status, entry.info
    if status == "running":
        st.info(f"This run is still going: {info['rounds_completed']} of {info['rounds_planned']} rounds "
                "checkpointed so far. The page shows every round written yet; reload for more.")
    elif status == "interrupted":
        st.warning(f"This run was interrupted after round {info['rounds_completed']}; continue it with "
                   f"`society run --resume {entry.path}`.")
    elif status == "failed":
        st.warning(f"This run failed: {info.get('error', 'no error recorded')}. The rounds before it are shown.")
    if entry.invalid:
        st.error(f"**Invalid run**: {info['validity'].get('reason')}. Fallbacks, not the model, made too many of "
                 "these decisions; read the model-decided citizens' metrics (`*_model` columns) beside the others.")
    return entry.path


def require_run() -> Path:
    """The picked run's folder, or stop the page after the message `picked_run` showed."""
    path = picked_run()
    if path is None:
        st.stop()
    return path


@contextmanager
def plain_errors() -> Iterator[None]:
    """Show a damaged file as one clear message (naming it) instead of a traceback, and stop the page."""
    try:
        yield
    except RunDataError as error:
        st.error(str(error))
        st.stop()


def lacks(columns: Sequence[str], needed: Sequence[str], what: str) -> bool:
    """Say plainly that the run has no `what` when none of `needed` is among `columns`; True if so."""
    if any(name in columns for name in needed):
        return False
    st.info(f"This run has no {what}: its tables lack {', '.join(needed)}.")
    return True


def present(columns: Sequence[str], wanted: Sequence[str]) -> list[str]:
    """The `wanted` columns that `columns` has, in the order wanted."""
    return [name for name in wanted if name in columns]
