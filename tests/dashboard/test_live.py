"""The Live page starts a shipped scenario in its own process and follows it round by round."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from dashboard.launcher import shipped_scenarios, start_run
from tests.dashboard.apptest import chart_titles, open_page


def test_live_page_starts_and_follows_a_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    app = open_page(monkeypatch, tmp_path, "live")
    fishery = next(path for path in shipped_scenarios() if path.name == "govsim_fishery.yaml")
    next(box for box in app.selectbox if box.label == "Scenario").set_value(fishery)
    app.number_input[0].set_value(6)
    app.button[0].click().run()
    assert not app.exception
    live = app.session_state["live"]
    assert live.exit_code is None or live.exit_code == 0  # started in a separate process, the page returned
    deadline = time.monotonic() + 60
    while live.exit_code is None and time.monotonic() < deadline:
        app.run()
        time.sleep(0.3)
    assert live.exit_code == 0, live.log_tail()
    app.run()
    assert not app.exception
    progress = app.get("progress")[0].proto
    assert progress.value == 100 and "round 6 of 6" in progress.text and "completed" in progress.text
    assert chart_titles(app) == ["Stock per patch", "Live metrics"]
    assert json.loads((live.run_dir / "manifest.json").read_text())["status"] == "completed"
    assert live.run_dir.parent == tmp_path


def test_stop_interrupts_like_ctrl_c(tmp_path: Path) -> None:
    village = next(path for path in shipped_scenarios() if path.name == "village_10k.yaml")
    live = start_run(village, tmp_path, ["rounds=100000", "population.size=2000"])
    deadline = time.monotonic() + 60
    while not list((live.run_dir / "tables" / "rounds").glob("*.parquet")) and time.monotonic() < deadline:
        time.sleep(0.2)
    live.stop()
    assert live.process.wait(timeout=60) == 130
    manifest = json.loads((live.run_dir / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    assert "society run --resume" in live.log_tail()
