"""Fork grids: sweeps whose cells are forks of one completed parent run, each changed at its round."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import polars as pl
import pytest
import yaml
from click.testing import CliRunner
from polars.testing import assert_frame_equal

from society import ScenarioError, Society, load_run
from society.cli import main
from society.core.runner import run_scenario
from society.rundir import layout
from society.scenario.schema import Scenario
from society.sweeps import SerialExecutor, load_grid, read_sweep, run_sweep
from society.sweeps.summary import final_metrics
from tests.shipped_tables import SCENARIOS
from tests.society.test_fork import TABLES, keeping, tables

GREED = "population.policies.3.factor"
"""The greedy group's factor in the small scenario (2.5), a field a running society takes up."""


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the parent run (the small scenario, 8 rounds, a checkpoint kept every 3 rounds)."""
    folder = tmp_path_factory.mktemp("forks")
    run_scenario(keeping(3), folder / "parent")
    return folder


def write_grid(folder: Path, name: str = "grid.yaml", **grid: object) -> Path:
    """A grid file in `folder` whose fork section defaults to the parent beside it."""
    path = folder / name
    path.write_text(yaml.safe_dump({"fork": {"run": "parent", "at": 4}} | grid, sort_keys=False))
    return path


def refusal(path: Path) -> tuple[str, str]:
    """The field and message of the first problem loading the grid at `path`."""
    with pytest.raises(ScenarioError) as caught:
        load_grid(path)
    problem = caught.value.problems[0]
    assert problem.file == str(path), problem
    return problem.field, problem.message


def test_a_setting_axis_gives_one_fork_per_value_diverging_at_its_round(home: Path, tmp_path: Path) -> None:
    """2.5 is the parent's own value: that fork is its parent but for the event saying the setting was made at round
    4 (a divergence); the others differ from round 4 on, not before."""
    parent = home / "parent"
    spec = load_grid(write_grid(home, "setting.yaml", axes={GREED: [1.5, 2.5, 6]}))
    assert spec.seeds == [11] and spec.fork is not None and spec.fork.run == str(parent.resolve())
    report = run_sweep(spec, tmp_path / "sweep", SerialExecutor())
    assert report.status == "completed" and report.completed == 3
    summary = pl.read_parquet(tmp_path / "sweep" / "summary.parquet")
    assert summary[GREED].to_list() == [1.5, 2.5, 6] and summary["seed"].to_list() == [11] * 3
    assert summary["divergence_round"].to_list() == [4, 4, 4]
    expected = tables(parent)
    for cell, run_dir in enumerate(summary["run_dir"]):
        fork = tmp_path / "sweep" / run_dir
        manifest = load_run(fork).manifest
        assert manifest["fork_at"] == 4
        assert manifest["fork_of"]["run"] == os.path.relpath(parent.resolve(), fork.resolve())
        got = tables(fork)
        for name in TABLES:
            before = pl.col("round") < 4
            assert_frame_equal(expected[name].filter(before), got[name].filter(before))
            if cell == 1:  # the same value: the same tables, but for the event that says the setting was made
                assert_frame_equal(expected[name], got[name].filter(pl.col("kind") != "intervention")
                                   if name == "events" else got[name])
    final = final_metrics(parent)
    assert_frame_equal(summary[1].select(final.columns), final)


def test_an_axis_over_the_fork_round_and_an_intervention_field(home: Path, tmp_path: Path) -> None:
    grid = write_grid(home, "at.yaml", fork={"run": "parent"}, intervene=[{"shock": {"severity": 0.2}}],
                      axes={"fork.at": [2, 4], "intervene.0.shock.severity": [0.3, 0.9]})
    run_sweep(load_grid(grid), tmp_path / "sweep", SerialExecutor())
    summary = pl.read_parquet(tmp_path / "sweep" / "summary.parquet")
    assert summary["fork.at"].to_list() == [2, 2, 4, 4]
    assert summary["intervene.0.shock.severity"].to_list() == [0.3, 0.9, 0.3, 0.9]
    assert summary["divergence_round"].to_list() == [2, 2, 4, 4]
    stock_at = []
    for run_dir, at, severity in summary.select("run_dir", "fork.at", "intervene.0.shock.severity").iter_rows():
        run = load_run(tmp_path / "sweep" / run_dir)
        assert run.manifest["fork_at"] == at
        assert run.manifest["fork_change"] == [{"when": {"round": at}, "shock": {"severity": severity}}]
        stock_at.append(run.rounds.filter(round=at)["stock_total"].item())
    assert stock_at[0] > stock_at[1] and stock_at[2] > stock_at[3]  # the harsher shock leaves less at its round


@pytest.mark.parametrize(
    ("grid", "field", "words"),
    [
        ({"axes": {GREED: [2]}, "seeds": [1, 2]}, "seeds", "a fork keeps its parent's seed (11)"),
        ({"axes": {"rounds": [3]}}, "rounds", "cannot change while the run plays"),
        ({"axes": {"fork.at": [3, 9]}}, "fork.at", "played rounds 1 to 8"),
        ({"fork": {"run": "parent"}, "axes": {GREED: [2]}}, "fork.at", "required"),
        ({"axes": {"fork.run": ["parent"]}}, "fork.run", "may vary fork.at but not"),
        ({"axes": {"intervene.1.shock.severity": [0.5]}, "intervene": [{"shock": {"severity": 0.2}}]},
         "intervene.1.shock.severity", "not an index"),
        ({"axes": {"intervene.0.shock.severity": [0.5, 2]}, "intervene": [{"shock": {"severity": 0.2}}]},
         "intervene.0.shock.severity", "cell 1 with intervene.0.shock.severity=2"),
        ({"axes": {GREED: [2]}, "intervene": [{"when": {"round": 2}, "shock": {"severity": 0.2}}]},
         "intervene.0.when", "leave when out"),
        ({"fork": {"run": "nowhere", "at": 2}, "axes": {GREED: [2]}}, "fork.run", "not a run folder"),
        ({"fork": {"run": ".", "at": 2}, "axes": {GREED: [2]}}, "fork.run", "not a run folder"),
        ({"fork": {"run": "../outside", "at": 2}, "axes": {GREED: [2]}}, "fork.run", "may only name a run folder"),
        ({"base": "x.yaml", "axes": {GREED: [2]}}, "base", "exactly one of base"),
        ({"fork": None, "base": "x.yaml", "intervene": [{"shock": {"severity": 0.2}}], "axes": {GREED: [2]}},
         "intervene", "only a fork grid"),
    ],
)
def test_a_bad_fork_grid_names_file_and_field(home: Path, grid: dict, field: str, words: str) -> None:
    got_field, message = refusal(write_grid(home, "bad.yaml", **grid))
    assert got_field == field and words in message, (got_field, message)


def test_a_parent_outside_the_grid_tree_and_the_current_folder_is_refused(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Named by an absolute path or a symlink, a run folder outside both is refused unread; inside the current
    folder it is taken."""
    grids = tmp_path / "grids"
    grids.mkdir()
    (grids / "link").symlink_to(home / "parent")
    monkeypatch.chdir(tmp_path)
    for run in (str(home / "parent"), "link"):
        field, message = refusal(write_grid(grids, fork={"run": run, "at": 2}, axes={GREED: [2]}))
        assert field == "fork.run" and "the grid file's folder tree or the current directory" in message
    monkeypatch.chdir(home)
    assert load_grid(write_grid(grids, fork={"run": "link", "at": 2}, axes={GREED: [2]})).fork is not None


def test_an_unfinished_parent_is_refused(home: Path, tmp_path: Path) -> None:
    shutil.copytree(home / "parent", tmp_path / "parent")
    manifest = json.loads((tmp_path / "parent" / layout.MANIFEST).read_text())
    (tmp_path / "parent" / layout.MANIFEST).write_text(json.dumps(manifest | {"status": "interrupted"}))
    field, message = refusal(write_grid(tmp_path, axes={GREED: [2]}))
    assert field == "fork.run" and "a fork starts from a completed run" in message


def test_a_problem_in_the_parents_own_scenario_is_named_as_the_parents(home: Path, tmp_path: Path) -> None:
    """Not as a problem of the grid's axis: the grid sets the greedy factor; the parent's capacity is broken."""
    shutil.copytree(home / "parent", tmp_path / "parent")
    recorded = tmp_path / "parent" / layout.SCENARIO
    recorded.write_text(recorded.read_text().replace("capacity: 2000.0", "capacity: -5.0"))
    field, message = refusal(write_grid(tmp_path, axes={GREED: [2]}))
    assert field == "fork.run" and "the parent run's own scenario has a problem" in message, (field, message)
    assert f"{recorded}: commons.capacity:" in message


def test_an_interrupted_fork_sweep_resumes_skipping_completed_forks(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C in the second fork's round 6 stops the sweep there; resumed, the first fork is left as it was and
    every fork comes out as an uninterrupted sweep's."""
    grid = write_grid(home, "resume.yaml", axes={GREED: [2, 4, 6]})
    folder = tmp_path / "sweep"
    original_step, sixths = Society.step, []

    def stop_in_the_second_round_6(self: Society) -> None:
        original_step(self)
        sixths.extend([self.round] if self.round == 6 else [])
        if len(sixths) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(Society, "step", stop_in_the_second_round_6)
    report = run_sweep(load_grid(grid), folder, SerialExecutor())
    monkeypatch.undo()
    assert report.status == "interrupted" and report.completed == 1
    first, second = folder / "cells/0000/seed-11", folder / "cells/0001/seed-11"
    assert json.loads((second / layout.MANIFEST).read_text())["status"] == "interrupted"
    assert not (folder / "cells/0002").exists()
    finished = (first / layout.MANIFEST).stat().st_mtime_ns
    monkeypatch.chdir(home)  # the parent is checked again: inside the sweep folder's tree or the current directory
    assert read_sweep(folder) == load_grid(grid)
    resumed = CliRunner().invoke(main, ["sweep", "--resume", str(folder), "--workers", "1", "--quiet"])
    assert resumed.exit_code == 0, resumed.output
    assert (first / layout.MANIFEST).stat().st_mtime_ns == finished
    run_sweep(load_grid(grid), tmp_path / "whole", SerialExecutor())
    for cell in ("0000", "0001", "0002"):
        whole, again = tables(tmp_path / "whole" / f"cells/{cell}/seed-11"), tables(folder / f"cells/{cell}/seed-11")
        for name in TABLES:
            assert_frame_equal(again[name], whole[name])
    summary = pl.read_parquet(folder / "summary.parquet")
    assert_frame_equal(summary, pl.read_parquet(tmp_path / "whole" / "summary.parquet"))
    assert summary["status"].to_list() == ["completed"] * 3 and summary["divergence_round"].to_list() == [4, 4, 4]


def test_a_resumed_sweep_checks_the_parent_its_sweep_json_names_again(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sweep.json edited to name a run outside the sweep folder's tree and the current directory, or a run that is
    not the parent the sweep forked, is refused on resume."""
    monkeypatch.chdir(home)
    folder = tmp_path / "sweep"
    run_sweep(load_grid(write_grid(home, "edited.yaml", axes={GREED: [2]})), folder, SerialExecutor())
    record = json.loads((folder / layout.SWEEP).read_text())
    outside = shutil.copytree(home / "parent", tmp_path / "elsewhere")
    other = shutil.copytree(home / "parent", home / "other")
    manifest = json.loads((other / layout.MANIFEST).read_text())
    (other / layout.MANIFEST).write_text(json.dumps(manifest | {"created": "2000-01-01T00:00:00"}))
    for run, words in ((outside, "the sweep folder's tree or the current directory"),
                       (other, "is not the run this sweep forked")):
        (folder / layout.SWEEP).write_text(json.dumps(record | {"fork": record["fork"] | {"run": str(run)}}))
        resumed = CliRunner().invoke(main, ["sweep", "--resume", str(folder), "--quiet"])
        assert resumed.exit_code == 2 and f"{folder / layout.SWEEP}" in resumed.output, resumed.output
        assert "fork.run: " in resumed.output and words in resumed.output, resumed.output


def test_a_fork_sweep_moved_with_its_parent_resumes_where_it_lies(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sweep.json names the parent relative to the sweep folder: moved together to another folder, the sweep resumes
    and summarises there (a missing fork played again from the parent beside it, divergences read against it)."""
    first, moved = tmp_path / "first", tmp_path / "moved"
    shutil.copytree(home / "parent", first / "parent")
    monkeypatch.chdir(first)
    run_sweep(load_grid(write_grid(first, axes={GREED: [2, 6]})), first / "sweep", SerialExecutor())
    assert json.loads((first / "sweep" / layout.SWEEP).read_text())["fork"]["run"] == "../parent"
    shutil.rmtree(first / "sweep" / "cells" / "0001")
    moved.mkdir()
    for name in ("parent", "sweep"):
        shutil.move(first / name, moved / name)
    shutil.rmtree(first)
    monkeypatch.chdir(moved)
    spec = read_sweep(Path("sweep"))
    assert spec.fork is not None and spec.fork.run == str((moved / "parent").resolve())
    resumed = CliRunner().invoke(main, ["sweep", "--resume", "sweep", "--workers", "1", "--quiet"])
    assert resumed.exit_code == 0, resumed.output
    summary = pl.read_parquet(moved / "sweep" / "summary.parquet")
    assert summary["status"].to_list() == ["completed"] * 2 and summary["divergence_round"].to_list() == [4, 4]
    assert load_run(moved / "sweep" / summary["run_dir"][1]).manifest["fork_of"]["run"] == "../../../../parent"
    assert json.loads((moved / "sweep" / layout.SWEEP).read_text())["fork"]["run"] == "../parent"


def test_an_older_sweep_json_naming_its_parent_absolute_still_resumes(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sweep.json files written before parents were recorded relative name them by their resolved absolute path;
    resumed, the sweep records its parent relative, as it would now."""
    monkeypatch.chdir(home)
    folder = tmp_path / "sweep"
    run_sweep(load_grid(write_grid(home, "older.yaml", axes={GREED: [2, 6]})), folder, SerialExecutor())
    record = json.loads((folder / layout.SWEEP).read_text())
    assert record["fork"]["run"] == os.path.relpath(home / "parent", folder)
    older = str((home / "parent").resolve())
    (folder / layout.SWEEP).write_text(json.dumps(record | {"fork": record["fork"] | {"run": older}}))
    shutil.rmtree(folder / "cells" / "0001")
    resumed = CliRunner().invoke(main, ["sweep", "--resume", str(folder), "--workers", "1", "--quiet"])
    assert resumed.exit_code == 0, resumed.output
    summary = pl.read_parquet(folder / "summary.parquet")
    assert summary["status"].to_list() == ["completed"] * 2 and summary["divergence_round"].to_list() == [4, 4]
    assert json.loads((folder / layout.SWEEP).read_text())["fork"]["run"] == record["fork"]["run"]  # relative now


@pytest.mark.parametrize("run", ["../elsewhere", "../x/sweep/parent"])
def test_a_relative_parent_leaving_the_sweep_folder_and_the_current_folder_is_refused(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: str
) -> None:
    """Resolved against the sweep folder (tmp/x/sweep), never the current one (tmp/home): `../x/sweep/parent`, from
    the current folder the run inside the sweep folder, names tmp/x/x/sweep/parent; both leave the two trees."""
    monkeypatch.chdir(home)
    folder = tmp_path / "x" / "sweep"
    run_sweep(load_grid(write_grid(home, "leaving.yaml", axes={GREED: [2]})), folder, SerialExecutor())
    shutil.copytree(home / "parent", folder / "parent")
    shutil.copytree(home / "parent", tmp_path / "x" / "elsewhere")
    record = json.loads((folder / layout.SWEEP).read_text())
    (folder / layout.SWEEP).write_text(json.dumps(record | {"fork": record["fork"] | {"run": run}}))
    (tmp_path / "home").mkdir()
    monkeypatch.chdir(tmp_path / "home")
    resumed = CliRunner().invoke(main, ["sweep", "--resume", str(folder), "--quiet"])
    assert resumed.exit_code == 2 and f"{folder / layout.SWEEP}: fork.run: " in resumed.output, resumed.output
    assert "the sweep folder's tree or the current directory" in resumed.output, resumed.output


def test_the_shipped_fork_grid_after_its_parent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's two commands, in a copy of the repository's layout: play the parent into runs/, then sweep
    forks of it. The parent's lake collapses at month 4; expelling the outsider saves it, fuller the sooner."""
    (tmp_path / "scenarios" / "grids").mkdir(parents=True)
    grid = tmp_path / "scenarios" / "grids" / "newcomer_expelled.yaml"
    shutil.copyfile(SCENARIOS / "grids" / "newcomer_expelled.yaml", grid)
    monkeypatch.chdir(tmp_path)
    played = CliRunner().invoke(main, ["run", str(SCENARIOS / "govsim_newcomer.yaml"), "--out", "runs/govsim_newcomer",
                                       "--quiet"])
    assert played.exit_code == 0, played.output
    swept = CliRunner().invoke(main, ["sweep", str(grid), "--out", "runs/expelled", "--workers", "1", "--quiet"])
    assert swept.exit_code == 0, swept.output
    summary = pl.read_parquet(tmp_path / "runs" / "expelled" / "summary.parquet")
    assert load_run(tmp_path / "runs" / "govsim_newcomer").rounds["collapsed"].to_list()[-1]
    assert summary["fork.at"].to_list() == [3, 4] and summary["divergence_round"].to_list() == [3, 4]
    assert not summary["collapsed"].any() and summary["survival"].to_list() == [12, 12]
    assert summary["stock_total"][0] > summary["stock_total"][1]


def test_llm_forks_start_from_the_parents_cache_and_share_the_sweeps_servers(tmp_path: Path) -> None:
    """A pool of two workers forks an LLM parent: each fork holds the parent's answers, asks through the sweep's
    share of the servers, and the fork whose value is the parent's asks the model nothing."""
    from tests.society.test_sweep import FakeModelServer, llm_base, society

    server = FakeModelServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        parent = llm_base(backend="server", base_urls=[server.base_url], concurrency=4) | {"rounds": 4}
        run_scenario(Scenario.model_validate(parent), tmp_path / "parent")
        asked = server.requests
        assert asked > 0
        grid = write_grid(tmp_path, fork={"run": "parent", "at": 3}, axes={"schedule.2.params.cost": [1, 2]})
        result = society("sweep", str(grid), "--out", str(tmp_path / "sweep"), "--workers", "2", "--quiet")
        assert result.returncode == 0, result.stderr
    finally:
        server.shutdown()
        server.server_close()
    summary = pl.read_parquet(tmp_path / "sweep" / "summary.parquet")
    assert summary["status"].to_list() == ["completed"] * 2 and summary["valid"].to_list() == [True, True]
    assert summary["divergence_round"][0] == 3  # the parent's value: its tables differ only by the setting's event
    for run_dir in summary["run_dir"]:
        run = load_run(tmp_path / "sweep" / run_dir)
        assert (tmp_path / "sweep" / run_dir / layout.LLM_CACHE).is_file()
        assert run.scenario["llm"]["concurrency"] == 2 and run.scenario["llm"]["base_urls"] == [server.base_url]
    same = load_run(tmp_path / "sweep" / summary["run_dir"][0]).llm_calls
    assert same.filter(pl.col("round") >= 3).height > 0 and same.filter(pl.col("round") >= 3)["cached"].all()
