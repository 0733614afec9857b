"""The dashboard's entry point (`society dashboard` runs it): the page list and the sidebar's run picker."""

from pathlib import Path

import streamlit as st

from dashboard.compare import compare_picker
from dashboard.ui import run_picker, runs_dir

PAGES = Path(__file__).parent / "views"

st.set_page_config(layout="wide")
navigation = st.navigation([
    st.Page(PAGES / "runs.py", title="Runs", url_path="runs", default=True),
    st.Page(PAGES / "commons.py", title="Commons", url_path="commons"),
    st.Page(PAGES / "norms.py", title="Norms", url_path="norms"),
    st.Page(PAGES / "power.py", title="Power", url_path="power"),
    st.Page(PAGES / "network.py", title="Network", url_path="network"),
    st.Page(PAGES / "citizen.py", title="Citizen", url_path="citizen"),
    st.Page(PAGES / "reasoning.py", title="Reasoning", url_path="reasoning"),
    st.Page(PAGES / "sweeps.py", title="Sweeps", url_path="sweeps"),
    st.Page(PAGES / "live.py", title="Live", url_path="live"),
])
st.sidebar.caption(f"Runs folder: `{runs_dir()}`")
run_picker()
compare_picker()
navigation.run()
