"""Sweeps: grid files, cell expansion, local and Ray executors, failures, resume after a kill, the summary."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from click.testing import CliRunner, Result
from polars.testing import assert_frame_equal

from society import ScenarioError, load_run
from society.cli import main
from society.scenario.schema import Scenario
from society.sweeps import RayExecutor, SerialExecutor, SweepLLMError, load_grid, read_sweep, run_sweep
from society.sweeps.grid import expand_range
from society.sweeps.llm import share

BASE = {
    "name": "tiny",
    "seed": 3,
    "rounds": 6,
    "population": {
        "size": 40,
        "policies": [
            {"policy": "sustainable", "fraction": 0.5, "noise": 0.1},
            {"policy": "greedy", "fraction": 0.3, "factor": 2},
            {"policy": "conditional", "fraction": 0.2},
        ],
    },
    "graph": {"kind": "watts_strogatz", "k": 4, "p": 0.2},
    "commons": {
        "patches": 2, "capacity": 400, "regrowth": {"kind": "logistic", "rate": 0.5}, "on_collapse": "continue"
    },
    "schedule": ["harvest", "regrow", {"phase": "punish", "params": {"cost": 1, "impact": 3}}],
}


def write_grid(folder: Path, base: dict | None = None, **grid: object) -> Path:
    """A base scenario and a grid file over it in `folder`; returns the grid's path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "base.yaml").write_text(yaml.safe_dump(base or BASE))
    path = folder / "grid.yaml"
    path.write_text(yaml.safe_dump({"base": "base.yaml"} | grid, sort_keys=False))
    return path


def society(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "society", *args], capture_output=True, text=True, timeout=timeout
    )


def sweep_here(*args: str) -> Result:
    """`society sweep ARGS` in this process (no start-up cost)."""
    return CliRunner().invoke(main, ["sweep", *args])


# ---- grid files -----------------------------------------------------------------------------------------------


def test_cartesian_and_zip_cells(tmp_path: Path) -> None:
    axes = {"schedule.2.params.cost": [0.5, 1, 2], "commons.regrowth.rate": {"from": 0.2, "to": 0.6, "num": 2}}
    spec = load_grid(write_grid(tmp_path, axes=axes, seeds=2))
    cells = spec.cells()
    assert spec.seeds == [0, 1]
    assert [c.values for c in cells[:3]] == [
        {"schedule.2.params.cost": 0.5, "commons.regrowth.rate": 0.2},
        {"schedule.2.params.cost": 0.5, "commons.regrowth.rate": 0.6},
        {"schedule.2.params.cost": 1, "commons.regrowth.rate": 0.2},
    ]
    assert len(cells) == 6
    scenario = spec.scenarios()[3]
    assert scenario.schedule[2].params.cost == 1 and scenario.commons.regrowth.rate == 0.6
    zipped = load_grid(write_grid(tmp_path / "z", mode="zip", seeds=[7, 9],
                                  axes={"rounds": [2, 3], "population.size": [20, 30]}))
    assert [c.values for c in zipped.cells()] == [{"rounds": 2, "population.size": 20},
                                                  {"rounds": 3, "population.size": 30}]
    assert zipped.seeds == [7, 9]


def test_ranges_include_both_ends() -> None:
    assert expand_range({"from": 0, "to": 1, "step": 0.1})[-3:] == [0.8, 0.9, 1.0]
    assert expand_range({"from": 2, "to": 10, "step": 4}) == [2, 6, 10]
    assert expand_range({"from": 1, "to": 10, "num": 4}) == [1, 4, 7, 10]
    assert expand_range({"from": 0, "to": 1, "num": 3}) == [0.0, 0.5, 1.0]


@pytest.mark.parametrize(
    ("grid", "field", "words"),
    [
        ({"axes": {"rounds": [2]}, "sedes": 2}, "sedes", "unknown key"),
        ({"axes": {"rounds": {"from": 1, "to": 5}}}, "axes.rounds", "exactly one of `step`"),
        ({"axes": {"rounds": []}}, "axes.rounds", "at least one value"),
        ({"axes": {"rounds": [2]}, "seeds": 0}, "seeds", "count >= 1"),
        ({"axes": {"rounds": [2]}, "seeds": [1, -2]}, "seeds[1]", "greater than or equal to 0"),
        ({"axes": {"seed": [1, 2]}}, "axes", "not an axis"),
        ({"mode": "zip", "axes": {"rounds": [2, 3], "population.size": [5]}}, "axes", "equal length"),
        ({"axes": {"commons.regrowth.rat": [0.1]}}, "commons.regrowth.rat", "unknown key"),
        ({"axes": {"schedule.7.params.cost": [1]}}, "schedule.7.params.cost", "not an index"),
        ({"axes": {"rounds": [3, 0, -1]}, "seeds": 2}, "rounds", "cell 1 with rounds=0"),
    ],
)
def test_bad_grid_names_file_and_field(tmp_path: Path, grid: dict, field: str, words: str) -> None:
    path = write_grid(tmp_path, **grid)
    with pytest.raises(ScenarioError) as caught:
        load_grid(path)
    problem = caught.value.problems[0]
    assert problem.file == str(path) and problem.field == field and words in problem.message, problem


def test_missing_base_is_named(tmp_path: Path) -> None:
    path = tmp_path / "grid.yaml"
    path.write_text("base: nowhere.yaml\naxes: {rounds: [1]}\n")
    with pytest.raises(ScenarioError, match="base: no such scenario file"):
        load_grid(path)


# ---- executors, summary, failures -----------------------------------------------------------------------------


def test_local_pool_matches_serial_and_summary_has_a_row_per_cell_and_seed(tmp_path: Path) -> None:
    axes = {"schedule.2.params.cost": [0.5, 2], "commons.regrowth.rate": [0.3, 0.7]}
    grid = write_grid(tmp_path, axes=axes, seeds=[1, 2])
    pooled = society("sweep", str(grid), "--out", str(tmp_path / "pooled"), "--workers", "2", "--quiet")
    assert pooled.returncode == 0, pooled.stderr
    assert "8 of 8 runs completed" in pooled.stdout
    spec = load_grid(grid)
    report = run_sweep(spec, tmp_path / "serial", SerialExecutor())
    assert report.completed == 8 and not report.failures

    summary = pl.read_parquet(tmp_path / "pooled" / "summary.parquet")
    assert summary.height == 4 * 2
    assert summary.columns[:7] == ["cell", "seed", *axes, "status", "error", "run_dir"]
    assert summary["status"].to_list() == ["completed"] * 8
    assert summary.select("cell", "seed").rows() == [(c, s) for c in range(4) for s in (1, 2)]
    assert summary["commons.regrowth.rate"].to_list() == [0.3, 0.3, 0.7, 0.7] * 2
    assert {"round", "stock_total", "efficiency", "punishments"} <= set(summary.columns)
    serial = pl.read_parquet(tmp_path / "serial" / "summary.parquet")
    assert_frame_equal(summary, serial)

    row = summary.row(5, named=True)
    run = load_run(tmp_path / "pooled" / row["run_dir"])
    assert run.scenario["seed"] == row["seed"] == 2
    assert run.scenario["schedule"][2]["params"]["cost"] == row["schedule.2.params.cost"] == 2
    assert row["round"] == run.rounds["round"].max() and row["efficiency"] == run.rounds["efficiency"][-1]
    for run_dir in summary["run_dir"]:
        pooled_run, serial_run = load_run(tmp_path / "pooled" / run_dir), load_run(tmp_path / "serial" / run_dir)
        assert_frame_equal(pooled_run.rounds, serial_run.rounds)
        assert_frame_equal(pooled_run.citizens, serial_run.citizens)
        assert_frame_equal(pooled_run.events, serial_run.events)

    record = json.loads((tmp_path / "pooled" / "sweep.json").read_text())
    assert record["status"] == "completed" and record["axes"] == axes and record["seeds"] == [1, 2]
    assert record["runs"] == {"total": 8, "completed": 8, "failed": 0, "invalid": 0}


def test_a_failing_cell_is_recorded_and_the_rest_go_on(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("\n".join(f"{i} {(i + 1) % 40}" for i in range(40)))
    (tmp_path / "bad.txt").write_text("0 1\n1 x\n")
    base = BASE | {"graph": {"kind": "edgelist", "path": "good.txt"}}
    grid = write_grid(tmp_path, base, axes={"graph.path": [str(tmp_path / "good.txt"), str(tmp_path / "bad.txt")]},
                      seeds=2)
    result = sweep_here(str(grid), "--out", str(tmp_path / "sweep"), "--workers", "1", "--quiet")
    assert result.exit_code == 1
    assert "2 of 4 runs completed, 2 failed" in result.stderr and "Traceback" not in result.stderr
    assert "cell 1 seed 0: ScenarioError" in result.stderr
    summary = pl.read_parquet(tmp_path / "sweep" / "summary.parquet")
    assert summary["status"].to_list() == ["completed", "completed", "failed", "failed"]
    failed = summary.filter(pl.col("status") == "failed")
    assert all("line 2" in error for error in failed["error"]) and failed["efficiency"].is_null().all()
    assert (tmp_path / "sweep" / failed["run_dir"][0] / "error.txt").read_text().startswith("ScenarioError")
    assert json.loads((tmp_path / "sweep" / "sweep.json").read_text())["status"] == "failed"

    finished = (tmp_path / "sweep" / summary["run_dir"][0] / "manifest.json").stat().st_mtime_ns
    again = sweep_here("--resume", str(tmp_path / "sweep"), "--workers", "1", "--quiet")
    assert again.exit_code == 1 and "2 of 4 runs completed, 2 failed" in again.stderr
    assert (tmp_path / "sweep" / summary["run_dir"][0] / "manifest.json").stat().st_mtime_ns == finished


def test_ray_executor_on_a_local_ray(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="the ray extra is not installed")
    grid = write_grid(tmp_path, axes={"schedule.2.params.cost": [0.5, 2], "rounds": [3, 5]}, seeds=1)
    result = society("sweep", str(grid), "--out", str(tmp_path / "ray"), "--executor", "ray", "--workers", "2",
                     "--quiet", timeout=300)
    assert result.returncode == 0, result.stderr
    assert "4 of 4 runs completed" in result.stdout
    record = json.loads((tmp_path / "ray" / "sweep.json").read_text())
    assert record["executor"] == "ray, local, 2 CPUs"
    run_sweep(load_grid(grid), tmp_path / "serial", SerialExecutor())
    by_ray = pl.read_parquet(tmp_path / "ray" / "summary.parquet")
    assert by_ray["round"].to_list() == [3, 5, 3, 5]
    assert_frame_equal(by_ray, pl.read_parquet(tmp_path / "serial" / "summary.parquet"))

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{unused.getsockname()[1]}"
    result = sweep_here(str(grid), "--out", str(tmp_path / "nowhere"), "--executor", "ray", "--ray-address", address)
    assert result.exit_code == 2 and f"nothing answers at the Ray cluster address {address}" in result.stderr
    assert json.loads((tmp_path / "nowhere" / "sweep.json").read_text())["status"] == "failed"


# ---- resume ---------------------------------------------------------------------------------------------------


def _wait_for(condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_resume_after_the_sweep_is_killed(tmp_path: Path) -> None:
    big = BASE | {"rounds": 40, "population": BASE["population"] | {"size": 3000}}
    grid = write_grid(tmp_path, big, axes={"schedule.2.params.cost": [0.5, 1, 2]}, seeds=1)
    folder = tmp_path / "sweep"
    process = subprocess.Popen(
        [sys.executable, "-m", "society", "sweep", str(grid), "--out", str(folder), "--workers", "1", "--quiet"],
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    first, second = folder / "cells/0000/seed-0", folder / "cells/0001/seed-0"
    try:
        _wait_for(lambda: (second / "checkpoint.json").is_file())  # its first checkpoint (round 10) is written
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert json.loads((first / "manifest.json").read_text())["status"] == "completed"
    assert json.loads((second / "manifest.json").read_text())["status"] == "running"
    finished = (first / "manifest.json").stat().st_mtime_ns
    early_round = second / "tables" / "rounds" / "000001.parquet"
    early_written = early_round.stat().st_mtime_ns

    resumed = society("sweep", str(grid), "--out", str(folder), "--workers", "1", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert (first / "manifest.json").stat().st_mtime_ns == finished
    assert early_round.stat().st_mtime_ns == early_written
    run_sweep(load_grid(grid), tmp_path / "whole", SerialExecutor())
    for run_dir in ("cells/0000/seed-0", "cells/0001/seed-0", "cells/0002/seed-0"):
        assert_frame_equal(load_run(folder / run_dir).citizens, load_run(tmp_path / "whole" / run_dir).citizens)
    whole = pl.read_parquet(tmp_path / "whole" / "summary.parquet")
    assert_frame_equal(pl.read_parquet(folder / "summary.parquet"), whole)


def test_ctrl_c_stops_the_pool_and_resume_finishes(tmp_path: Path) -> None:
    big = BASE | {"rounds": 40, "population": BASE["population"] | {"size": 3000}}
    grid = write_grid(tmp_path, big, axes={"schedule.2.params.cost": [0.5, 1, 2, 3]}, seeds=1)
    folder = tmp_path / "sweep"
    process = subprocess.Popen(
        [sys.executable, "-m", "society", "sweep", str(grid), "--out", str(folder), "--workers", "2", "--quiet"],
        start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    _wait_for(lambda: len(list(folder.glob("cells/*/seed-0/tables/rounds/*.parquet"))) >= 2)
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "interrupted, continue with: society sweep --resume" in stderr and "Traceback" not in stderr
    assert json.loads((folder / "sweep.json").read_text())["status"] == "interrupted"
    assert read_sweep(folder) == load_grid(grid)
    resumed = society("sweep", "--resume", str(folder), "--workers", "2", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    summary = pl.read_parquet(folder / "summary.parquet")
    assert summary["status"].to_list() == ["completed"] * 4 and summary["round"].to_list() == [40] * 4


# ---- LLM-backed sweeps ---------------------------------------------------------------------------------------


class FakeModelServer(ThreadingHTTPServer):
    """Just enough of an OpenAI-compatible server for LLM citizens: a model list, and chat answers that fill each
    decision's JSON schema with plain values; counts the requests it holds at once."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _FakeModelHandler)
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most_in_flight = 0
        self.requests = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _FakeModelHandler(BaseHTTPRequestHandler):
    server: FakeModelServer

    def log_message(self, *args: Any) -> None:
        return None

    def _answer(self, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._answer({"object": "list", "data": [{"id": "fake-model", "object": "model"}]})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            self.server.in_flight += 1
            self.server.requests += 1
            self.server.most_in_flight = max(self.server.most_in_flight, self.server.in_flight)
        time.sleep(0.03)
        with self.server.lock:
            self.server.in_flight -= 1
        schema = body["response_format"]["json_schema"]["schema"]["properties"]
        plain = {"number": 1, "integer": 1, "array": [], "string": "", "boolean": False}
        content = json.dumps({name: plain[field.get("type", "string")] for name, field in schema.items()})
        choices = [{"index": i, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}
                   for i in range(body.get("n", 1))]
        self._answer({"choices": choices, "usage": {"prompt_tokens": 10, "completion_tokens": 3}})


@pytest.fixture
def model_server() -> Iterator[FakeModelServer]:
    server = FakeModelServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def llm_base(**llm: Any) -> dict[str, Any]:
    """BASE with half its citizens deciding through a model."""
    policies = [{"policy": "llm", "fraction": 0.5}, {"policy": "greedy", "fraction": 0.5, "factor": 2}]
    return BASE | {"rounds": 2, "population": {"size": 24, "policies": policies},
                   "llm": {"fallback_threshold": 1.0} | llm}


def test_llm_runs_share_the_servers_under_one_concurrency_cap(tmp_path: Path, model_server: FakeModelServer) -> None:
    base = llm_base(backend="server", base_urls=[model_server.base_url], concurrency=4)
    grid = write_grid(tmp_path, base, axes={"schedule.2.params.threshold": [1.2, 2.0]}, seeds=2)
    result = society("sweep", str(grid), "--out", str(tmp_path / "sweep"), "--workers", "2", "--quiet")
    assert result.returncode == 0, result.stderr
    summary = pl.read_parquet(tmp_path / "sweep" / "summary.parquet")
    assert summary["status"].to_list() == ["completed"] * 4
    for run_dir in summary["run_dir"]:
        run = load_run(tmp_path / "sweep" / run_dir)
        assert run.scenario["llm"]["concurrency"] == 2 and run.scenario["llm"]["base_urls"] == [model_server.base_url]
        assert run.llm_calls.height > 0
    assert model_server.requests > 0 and model_server.most_in_flight <= 4


def test_local_backend_runs_are_sent_to_the_sweeps_server() -> None:
    local = Scenario.model_validate(llm_base(concurrency=64))
    shared = share(local, 4, "http://127.0.0.1:8123/v1", "smollm2-135m-instruct")
    assert shared.llm.backend == "server" and shared.llm.base_urls == ["http://127.0.0.1:8123/v1"]
    assert shared.llm.concurrency == 16 and shared.llm.model == "smollm2-135m-instruct"
    assert shared.llm.memory_rounds == local.llm.memory_rounds
    replay = Scenario.model_validate(llm_base(cache="replay"))
    assert share(replay, 4, None, None) == replay
    heuristic = Scenario.model_validate(BASE)
    assert share(heuristic, 4, None, None) == heuristic


def test_a_ray_cluster_cannot_reach_a_server_on_this_machine(tmp_path: Path) -> None:
    spec = load_grid(write_grid(tmp_path, llm_base(), axes={"rounds": [1, 2]}))
    with pytest.raises(SweepLLMError, match="llm.backend: server"):
        run_sweep(spec, tmp_path / "sweep", RayExecutor(2, address="ray://cluster:10001"))
    assert not (tmp_path / "sweep" / "cells").exists()


# ---- command-line errors --------------------------------------------------------------------------------------


def test_bad_input_gives_clear_lines(tmp_path: Path) -> None:
    grid = write_grid(tmp_path, axes={"rounds": [2, 3]}, seeds=1, sedes=3)
    result = sweep_here(str(grid), "--out", str(tmp_path / "s"))
    assert result.exit_code == 2 and f"{grid}: sedes: unknown key" in result.stderr
    assert not (tmp_path / "s").exists()

    first = write_grid(tmp_path / "a", axes={"rounds": [2]}, seeds=1)
    assert sweep_here(str(first), "--out", str(tmp_path / "s"), "--workers", "1", "--quiet").exit_code == 0
    other = write_grid(tmp_path / "b", axes={"rounds": [3]}, seeds=1)
    result = sweep_here(str(other), "--out", str(tmp_path / "s"))
    assert result.exit_code == 2 and "holds another sweep (its axes differ)" in result.stderr
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    result = sweep_here(str(first), "--out", str(tmp_path / "taken"))
    assert result.exit_code == 2 and "already holds files" in result.stderr

    result = sweep_here(str(first), "--ray-address", "127.0.0.1:6379")
    assert result.exit_code == 2 and "--ray-address needs --executor ray" in result.stderr
    result = sweep_here("--resume", str(tmp_path / "a"))
    assert result.exit_code == 2 and "not a sweep folder" in result.stderr
    result = sweep_here(str(first), "--workers", "0")
    assert result.exit_code == 2 and "--workers" in result.stderr
