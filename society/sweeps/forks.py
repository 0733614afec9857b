"""Fork grids: sweeps whose cells are counterfactual forks of one completed parent run.

A fork grid names `fork: {run: PARENT_RUN_DIR, at: ROUND}` instead of `base:`. Its axes (and `set:`) may be
`fork.at` (the round the fork starts at), `intervene.N.<path>` (a field of the N-th intervention spec the grid's
`intervene:` lists) or a field a running society takes up (`--set` of `society fork`). Each cell is `society fork`
of the parent with the cell's round, settings and interventions; it keeps the parent's seed.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from society.core.fork import ForkError, check_round, checked_parent, fork_change, fork_scenario
from society.rundir.layout import SWEEP, Manifest, RunDataError, read_scenario
from society.scenario.files import confined, set_path
from society.scenario.problems import Problem, ScenarioError
from society.scenario.schema import Scenario

AT = "fork.at"
INTERVENE = "intervene."


class ForkSection(BaseModel):
    """What a grid's `fork:` section may say: the parent run folder and the round its forks start at."""

    model_config = ConfigDict(extra="forbid")

    run: str = Field(min_length=1, description="the completed parent run folder, relative to the grid file")
    at: int | None = Field(None, ge=1, description="the round each fork starts at (or an axis fork.at)")


class ForkSpec(BaseModel):
    """A fork grid's parent, round and intervention specs, as sweep.json records them: the parent relative to the
    sweep folder there (`recorded_run`), its resolved folder in a running sweep (`check_resumed_parent`)."""

    model_config = ConfigDict(extra="forbid")

    run: str
    at: int | None
    intervene: list[dict[str, Any]]
    created: str | None = Field(None, description="the parent's manifest `created`, to know it again on resume")


@dataclass(frozen=True)
class ForkCell:
    """One cell's fork: its parent run folder, the round it starts at, its `path=value` settings and its
    intervention specs."""

    parent: Path
    at: int
    settings: list[str]
    interventions: list[dict[str, Any]]


def parent_run(grid: Path, run: str) -> Path:
    """The completed run folder a grid's `fork.run` names (relative to the grid file, inside the grid file's folder
    tree or the current directory), resolved; a ScenarioError naming the grid and field if it is not one."""
    roots = tuple(dict.fromkeys((grid.absolute().parent.resolve(), grid.resolve().parent, Path.cwd().resolve())))
    _confined_parent(grid.parent / run, roots, str(grid), "the grid file's folder tree or the current directory")
    return (grid.parent / run).resolve()


def sweep_parent(folder: Path, run: str) -> Path:
    """The parent run folder a sweep.json in `folder` names (`fork.run`), resolved (not checked): relative to the
    sweep folder, so that the two can move together, or absolute as sweep.json files written before recorded it."""
    try:
        return (Path(folder).resolve() / run).resolve()
    except ValueError as error:  # a NUL byte
        raise ScenarioError([Problem(str(Path(folder) / SWEEP), "fork.run", f"not a folder path ({error})")]) from None


def recorded_run(folder: Path, run: str) -> str:
    """The parent `run` (a path resolved in a running sweep, or as a sweep.json in `folder` names it) as that
    sweep.json records it: relative to the sweep folder."""
    return os.path.relpath(sweep_parent(folder, run), Path(folder).resolve())


def check_resumed_parent(folder: Path, fork: ForkSpec) -> ForkSpec:
    """`fork`, read from the sweep.json in `folder`, with its parent resolved against that folder and checked again to
    resume the sweep: a completed run folder inside the sweep folder's tree or the current directory, and the run
    the sweep forked (its manifest's `created`)."""
    roots = tuple(dict.fromkeys((folder.absolute().resolve(), Path.cwd().resolve())))
    source = str(folder / SWEEP)
    parent = sweep_parent(folder, fork.run)
    manifest = _confined_parent(parent, roots, source, "the sweep folder's tree or the current directory")
    if fork.created is not None and manifest.get("created") != fork.created:
        raise ScenarioError([Problem(source, "fork.run", f"{parent} is not the run this sweep forked (created "
                                     f"{manifest.get('created')}, the sweep's parent {fork.created})")])
    return fork.model_copy(update={"run": str(parent)})


def _confined_parent(target: Path, roots: tuple[Path, ...], source: str, where: str) -> Manifest:
    """The manifest of the completed run folder `target` inside one of `roots` (described by `where`), or a
    ScenarioError naming `source` and `fork.run`."""
    if not confined(target, roots):
        folders = " or ".join(str(root) for root in roots)
        raise ScenarioError([Problem(source, "fork.run", f"fork.run may only name a run folder inside {folders} "
                                     f"({where}); this one leaves them (an absolute path, a ../ or a symlink "
                                     "pointing outside)")])
    try:
        return checked_parent(target)
    except (ForkError, RunDataError) as error:
        raise ScenarioError([Problem(source, "fork.run", str(error))]) from None


def intervene_problems(intervene: list[dict[str, Any]], source: str) -> list[Problem]:
    """A grid's `intervene:` specs that name a `when` (a fork's change comes at its round)."""
    return [Problem(source, f"intervene.{index}.when", "leave when out: a fork's change comes at fork.at")
            for index, spec in enumerate(intervene) if "when" in spec]


def fork_cell(fork: ForkSpec, values: dict[str, Any], source: str) -> ForkCell:
    """A cell's fork from its values (`set:` then the axes'): `fork.at`, `intervene.N.*` set into a copy of the
    grid's specs, every other path a setting."""
    at, settings, interventions = fork.at, [], copy.deepcopy(fork.intervene)
    for path, value in values.items():
        if path == AT:
            at = value
        elif path.startswith("fork."):
            raise ScenarioError([Problem(source, path, f"a fork grid may vary {AT} but not the rest of fork:")])
        elif path.startswith(INTERVENE):
            try:
                set_path(interventions, path.removeprefix(INTERVENE).split("."), value)
            except (KeyError, IndexError, TypeError) as error:
                raise ScenarioError([Problem(source, path, f"cannot set: {error.args[0]} (the grid's intervene: "
                                             f"lists {len(interventions)})")]) from None
        else:
            settings.append(f"{path}={json.dumps(value)}")
    if not isinstance(at, int) or isinstance(at, bool):
        raise ScenarioError([Problem(source, AT, f"expected a round number, got {at!r}")])
    return ForkCell(Path(fork.run), at, settings, interventions)


def fork_scenarios(
    fork: ForkSpec, cells: Iterable[dict[str, Any]], source: str
) -> Iterator[tuple[Scenario | None, list[Problem]]]:
    """Each cell's fork scenario (the parent's with the cell's change), or the problems naming the grid's fields."""
    parent = Path(fork.run)
    try:
        completed = checked_parent(parent)["rounds_completed"]
        planned = len(read_scenario(parent).get("interventions") or [])
    except (ForkError, RunDataError) as error:
        raise ScenarioError([Problem(source, "fork.run", str(error))]) from None
    try:
        fork_scenario(parent, [])
    except ScenarioError as error:
        problems = "; ".join(str(problem) for problem in error.problems)
        raise ScenarioError([Problem(source, "fork.run", f"{parent}: the parent run's own scenario has a problem "
                                     f"(not the grid's change; no fork can start from it): {problems}")]) from None
    for values in cells:
        yield _fork_scenario(fork, values, source, parent, completed, planned)


def _fork_scenario(
    fork: ForkSpec, values: dict[str, Any], source: str, parent: Path, completed: int, planned: int
) -> tuple[Scenario | None, list[Problem]]:
    try:
        cell = fork_cell(fork, values, source)
    except ScenarioError as error:
        return None, error.problems
    try:
        check_round(parent, cell.at, completed, AT)
        options = fork_change(cell.settings, cell.interventions, cell.at)
        return fork_scenario(parent, [spec for _, spec in options]), []
    except ForkError as error:
        return None, [Problem(source, AT, str(error))]
    except ScenarioError as error:
        return None, [_grid_field(problem, planned, bool(cell.settings), source) for problem in error.problems]


def _grid_field(problem: Problem, planned: int, settings: bool, source: str) -> Problem:
    """A problem with a fork's change, named by the grid field that made it (a setting's path or `intervene.N.*`)."""
    found = re.match(r"interventions\[(\d+)\]\.?(.*)", problem.field)
    if found is None or int(found[1]) < planned:
        return Problem(source, problem.field, problem.message)
    offset, rest = int(found[1]) - planned, found[2]
    if settings and offset == 0:
        return Problem(source, rest.removeprefix("set."), problem.message)
    return Problem(source, f"intervene.{offset - settings}.{rest}".rstrip("."), problem.message)
