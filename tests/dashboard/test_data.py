"""The data layer: caching keyed on file times, queries against hand-computed values, the CLI command."""

from __future__ import annotations

import json
import math
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml
from click.testing import CliRunner
from polars.testing import assert_frame_equal

from dashboard import queries
from dashboard.catalog import describe, discover
from dashboard.server import port_free, serve
from society import load_run
from society.cli import main


def test_cache_is_reused_until_a_table_file_changes(runs_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "growing"
    shutil.copytree(runs_dir / "village", run)
    last = run / "tables" / "rounds" / "000005.parquet"
    held = last.read_bytes()
    last.unlink()
    first = queries.rounds(run)
    assert queries.rounds(run) is first and first.height == 4
    last.write_bytes(held)
    grown = queries.rounds(run)
    assert grown is not first and grown["round"].to_list() == [1, 2, 3, 4, 5]


def test_sustainable_line_is_the_sum_of_sustainable_shares(runs_dir: Path) -> None:
    citizens = pl.read_parquet(runs_dir / "village" / "tables" / "citizens" / "000002.parquet")
    line = queries.sustainable_harvest(runs_dir / "village")
    assert math.isclose(line.filter(pl.col("round") == 2)["sustainable"][0], citizens["fair_share"].sum())


def test_stock_per_patch_and_collapse_rounds() -> None:
    rounds = pl.DataFrame({"round": [1, 2, 3], "stock": [[5.0, 1.0], [4.0, 0.0], [0.0, 0.0]],
                           "collapsed_patches": [0, 1, 2]})
    long = queries.stock_per_patch(rounds)
    assert long.filter((pl.col("round") == 2) & (pl.col("patch") == 0))["stock"][0] == 4.0
    assert long.height == 6
    assert queries.collapse_rounds(rounds)["round"].to_list() == [2, 3]


def test_norm_emergence_is_the_engines_before_the_full_collapse() -> None:
    rounds = pl.DataFrame({"round": [1, 2, 3, 4], "stock": [[5.0, 1.0]] * 4, "collapsed_patches": [0, 1, 2, 2],
                           "norm_emergence_round": [None, 2, 2, 2]})
    assert queries.norm_emergence(rounds) == (2, 3)
    late = rounds.with_columns(norm_emergence_round=pl.Series([None, None, 3, 3]))
    assert queries.norm_emergence(late) == (None, 3)
    standing = rounds.with_columns(collapsed_patches=pl.Series([0, 0, 1, 1]))
    assert queries.norm_emergence(standing) == (2, None)
    assert queries.norm_emergence(rounds.drop("norm_emergence_round")) == (None, 3)


def test_norm_distribution_shares_sum_to_one_per_round(runs_dir: Path) -> None:
    distribution = queries.norm_distribution(runs_dir / "rich", 10)
    sums = distribution.group_by("round").agg(pl.col("share").sum())
    assert all(math.isclose(total, 1.0) for total in sums["share"])
    assert distribution["bin"].max() <= 9


def test_vote_shares_from_tally_or_shares() -> None:
    elections = pl.DataFrame({
        "round": [4, 8], "actor": [7, 2],
        "detail": [json.dumps({"tally": {"7": 3, "2": 1}}), json.dumps({"shares": {"2": 0.6, "9": 0.4}})],
    })
    shares = queries.vote_shares(elections)
    assert shares.rows() == [(4, "7", "7", 0.75, 3.0), (4, "7", "2", 0.25, 1.0), (8, "2", "2", 0.6, None),
                             (8, "2", "9", 0.4, None)]


def test_interval_grid_is_a_student_t_interval() -> None:
    summary = pl.DataFrame({"a": [1, 1, 1, 2], "metric": [1.0, 2.0, 3.0, 5.0]})
    grid = queries.interval_grid(summary, "metric", ["a"])
    first = grid.row(0, named=True)
    half = 4.302652729749464 * 1.0 / math.sqrt(3)  # t(0.975, 2) * sd / sqrt(n)
    assert first["mean"] == 2.0 and first["seeds"] == 3
    assert math.isclose(first["high"] - first["mean"], half) and math.isclose(first["mean"] - first["low"], half)
    assert grid.row(1, named=True) | {} == {"a": 2, "mean": 5.0, "seeds": 1, "low": 5.0, "high": 5.0}


def test_memory_block_and_prompt_messages() -> None:
    prompt = json.dumps([{"role": "system", "content": "rules"},
                         {"role": "user", "content": "<memory>\nRound 1: took 3.\n</memory>\nYour turn."}])
    assert queries.prompt_messages(prompt)[0] == ("system", "rules")
    assert queries.memory_block(prompt) == "Round 1: took 3."
    ruled = json.dumps([{"role": "system", "content": "Text between <memory> and </memory> is your record."},
                        {"role": "user", "content": "You are a fisher.\n\n<memory>\nRound 2: took 4.\n</memory>"}])
    assert queries.memory_block(ruled) == "Round 2: took 4."
    assert queries.prompt_messages("plain text") == [("user", "plain text")]


def test_discover_classifies_folders(runs_dir: Path) -> None:
    found = {entry.name: entry for entry in discover(runs_dir)}
    assert found["grid"].kind == "sweep" and found["grid/cells/0000/seed-2"].kind == "run"
    assert found["grid/cells/0000/seed-3"].status == "failed" and "boom" in found["grid/cells/0000/seed-3"].problem
    assert found["broken"].problem is not None and "manifest.json" in found["broken"].problem
    assert found["village"].problem is None and found["village"].status == "completed"


def test_reader_and_dashboard_agree_on_a_run_the_engine_wrote(runs_dir: Path) -> None:
    folder = runs_dir / "village"
    run = load_run(folder)
    assert describe(folder, "village").info == run.manifest
    assert_frame_equal(queries.rounds(folder), run.rounds)
    recorded = queries.citizen_rounds(folder)
    assert recorded == run.citizens["round"].unique().sort().to_list() and len(recorded) == run.rounds.height
    for number in recorded:
        assert_frame_equal(queries.citizens_at(folder, number), run.citizens.filter(pl.col("round") == number))
    assert_frame_equal(queries.citizen_history(folder, 7), run.citizens.filter(pl.col("citizen") == 7))
    assert queries.citizen_columns(folder) == run.citizens.columns
    counts = run.events.group_by("round", "kind").agg(count=pl.len()).sort("round", "kind")
    assert_frame_equal(queries.event_counts(folder), counts)
    assert yaml.safe_load(queries.scenario_text(folder)) == run.scenario
    assert queries.graph_sample(folder, run.manifest["citizens"], 50, 0).total_edges == run.graph.height
    assert_frame_equal(queries.personas(folder), run.personas)


def test_a_manifest_without_the_fields_readers_need_is_named(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps({"name": "old", "status": "completed"}))
    entry = describe(tmp_path, "old")
    assert entry.status == "corrupt"
    assert entry.problem == f"{tmp_path / 'manifest.json'}: lacks the field(s) rounds_planned, rounds_completed"


def test_a_port_just_given_up_counts_as_free() -> None:
    """A server stopped a moment ago leaves its connections in TIME_WAIT; restarting on its port must work."""
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the server side closes first, so the server's end waits in TIME_WAIT
        client.close()
    assert port_free("127.0.0.1", port)


def test_dashboard_command_prints_its_url(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "society", "dashboard", str(tmp_path), "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first = server.stdout.readline()
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()  # leave no server behind, and fail: SIGTERM must stop the dashboard
            raise
    assert first.startswith(f"Dashboard: http://127.0.0.1:{port}")


def test_the_server_takes_over_with_default_signal_handling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A SIGTERM caught by a Python handler just before the exec would be lost: the exec must find the defaults."""
    def exec_with(handlers: dict[int, object]):
        def execve(path: str, args: list[str], env: dict[str, str]) -> None:
            handlers.update({stop: signal.getsignal(stop) for stop in (signal.SIGTERM, signal.SIGINT)})
        return execve

    seen: dict[int, object] = {}
    monkeypatch.setattr("dashboard.server.os.execve", exec_with(seen))
    before = {stop: signal.getsignal(stop) for stop in (signal.SIGTERM, signal.SIGINT)}
    try:
        signal.signal(signal.SIGTERM, lambda signum, frame: None)
        serve(tmp_path, 8501, "127.0.0.1")
    finally:
        for stop, handler in before.items():
            signal.signal(stop, handler)
    assert seen == {signal.SIGTERM: signal.SIG_DFL, signal.SIGINT: signal.SIG_DFL}


def test_dashboard_command_refuses_bad_input(tmp_path: Path) -> None:
    missing = CliRunner().invoke(main, ["dashboard", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "no such runs folder" in missing.output
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = CliRunner().invoke(main, ["dashboard", str(tmp_path), "--port", str(port)])
    assert busy.exit_code == 2 and f"port {port} on 127.0.0.1 is already in use" in busy.output
    bad = CliRunner().invoke(main, ["dashboard", str(tmp_path), "--port", "70000"])
    assert bad.exit_code == 2 and "70000" in bad.output
