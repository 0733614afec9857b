"""The `society` command end to end: run, info, errors, Ctrl-C, --resume, and the commands other packages add."""

from __future__ import annotations

import ast
import json
import signal
import subprocess
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from click.testing import CliRunner
from polars.testing import assert_frame_equal

from society import load_run
from society.cli import COMMANDS, main

REPO = Path(__file__).parents[2]
SCENARIOS = REPO / "scenarios"


def society(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "society", *args], capture_output=True, text=True, timeout=300)


def test_run_then_info(tmp_path: Path) -> None:
    out = tmp_path / "fishery"
    result = CliRunner().invoke(
        main, ["run", str(SCENARIOS / "govsim_fishery.yaml"), "--out", str(out), "--seed", "5", "--set", "rounds=4"]
    )
    assert result.exit_code == 0, result.output
    run = load_run(out)
    assert run.manifest["status"] == "completed"
    assert run.manifest["seed"] == 5
    assert run.rounds["round"].to_list() == list(range(1, run.rounds.height + 1))
    assert run.citizens.height == 5 * run.rounds.height
    info = CliRunner().invoke(main, ["info", str(out)])
    assert info.exit_code == 0
    assert "completed" in info.output and "efficiency" in info.output


def test_existing_output_is_never_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    result = society("run", str(SCENARIOS / "ostrom_cpr.yaml"), "--out", str(out))
    assert result.returncode == 2
    assert "already holds files" in result.stderr and "Traceback" not in result.stderr
    assert (out / "precious.txt").read_text() == "keep me"


def test_bad_input_gives_one_clear_line(tmp_path: Path) -> None:
    result = society("run", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2 and "no such scenario file" in result.stderr
    result = society("run", str(SCENARIOS / "ostrom_cpr.yaml"), "--set", "population.size=zero")
    assert result.returncode == 2 and "population.size" in result.stderr
    result = society("info", str(tmp_path))
    assert result.returncode == 2 and "not a run directory" in result.stderr
    result = society("run", "--resume", str(tmp_path))
    assert result.returncode == 2 and "not a run directory" in result.stderr
    edges = tmp_path / "edges.txt"
    edges.write_text("0 1\n1 99\n")
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "rounds: 1\npopulation: {size: 4, policies: [{policy: sustainable, fraction: 1}]}\n"
        "graph: {kind: edgelist, path: edges.txt}\nschedule: [invest]\n"
    )
    result = society("run", str(scenario), "--out", str(tmp_path / "r"))
    assert result.returncode == 2
    assert "edges.txt" in result.stderr and "line 2" in result.stderr and "Traceback" not in result.stderr
    for stream in (result.stdout, result.stderr):
        assert "Traceback" not in stream


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])  # Ctrl-C, and a scheduler's or `kill`'s stop
def test_ctrl_c_then_resume_matches_uninterrupted_run(stop: signal.Signals, tmp_path: Path) -> None:
    total_rounds = 150  # long enough that the signal comes while rounds are still being played
    overrides = ["--set", "population.size=20000", "--set", f"rounds={total_rounds}", "--quiet"]
    scenario = str(SCENARIOS / "village_10k.yaml")
    whole = society("run", scenario, "--out", str(tmp_path / "whole"), *overrides)
    assert whole.returncode == 0, whole.stderr
    process = subprocess.Popen(
        [sys.executable, "-m", "society", "run", scenario, "--out", str(tmp_path / "cut"), *overrides],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    manifest = tmp_path / "cut" / "manifest.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        rounds = tmp_path / "cut" / "tables" / "rounds"
        if rounds.is_dir() and len(list(rounds.glob("*.parquet"))) >= 5:
            break
        time.sleep(0.05)
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "society run --resume" in stderr and "Traceback" not in stderr
    status = json.loads(manifest.read_text())
    assert status["status"] == "interrupted"
    assert 0 < status["rounds_completed"] < total_rounds
    resumed = society("run", "--resume", str(tmp_path / "cut"), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    reference, continued = load_run(tmp_path / "whole"), load_run(tmp_path / "cut")
    assert continued.manifest["status"] == "completed"
    assert continued.rounds["round"].to_list() == list(range(1, total_rounds + 1))
    for table in ("rounds", "citizens", "events"):
        assert_frame_equal(getattr(reference, table), getattr(continued, table))


def test_python_m_society_help() -> None:
    result = society("--help")
    assert result.returncode == 0 and "run" in result.stdout and "validate" in result.stdout


def test_society_imports_nothing_from_dashboard() -> None:
    for path in (REPO / "society").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            modules = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not [name for name in modules if name.split(".")[0] == "dashboard"], path


def test_dashboard_command_comes_from_its_entry_point() -> None:
    points = {point.name: point.value for point in entry_points(group=COMMANDS)}
    assert points["dashboard"] == "dashboard.command:dashboard_command"
    listed = CliRunner().invoke(main, ["--help"])
    assert listed.exit_code == 0 and "dashboard  Explore the runs and sweeps" in listed.output
    shown = CliRunner().invoke(main, ["dashboard", "--help"])
    assert shown.exit_code == 0, shown.output
    assert "Usage: main dashboard [OPTIONS] [RUNS_DIR]" in shown.output
    assert "--port INTEGER RANGE" in shown.output and "[default: 127.0.0.1]" in shown.output
    unknown = CliRunner().invoke(main, ["dashbored"])
    assert unknown.exit_code == 2 and "No such command 'dashbored'" in unknown.output


def test_dashboard_command_says_plainly_when_streamlit_is_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import dashboard.command

    monkeypatch.setattr(dashboard.command, "find_spec", lambda name: None)
    result = CliRunner().invoke(main, ["dashboard", str(tmp_path)])
    assert result.exit_code == 2
    assert "error: the dashboard needs Streamlit: python -m pip install 'society[dashboard]'" in result.output


def test_society_run_imports_neither_the_dashboard_nor_streamlit(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from society.cli import main\n"
        f"main(['run', {str(SCENARIOS / 'govsim_fishery.yaml')!r}, '--out', {str(tmp_path / 'run')!r},"
        " '--set', 'rounds=1', '--quiet'], standalone_mode=False)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dashboard', 'streamlit')))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert load_run(tmp_path / "run").manifest["status"] == "completed"


@pytest.mark.parametrize(("edges", "expected"), [
    ("0 1\n1 7\n", "line 2: expected node ids in 0..n-1 (n=5)"),
    ("0 1\n1 x\n", "line 2: expected two integer node ids"),
])
def test_validate_rejects_a_graph_file_that_run_would_reject(tmp_path: Path, edges: str, expected: str) -> None:
    from society import ScenarioError, Society, load_scenario

    (tmp_path / "edges.txt").write_text(edges)
    scenario = tmp_path / "s.yaml"
    shipped = (SCENARIOS / "govsim_fishery.yaml").read_text()
    scenario.write_text(shipped.replace("graph: {kind: complete}", f"graph: {{kind: edgelist, path: {tmp_path}/edges.txt}}"))
    result = CliRunner().invoke(main, ["validate", str(scenario)])
    assert result.exit_code == 2
    assert "edges.txt: graph.path: " in result.stderr and expected in result.stderr
    with pytest.raises(ScenarioError) as built:
        Society(load_scenario(scenario))
    assert str(built.value) in result.stderr
