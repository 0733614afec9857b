"""Counterfactual forks: a new run from a completed run's state after round k-1, changed at the start of round k.

The fork's scenario is its parent's with the change appended to its `interventions` (due at round k), so the fork
is an ordinary run folder: its `scenario.yaml` replays it from round 0, and `society run --resume` continues it.
Rounds before k are the parent's table files, copied; the state after round k-1 is the parent's latest checkpoint
before round k (`output.keep_checkpoints`), brought to round k-1 by replaying the rounds since (deterministic:
LLM answers come from the copy of the parent's response cache, so the model is asked only prompts that changed).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from society.core.model import Society
from society.core.runner import _play, _restore_latest, recorded_scenario
from society.rundir.checkpoint import fork_checkpoint_files
from society.rundir.layout import (
    LLM_CACHE,
    MANIFEST,
    SCENARIO,
    RunDataError,
    TABLES,
    Manifest,
    checked_manifest,
    first_damaged_round,
    is_run_dir,
    read_scenario,
    read_table,
    round_file,
    table_files,
    temporary_file,
)
from society.rundir.writer import RunDirectory
from society.scenario.files import parse_override, read_yaml
from society.scenario.problems import Problem, ScenarioError
from society.scenario.schema import Scenario

VOLATILE_COLUMNS = ("llm_cached", "cached", "latency_s")
"""Columns that say how and how fast LLM answers were obtained (asked or cached), not what happened: never a
divergence."""


class ForkError(ValueError):
    """A fork cannot start: the parent is not a completed run folder, or the round or the change is not one it
    can take. One line naming the folder or the option."""


def fork_run(
    parent: Path, at: int, out: Path, settings: Sequence[str] = (), interventions: Sequence[str | dict[str, Any]] = (),
    progress: bool = False, llm: dict[str, Any] | None = None,
) -> Path:
    """Fork the completed run `parent` at round `at` into the new run folder `out` and play it to its end.

    `settings` are `path=value` changes (the fields `interventions: set` may change); `interventions` are
    intervention specs (YAML text, a YAML file or a mapping), each one entry of a scenario's `interventions:`
    without `when`. `llm`, when given, replaces the parent's `llm` section (a sweep's shared model server).
    """
    parent = Path(parent)
    manifest = checked_parent(parent)
    check_round(parent, at, manifest["rounds_completed"])
    options = fork_change(settings, interventions, at)
    change = [spec for _, spec in options]
    planned = len(read_scenario(parent).get("interventions") or [])
    try:
        scenario = fork_scenario(parent, change, llm)
        society = Society(scenario)
    except ScenarioError as error:
        check_parent_scenario(parent)
        raise ScenarioError([_option_problem(problem, planned, options) for problem in error.problems]) from None
    run = RunDirectory.create(out, scenario, society)
    if (parent / LLM_CACHE).is_file():
        _copy_cache(parent / LLM_CACHE, run.path / LLM_CACHE)
    recorded_llm = {key: value for key, value in manifest.get("llm", {}).items() if key in ("model", "models")}
    run.update_manifest(
        fork_of={"run": os.path.relpath(parent.resolve(), run.path.resolve()), "name": manifest["name"],
                 "created": manifest.get("created")},
        fork_at=at, fork_change=change, **({"llm": recorded_llm} if recorded_llm else {}),
    )
    _restore_latest(society, parent, at, fork_checkpoint_files(parent))
    _copy_rounds(parent, run.path, at - 1)
    run.update_manifest(rounds_completed=society.round)
    run.record_copied_round(society)
    return _play(society, run, progress, copied_until=at - 1)


class ParentScenarioError(ScenarioError):
    """The parent run's own recorded scenario cannot be played (edited since, or a persona file it reads changed),
    whatever the fork's change: its problems name the parent's scenario file and field."""


def check_parent_scenario(parent: Path) -> None:
    """A ParentScenarioError when the parent's recorded scenario, unchanged, is not valid or builds no society."""
    try:
        Society(recorded_scenario(parent))
    except ScenarioError as error:
        raise ParentScenarioError(error.problems) from None


def fork_parent(fork: Path, manifest: Manifest) -> Path:
    """The parent run folder of the fork in the folder `fork`, resolved: its manifest's `fork_of.run`, relative to the
    fork's folder (so the two can move together), or absolute as manifests written before recorded it."""
    named = manifest["fork_of"].get("run") if isinstance(manifest.get("fork_of"), dict) else None
    if not isinstance(named, str) or not named or "\0" in named:
        raise RunDataError(f"{Path(fork) / MANIFEST}: fork_of.run names no parent folder ({named!r})")
    return (Path(fork).resolve() / named).resolve()


def checked_parent(parent: Path) -> Manifest:
    """The manifest of a completed run folder whose table files are whole, or a ForkError saying why not."""
    if not is_run_dir(parent) or not (parent / SCENARIO).is_file():
        raise ForkError(f"{parent}: not a run folder (no {MANIFEST} and {SCENARIO}); fork a folder that "
                        "`society run` wrote")
    check_own_files(parent)
    manifest = checked_manifest(parent)
    if manifest["status"] != "completed":
        raise ForkError(f"{parent}: the run is {manifest['status']} after {manifest['rounds_completed']} of "
                        f"{manifest['rounds_planned']} rounds; a fork starts from a completed run (finish it with "
                        f"society run --resume {parent})")
    damaged = first_damaged_round(parent, manifest["rounds_completed"])
    if damaged is not None:
        raise ForkError(f"{parent}: round {damaged}'s table files are missing or damaged; a fork copies its parent's "
                        "rounds, so it needs them whole")
    return manifest


def check_own_files(parent: Path) -> None:
    """A ForkError naming the first entry of the parent run folder that is a symlink: a fork reads and copies only
    files the parent folder itself holds (without symlinks, every entry resolves inside it)."""
    for folder, folders, files in os.walk(parent.resolve()):
        for name in sorted([*folders, *files]):
            if os.path.islink(os.path.join(folder, name)):
                entry = Path(folder, name).relative_to(parent.resolve())
                raise ForkError(f"{parent / entry}: a symlink; a fork copies only the files its parent run folder "
                                "holds itself, so it refuses a folder with symlinks")


def check_round(parent: Path, at: int, completed: int, option: str = "--at") -> None:
    """A ForkError unless `at` is a round a fork of `parent` (which played `completed` rounds) can start at."""
    if not 1 <= at <= completed:
        raise ForkError(f"{option} {at}: {parent} played rounds 1 to {completed}; a fork replaces its round onward, "
                        f"so the round is 1 to {completed}")


def fork_change(
    settings: Sequence[str], interventions: Sequence[str | dict[str, Any]], at: int
) -> list[tuple[str, dict[str, Any]]]:
    """The fork's change as interventions due at round `at`, each with the option that gave it: one for all
    `--set` paths, one per `--intervene`."""
    change: list[tuple[str, dict[str, Any]]] = []
    changes: dict[str, Any] = {}
    for item in settings:
        parsed = parse_override(item)
        if parsed is None:
            raise ForkError(f"--set {item!r}: expected --set path.to.key=value")
        changes[parsed[0]] = parsed[1]
    if changes:
        change.append(("--set", {"when": {"round": at}, "set": changes}))
    for text in interventions:
        spec = dict(text) if isinstance(text, dict) else _intervention_spec(text)
        when = spec.pop("when", {"round": at})
        if when != {"round": at}:
            raise ForkError(f"--intervene {text!r}: its when must be left out or be {{round: {at}}} (the fork "
                            "changes the run at --at)")
        change.append((f"--intervene {text}", {"when": {"round": at}, **spec}))
    return change


def _intervention_spec(text: str) -> dict[str, Any]:
    """An `--intervene` value: a YAML file's mapping, or a mapping written inline."""
    path = Path(text)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        try:
            return read_yaml(path)
        except ScenarioError as error:
            raise ForkError(f"--intervene {text}: {error}") from None
    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ForkError(f"--intervene {text!r}: not YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(spec, dict):
        raise ForkError(f"--intervene {text!r}: expected a mapping such as {{shock: {{severity: 0.5}}}} or a YAML file")
    return spec


def fork_scenario(parent: Path, change: list[dict[str, Any]], llm: dict[str, Any] | None = None) -> Scenario:
    """The parent's scenario with the change appended to its interventions (and `llm` in place of its `llm`
    section when given), validated like any scenario."""
    data = read_scenario(parent)
    if llm is not None:
        data["llm"] = llm
    data["interventions"] = [*(data.get("interventions") or []), *change]
    return recorded_scenario(parent, data)


def _option_problem(problem: Problem, planned: int, options: list[tuple[str, dict[str, Any]]]) -> Problem:
    """A problem with one of the fork's interventions (after the parent's `planned` ones), named by its option."""
    for index, (option, _) in enumerate(options):
        prefix = f"interventions[{planned + index}]"
        if problem.field.startswith(prefix):
            return Problem(option, problem.field[len(prefix):].lstrip("."), problem.message)
    return problem


def _copy_rounds(parent: Path, run: Path, last: int) -> None:
    """Copy the parent's table files of rounds 1 to `last` (each written to a temporary name, then renamed)."""
    for table in TABLES:
        for file in table_files(parent, table):
            if int(file.stem) <= last:
                target = round_file(run, table, int(file.stem))
                shutil.copyfile(file, temporary_file(target))
                os.replace(temporary_file(target), target)


def _copy_cache(source: Path, target: Path) -> None:
    """Copy the parent's LLM response cache with SQLite's backup (so answers still in its write-ahead log come along),
    the parent's file opened read-only."""
    try:
        with (closing(sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)) as reading,
              closing(sqlite3.connect(target)) as writing):
            reading.execute("PRAGMA trusted_schema=OFF")
            reading.backup(writing)
    except sqlite3.DatabaseError as error:
        raise ForkError(f"{source}: not a readable LLM response cache ({error})") from None


def divergence_round(fork: Path, parent: Path) -> int | None:
    """The first round in which any table (rounds, citizens, events, llm_calls, survey) differs between a fork and
    its parent, how and how fast LLM answers were obtained aside; None when every round of every table is the same."""
    rounds = [_first_difference(_comparable(read_table(fork, table)), _comparable(read_table(parent, table)))
              for table in TABLES]
    return min((number for number in rounds if number is not None), default=None)


def _first_difference(mine: pl.DataFrame, theirs: pl.DataFrame) -> int | None:
    """The first round whose rows differ between two versions of a table (NaN equal to NaN, not to null)."""
    if mine.is_empty() or theirs.is_empty():  # rows in one only (a table with no file yet has no columns either)
        return None if mine.is_empty() and theirs.is_empty() else (theirs if mine.is_empty() else mine)["round"].min()
    both = pl.concat([mine, theirs], how="diagonal_relaxed")  # one set of columns, null where a table has none
    mine, theirs = both.head(mine.height), both.tail(theirs.height)
    for number in sorted(set(mine["round"].to_list()) | set(theirs["round"].to_list())):
        if not mine.filter(pl.col("round") == number).equals(theirs.filter(pl.col("round") == number)):
            return number
    return None


def _comparable(table: pl.DataFrame) -> pl.DataFrame:
    """A table without its volatile columns."""
    return table.drop([name for name in VOLATILE_COLUMNS if name in table.columns])
