"""Opening a dashboard page in Streamlit's AppTest on a runs folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).parents[2] / "dashboard" / "app.py")


def open_page(monkeypatch: pytest.MonkeyPatch, runs_dir: Path, page: str, run: str | None = None,
              others: list[str] | None = None) -> AppTest:
    """The app after opening `page` with `run` picked and `others` to compare (as `?run=RUN&with=OTHER` in the
    URL would); no exception raised."""
    monkeypatch.setenv("SOCIETY_RUNS_DIR", str(runs_dir))
    app = AppTest.from_file(APP, default_timeout=60)
    if run is not None:
        app.query_params["run"] = run
    if others:
        app.query_params["with"] = others
    app.run()
    if page != "runs":
        app.switch_page(f"views/{page}.py").run()
    assert not app.exception, [error.value for error in app.exception]
    return app


def chart_titles(app: AppTest) -> list[str]:
    """The titles of the Vega-Lite charts the page drew."""
    titles = []
    for chart in app.get("vega_lite_chart"):
        title = json.loads(chart.proto.spec).get("title")
        titles.append(title["text"] if isinstance(title, dict) else title)
    return titles


def texts(elements: object) -> str:
    """The text of a list of message elements (info, error, caption...), joined."""
    return "\n".join(str(element.value) for element in elements)
