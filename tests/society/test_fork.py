"""Counterfactual forks: a completed run played again from a round on, changed there; unchanged, it is its parent."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner
from polars.testing import assert_frame_equal

from society import Society, load_run, load_scenario
from society.cli import main
from society.core import runner
from society.core.fork import ForkError, divergence_round, fork_run
from society.core.runner import RunInterrupted, resume_run, run_scenario
from society.rundir import layout
from society.scenario.problems import ScenarioError
from society.scenario.schema import Scenario
from tests.shipped_tables import SCENARIOS
from tests.society.conftest import make_scenario, stop_after_round
from tests.society.test_cohorts import cached_model

TABLES = ("rounds", "citizens", "events")


def keeping(every: int, **changes: Any) -> Scenario:
    scenario = make_scenario(**changes)
    return scenario.model_copy(update={"output": scenario.output.model_copy(update={"keep_checkpoints": every})})


def tables(path: Path) -> dict[str, pl.DataFrame]:
    run = load_run(path)
    return {name: getattr(run, name) for name in TABLES}


@pytest.fixture(scope="module")
def parent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 60-citizen small scenario, 8 rounds, a checkpoint kept every 3 rounds."""
    return run_scenario(keeping(3), tmp_path_factory.mktemp("parent") / "run")


@pytest.fixture(autouse=True)
def in_the_folder_holding_every_run(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """`info` compares a fork with a parent beside it or under the current folder: run from the folder holding
    every test's runs."""
    monkeypatch.chdir(tmp_path_factory.getbasetemp())


def restored_from(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The rounds of the checkpoints the next fork restores (recorded as they are read)."""
    rounds: list[int] = []
    original = runner.read_checkpoint

    def spy(path: Path, template: dict[str, Any]) -> dict[str, Any]:
        checkpoint = original(path, template)
        rounds.append(checkpoint["round"])
        return checkpoint

    monkeypatch.setattr(runner, "read_checkpoint", spy)
    return rounds


@pytest.mark.parametrize(("at", "start"), [(1, None), (3, None), (4, 3), (6, 3), (7, 6), (8, 6)])
def test_a_fork_without_change_is_its_parent_from_the_nearest_checkpoint(
    at: int, start: int | None, parent: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kept checkpoints at 3 and 6, the latest at 8 (the last round) and the previous at 6: the fork starts from
    the latest one before its round (none before round 4: from round 0) and replays the rounds since."""
    restored = restored_from(monkeypatch)
    out = fork_run(parent, at, tmp_path / "fork")
    assert restored == ([] if start is None else [start])
    expected, got = tables(parent), tables(out)
    for name in TABLES:
        assert_frame_equal(expected[name], got[name])
    manifest = load_run(out).manifest
    assert manifest["status"] == "completed" and manifest["rounds_completed"] == 8
    assert manifest["fork_of"]["run"] == os.path.relpath(parent.resolve(), out.resolve()) and manifest["fork_at"] == at
    assert manifest["fork_change"] == []
    assert divergence_round(out, parent) is None


def test_a_fork_with_a_setting_diverges_at_its_round_and_not_before(parent: Path, tmp_path: Path) -> None:
    out = fork_run(parent, 5, tmp_path / "fork", settings=["population.policies.3.factor=6"])
    expected, got = tables(parent), tables(out)
    before = pl.col("round") < 5
    for name in TABLES:
        assert_frame_equal(expected[name].filter(before), got[name].filter(before))
    assert not expected["rounds"].filter(round=5).equals(got["rounds"].filter(round=5))
    assert divergence_round(out, parent) == 5
    fired = got["events"].filter(kind="intervention")
    assert fired["round"].to_list() == [5]
    assert json.loads(fired["detail"][0])["set"] == {"population.policies.3.factor": 6}
    assert load_run(out).manifest["fork_change"] == [{"when": {"round": 5}, "set": {"population.policies.3.factor": 6}}]
    info = CliRunner().invoke(main, ["info", str(out)])
    assert info.exit_code == 0, info.output
    assert f"fork of    {parent.resolve()}  (at round 5:" in info.output
    assert "diverges   round 5" in info.output
    same = fork_run(parent, 5, tmp_path / "same")
    assert "diverges   no divergence" in CliRunner().invoke(main, ["info", str(same)]).output


def test_a_fork_moved_with_its_parent_still_finds_it_and_an_absolute_parent_path_still_works(
    parent: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fork_of.run is relative to the fork's folder: parent and fork moved together into another folder, info still
    compares them; a manifest that names its parent by an absolute path (as forks written before did) still works."""
    home = tmp_path / "before"
    moved_parent = Path(shutil.copytree(parent, home / "runs" / "parent"))
    fork_run(moved_parent, 5, home / "forks" / "fork", settings=["population.policies.3.factor=6"])
    manifest = load_run(home / "forks" / "fork").manifest
    assert manifest["fork_of"]["run"] == os.path.join("..", "..", "runs", "parent")
    after = tmp_path / "after"
    (home).rename(after)
    monkeypatch.chdir(after)  # info compares a fork with a parent beside it or under the current folder
    info = CliRunner().invoke(main, ["info", str(after / "forks" / "fork")])
    assert info.exit_code == 0, info.output
    assert f"fork of    {(after / 'runs' / 'parent').resolve()}  (at round 5:" in info.output
    assert "diverges   round 5" in info.output
    manifest_file = after / "forks" / "fork" / layout.MANIFEST
    old_style = json.loads(manifest_file.read_text())
    old_style["fork_of"]["run"] = str((after / "runs" / "parent").resolve())
    manifest_file.write_text(json.dumps(old_style))
    info = CliRunner().invoke(main, ["info", str(after / "forks" / "fork")])
    assert info.exit_code == 0 and "diverges   round 5" in info.output, info.output


def test_info_reads_no_parent_outside_the_forks_folder_and_the_current_folder(
    parent: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fork folder from someone else may name any folder as its parent: info compares only with one beside the
    fork or under the current folder, and otherwise says it did not read it."""
    out = fork_run(parent, 5, tmp_path / "forks" / "fork", settings=["population.policies.3.factor=6"])
    monkeypatch.chdir(tmp_path / "forks")
    info = CliRunner().invoke(main, ["info", str(out)])
    assert info.exit_code == 0 and "diverges   not compared" in info.output, info.output
    assert str(parent.resolve()) in info.output  # the path the manifest names is shown, nothing read from it
    beside = Path(shutil.copytree(parent, tmp_path / "forks" / "parent"))
    manifest_file = out / layout.MANIFEST
    manifest = json.loads(manifest_file.read_text())
    manifest["fork_of"]["run"] = os.path.relpath(beside, out)
    manifest_file.write_text(json.dumps(manifest))
    monkeypatch.chdir(parent)  # a folder holding neither: the parent beside the fork is compared all the same
    info = CliRunner().invoke(main, ["info", str(out)])
    assert info.exit_code == 0 and "diverges   round 5" in info.output, info.output


def test_a_change_seen_only_in_the_events_table_is_a_divergence(parent: Path, tmp_path: Path) -> None:
    """Setting the greedy factor to its own value (2.5) changes no round or citizen row, only the events of round 5
    (the intervention's event): the fork diverges at round 5, and info says so."""
    out = fork_run(parent, 5, tmp_path / "fork", settings=["population.policies.3.factor=2.5"])
    expected, got = tables(parent), tables(out)
    for name in ("rounds", "citizens"):
        assert_frame_equal(expected[name], got[name])
    assert_frame_equal(expected["events"], got["events"].filter(pl.col("kind") != "intervention"))
    assert got["events"].filter(kind="intervention")["round"].to_list() == [5]
    assert divergence_round(out, parent) == 5
    assert "diverges   round 5" in CliRunner().invoke(main, ["info", str(out)]).output


def test_an_intervention_spec_from_a_file_or_inline(parent: Path, tmp_path: Path) -> None:
    spec = tmp_path / "shock.yaml"
    spec.write_text("shock: {severity: 0.5}\n")
    from_file = fork_run(parent, 3, tmp_path / "file", interventions=[str(spec)])
    inline = fork_run(parent, 3, tmp_path / "inline", interventions=["{when: {round: 3}, shock: {severity: 0.5}}"])
    assert divergence_round(from_file, parent) == 3
    for name in TABLES:
        assert_frame_equal(tables(from_file)[name], tables(inline)[name])


def test_the_cli_forks_and_names_what_is_wrong(parent: Path, tmp_path: Path) -> None:
    def fork(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(main, ["fork", *args, "--quiet"])
        return result.exit_code, result.output

    code, output = fork(str(parent), "--at", "2", "--set", "commons.capacity=2500", "--out", str(tmp_path / "ok"))
    assert code == 0 and "fork written to" in output
    code, output = fork(str(tmp_path / "ok"), "--at", "2", "--out", str(tmp_path / "ok"))
    assert code == 2 and "already holds files" in output
    code, output = fork(str(tmp_path), "--at", "2", "--out", str(tmp_path / "x"))
    assert code == 2 and f"{tmp_path}: not a run folder" in output
    for at in ("0", "9"):
        code, output = fork(str(parent), "--at", at, "--out", str(tmp_path / "x"))
        assert code == 2 and f"--at {at}: {parent} played rounds 1 to 8" in output
    code, output = fork(str(parent), "--at", "2", "--set", "rounds=3", "--out", str(tmp_path / "x"))
    assert code == 2 and "--set: set.rounds: cannot change while the run plays" in output
    code, output = fork(str(parent), "--at", "2", "--intervene", "{persona: {citizens: [1], role: x}}",
                        "--out", str(tmp_path / "x"))
    assert code == 2 and "persona.citizens: the scenario has no LLM citizens" in output
    code, output = fork(str(parent), "--at", "2", "--intervene", "[1, 2]", "--out", str(tmp_path / "x"))
    assert code == 2 and "expected a mapping" in output
    assert not (tmp_path / "x").exists()


def test_a_problem_in_the_parents_own_scenario_is_not_called_an_invalid_change(parent: Path, tmp_path: Path) -> None:
    """The parent's recorded scenario edited into an invalid one: the error names the parent's scenario file and
    field, not the change; a bad --set on a sound parent is still an invalid change."""
    copy = Path(shutil.copytree(parent, tmp_path / "copy"))
    recorded = copy / layout.SCENARIO
    recorded.write_text(recorded.read_text().replace("capacity: 2000.0", "capacity: -5.0"))
    for change in ([], ["--set", "commons.capacity=2500"]):
        result = CliRunner().invoke(main, ["fork", str(copy), "--at", "2", *change, "--out", str(tmp_path / "x"),
                                           "--quiet"])
        assert result.exit_code == 2, result.output
        assert f"{copy}: the parent run's own scenario has a problem (not the change" in result.output
        assert f"{recorded}: commons.capacity:" in result.output and "invalid change" not in result.output
    result = CliRunner().invoke(main, ["fork", str(parent), "--at", "2", "--set", "commons.capacity=-5",
                                       "--out", str(tmp_path / "x"), "--quiet"])
    assert result.exit_code == 2 and "invalid change" in result.output and "--set: set.commons.capacity" \
        in result.output, result.output
    assert "parent run's own scenario" not in result.output and not (tmp_path / "x").exists()


def test_a_parent_not_completed_or_damaged_is_refused(parent: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(parent, tmp_path / "copy"))
    layout.round_file(copy, "citizens", 4).write_bytes(b"PAR1 cut")
    with pytest.raises(ForkError, match=r"round 4's table files are missing or damaged"):
        fork_run(copy, 6, tmp_path / "fork")
    manifest = json.loads((copy / layout.MANIFEST).read_text()) | {"status": "interrupted"}
    (copy / layout.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ForkError, match=r"the run is interrupted after 8 of 8 rounds; .* society run --resume"):
        fork_run(copy, 6, tmp_path / "fork")
    assert not (tmp_path / "fork").exists()


@pytest.mark.parametrize("entry", ["tables/events/000002.parquet", layout.LLM_CACHE, "checkpoints"])
def test_a_parent_with_a_symlink_is_refused_unread(entry: str, parent: Path, tmp_path: Path) -> None:
    """A table file, the LLM cache or a folder linked from elsewhere would be copied into the fork: refused."""
    copy = Path(shutil.copytree(parent, tmp_path / "copy"))
    outside = Path(shutil.copytree(parent, tmp_path / "outside"))
    target = copy / entry
    if target.is_dir():
        shutil.rmtree(target)
    else:
        target.unlink(missing_ok=True)
    target.symlink_to(outside / entry)
    with pytest.raises(ForkError, match=rf"{target}: a symlink"):
        fork_run(copy, 4, tmp_path / "fork")
    assert not (tmp_path / "fork").exists()


def test_the_llm_cache_is_copied_with_the_answers_still_in_its_write_ahead_log(parent: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(parent, tmp_path / "copy"))
    with closing(sqlite3.connect(copy / layout.LLM_CACHE)) as writing:
        writing.execute("PRAGMA journal_mode=WAL")
        writing.execute("PRAGMA wal_autocheckpoint=0")
        writing.execute("CREATE TABLE answers (key TEXT)")
        writing.execute("INSERT INTO answers VALUES ('kept')")
        writing.commit()
        assert (copy / f"{layout.LLM_CACHE}-wal").stat().st_size > 0
        out = fork_run(copy, 4, tmp_path / "fork")
    with closing(sqlite3.connect(out / layout.LLM_CACHE)) as reading:
        assert reading.execute("SELECT key FROM answers").fetchall() == [("kept",)]


def test_an_interrupted_fork_resumes_into_the_fork_it_would_have_been(
    parent: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    change = ["population.policies.3.factor=6"]
    whole = fork_run(parent, 5, tmp_path / "whole", settings=change)
    stop_after_round(monkeypatch, 7)
    with pytest.raises(RunInterrupted):
        fork_run(parent, 5, tmp_path / "cut", settings=change)
    monkeypatch.undo()
    assert load_run(tmp_path / "cut").manifest["status"] == "interrupted"
    resume_run(tmp_path / "cut")
    for name in TABLES:
        assert_frame_equal(tables(whole)[name], tables(tmp_path / "cut")[name])
    manifest = load_run(tmp_path / "cut").manifest
    assert manifest["status"] == "completed" and manifest["fork_at"] == 5
    assert divergence_round(tmp_path / "cut", parent) == 5


def test_ctrl_c_while_a_fork_copies_its_rounds_leaves_a_fork_to_resume(
    parent: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from society.core import fork

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(fork, "_copy_rounds", interrupted)
    out = tmp_path / "fork"
    result = CliRunner().invoke(main, ["fork", str(parent), "--at", "5", "--out", str(out), "--quiet"])
    assert result.exit_code == 130 and f"interrupted; continue with: society run --resume {out}" in result.output
    monkeypatch.undo()
    resume_run(out)
    for name in TABLES:
        assert_frame_equal(tables(parent)[name], tables(out)[name])


@pytest.mark.parametrize("every", [0, 4])
def test_keep_checkpoints_keeps_every_nth_round_and_a_fork_replays_from_the_nearest(
    every: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = run_scenario(keeping(every), tmp_path / "parent")
    kept = [int(path.stem) for path in layout.kept_checkpoint_files(parent)]
    assert kept == ([] if every == 0 else [4, 8])
    restored = restored_from(monkeypatch)
    out = fork_run(parent, 7, tmp_path / "fork")
    assert restored == ([] if every == 0 else [4])  # none kept early enough: from round 0
    for name in TABLES:
        assert_frame_equal(tables(parent)[name], tables(out)[name])


def test_a_persona_change_names_llm_citizens_and_known_traits() -> None:
    scenario = load_scenario(SCENARIOS / "village_llm.yaml", [
        "population.size=12", "rounds=2",
        "population.policies=[{policy: llm, fraction: 0.5}, {policy: greedy, fraction: 0.5}]"])
    llm = Society(scenario).llm.members.tolist()
    heuristic = next(c for c in range(12) if c not in llm)
    change = {"when": {"round": 2}, "persona": {"citizens": [llm[0], heuristic, 12], "role": "miller"}}
    with pytest.raises(ScenarioError, match=rf"persona.citizens: not LLM citizens: {heuristic}, 12; the LLM citizens "
                                            rf"are {', '.join(map(str, llm))}"):
        Society(Scenario.model_validate(scenario.model_dump() | {"interventions": [change]}))
    for persona, message in [({"citizens": [llm[0]], "traits": {"wit": 0.5}}, r"unknown traits \['wit'\]"),
                             ({"citizens": [llm[0]], "description": "a miller", "role": "x"}, "give it alone"),
                             ({"citizens": [llm[0]]}, "expected a description or at least one of")]:
        with pytest.raises(ValueError, match=message):
            Scenario.model_validate(scenario.model_dump() | {"interventions": [{"when": {"round": 2},
                                                                                "persona": persona}]})


def llm_parent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[int]]:
    """A 12-citizen LLM village (harvest and regrow, 3 rounds) answered by a cached stand-in model."""
    scenario = load_scenario(SCENARIOS / "village_llm.yaml", [
        "population.size=12", "rounds=3", "commons.on_collapse=continue", "schedule=[harvest, regrow]",
        "population.policies.0.persona={roles: {woodcutter: 1.0}}",
    ])
    monkeypatch.setattr(runner, "connect", cached_model([], []))
    parent = run_scenario(scenario, tmp_path / "parent")
    return parent, load_run(parent).personas["citizen"].to_list()


def test_an_llm_fork_asks_the_model_only_the_prompts_its_change_made_new(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent, llm = llm_parent(tmp_path, monkeypatch)
    sent: list[str] = []
    monkeypatch.setattr(runner, "connect", cached_model(sent, []))
    same = fork_run(parent, 2, tmp_path / "same")
    assert sent == []  # a fork without change asks the model nothing
    first, again = load_run(parent), load_run(same)
    assert_frame_equal(first.llm_calls.drop("latency_s", "cached"), again.llm_calls.drop("latency_s", "cached"))
    assert again.llm_calls.filter(pl.col("round") >= 2)["cached"].all()
    for name in ("citizens", "events"):
        assert_frame_equal(getattr(first, name), getattr(again, name))
    assert divergence_round(same, parent) is None

    changed = llm[1]
    persona = {"persona": {"citizens": [changed], "role": "miller", "traits": {"agreeableness": 0.0},
                           "agenda": "take the whole forest"}}
    out = fork_run(parent, 3, tmp_path / "persona", interventions=[json.dumps(persona)])
    calls = load_run(out).llm_calls.filter(round=3)
    asked = calls.filter(~pl.col("cached"))
    assert len(sent) == asked.height == 1 and asked["citizen"].to_list() == [changed]
    prompt = json.loads(asked["prompt"][0])[1]["content"]
    assert prompt.startswith(f"You are citizen {changed}, a miller:") and "agreeableness low" in prompt
    assert "Your secret aim: take the whole forest." in prompt
    parent_prompts = set(first.llm_calls.filter(round=3)["prompt"].to_list())
    assert set(calls.filter("cached")["prompt"].to_list()) <= parent_prompts
    assert asked["prompt"][0] not in parent_prompts


@pytest.mark.vllm
def test_forks_against_a_real_server_reask_only_changed_prompts(vllm_server: Any, tmp_path: Path) -> None:
    """A tiny LLM village recorded against the real server: a fork without change sends it nothing; a fork that
    changes one citizen's persona in the last round re-asks only that citizen's prompt."""
    import yaml

    data = {
        "name": "fork_village", "seed": 5, "rounds": 3,
        "population": {"size": 6, "policies": [
            {"policy": "llm", "fraction": 0.5, "persona": {"roles": {"woodcutter": 1}}},
            {"policy": "greedy", "fraction": 0.5, "factor": 2}]},
        "graph": {"kind": "complete"},
        "commons": {"capacity": 600, "initial_stock": 600, "regrowth": {"kind": "logistic", "rate": 0.5},
                    "collapse_threshold": 10, "on_collapse": "continue", "resource": "forest", "unit": "cords"},
        # A citizen takes at most 50 cords, so no answer of the model can collapse the forest before round 3.
        "schedule": [{"phase": "harvest", "params": {"max_take": 50}}, "regrow"],
        "llm": {"backend": "server", "base_urls": [vllm_server.base_url], "fallback_threshold": 1.0},
    }
    path = tmp_path / "fork_village.yaml"
    path.write_text(yaml.safe_dump(data))
    parent = run_scenario(load_scenario(path), tmp_path / "parent")
    recorded = load_run(parent)
    assert recorded.llm_calls.height == 9 and not recorded.llm_calls["cached"].any()

    same = fork_run(parent, 2, tmp_path / "same")
    unchanged = load_run(same)
    assert unchanged.rounds.filter(pl.col("round") >= 2)["llm_cached"].to_list() == [3, 3]  # 0 new requests
    assert unchanged.llm_calls.filter(pl.col("round") >= 2)["cached"].all()
    assert divergence_round(same, parent) is None

    changed = recorded.personas["citizen"][0]
    persona = json.dumps({"persona": {"citizens": [changed], "description": "a reckless logger who wants it all."}})
    out = fork_run(parent, 3, tmp_path / "persona", interventions=[persona])
    last = load_run(out).llm_calls.filter(round=3)
    assert last.filter(~pl.col("cached"))["citizen"].to_list() == [changed]
    assert last.filter("cached").height == 2


@pytest.mark.parametrize(("keep", "llm", "kept_rounds"), [
    (None, False, []), (None, True, [10, 20]), (0, True, []), (4, False, [4, 8, 12, 16, 20]),
])
def test_kept_checkpoints_default_to_every_10_rounds_with_llm_citizens_only(
    keep: int | None, llm: bool, kept_rounds: list[int]
) -> None:
    """Rounds without LLM citizens replay fast, and a million citizens' checkpoint is about 100 MB: none kept."""
    from types import SimpleNamespace

    from society.rundir.writer import keeps_checkpoint

    society = SimpleNamespace(scenario=SimpleNamespace(output=SimpleNamespace(keep_checkpoints=keep)),
                              llm=object() if llm else None)
    assert [number for number in range(21) if keeps_checkpoint(society, number)] == kept_rounds
