"""`society dashboard`: the command this package adds to the `society` CLI (entry-point group `society.commands`)."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

import click

from society.cli import fail


@click.command(name="dashboard")
@click.argument("runs_dir", required=False, default=Path("runs"), type=click.Path(path_type=Path))
@click.option("--port", type=click.IntRange(1, 65535), default=8501, show_default=True, help="Port to serve on.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (only this machine by default).")
def dashboard_command(runs_dir: Path, port: int, host: str) -> None:
    """Explore the runs and sweeps in RUNS_DIR (default: runs) in a Streamlit app in the browser."""
    if find_spec("streamlit") is None:
        fail("the dashboard needs Streamlit: python -m pip install 'society[dashboard]'")
    if not runs_dir.is_dir():
        fail(f"{runs_dir}: no such runs folder (run a scenario first, e.g. society run scenarios/govsim_fishery.yaml)")
    from dashboard.server import port_free, serve  # imports Streamlit's side of the package

    if not port_free(host, port):
        fail(f"port {port} on {host} is already in use; pass another --port")
    click.echo(f"Dashboard: http://{host}:{port}  (runs folder {runs_dir}; Ctrl-C stops it)")
    serve(runs_dir, port, host)
