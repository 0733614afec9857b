"""Grid files: a base scenario (or a completed run to fork), axes of values at dotted paths, seeds; expanded into
validated cells."""

from __future__ import annotations

import copy
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from society.rundir.layout import read_manifest, read_scenario
from society.scenario.bounds import MAX_SEED
from society.scenario.files import (
    Problem,
    ScenarioError,
    anchor_paths,
    apply_overrides,
    confined,
    confinement_rule,
    file_problem,
    override_keys,
    read_yaml,
    resolve_extends,
    scenario_roots,
    validate,
)
from society.scenario.origins import Origins
from society.scenario.schema import Scenario
from society.sweeps.forks import (
    AT,
    ForkCell,
    ForkSection,
    ForkSpec,
    fork_cell,
    fork_scenarios,
    intervene_problems,
    parent_run,
)

RANGE_KEYS = ("from", "to", "step", "num")
MAX_AXIS_VALUES = 100_000
"""The most values a range may expand to, seeds a grid may list, and cells it may have."""


def _axis_values(value: Any) -> Any:
    """A list of values as given, or a range mapping {from, to, step | num} expanded to its values."""
    if isinstance(value, dict):
        return expand_range(value)
    if isinstance(value, list) and not value:
        raise ValueError("expected at least one value")
    return value


def expand_range(spec: dict[str, Any]) -> list[int | float]:
    """The values of `{from, to, step}` or `{from, to, num}`, both ends included."""
    unknown = sorted(set(spec) - set(RANGE_KEYS))
    if unknown:
        raise ValueError(f"unknown range keys {unknown}; expected from, to and one of step or num")
    start, stop, step, num = (spec.get(key) for key in RANGE_KEYS)
    if not all(_is_number(x) and math.isfinite(x) for x in (start, stop)):
        raise ValueError("a range needs finite numbers `from` and `to`")
    if (step is None) == (num is None):
        raise ValueError("a range needs exactly one of `step` (spacing) or `num` (number of values)")
    if num is not None:
        if not isinstance(num, int) or isinstance(num, bool) or not 2 <= num <= MAX_AXIS_VALUES:
            raise ValueError(f"`num` must be an integer from 2 to {MAX_AXIS_VALUES}, got {num!r}")
        values = [start + (stop - start) * i / (num - 1) for i in range(num)]
        if _all_ints(start, stop) and (stop - start) % (num - 1) == 0:
            return [int(v) for v in values]
        return [_tidy(v) for v in values]
    if not _is_number(step) or not 0 < step < math.inf:
        raise ValueError(f"`step` must be a finite number > 0, got {step!r}")
    if stop < start:
        raise ValueError(f"`to` ({stop}) is below `from` ({start})")
    if (stop - start) / step >= MAX_AXIS_VALUES:
        raise ValueError(f"a range may have at most {MAX_AXIS_VALUES} values; use a larger `step`")
    count = math.floor((stop - start) / step + 1e-9) + 1
    if _all_ints(start, stop, step):
        return list(range(start, start + count * step, step))
    return [_tidy(start + i * step) for i in range(count)]


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _all_ints(*xs: Any) -> bool:
    return all(isinstance(x, int) for x in xs)


def _tidy(x: float) -> float:
    """`x` rounded to 12 significant digits, so 0.1 + 2 * 0.1 reads 0.3."""
    return float(f"{x:.12g}")


def _seed_list(value: Any) -> Any:
    """A seed count n means seeds 0 .. n-1."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not 1 <= value <= MAX_AXIS_VALUES:
            raise ValueError(f"expected a count >= 1 and <= {MAX_AXIS_VALUES} or a list of seeds, got {value}")
        return list(range(value))
    return value


AxisValues = Annotated[list[Any], BeforeValidator(_axis_values)]
Seeds = Annotated[list[Annotated[int, Field(ge=0, le=MAX_SEED)]], BeforeValidator(_seed_list), Field(min_length=1)]


class GridFile(BaseModel):
    """What a grid YAML file may say."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    base: str | None = Field(None, min_length=1, description="base scenario, relative to the grid file")
    fork: ForkSection | None = Field(None, description="instead of base: the completed run each cell forks")
    intervene: list[dict[str, Any]] = Field(default_factory=list, description="a fork grid's intervention specs")
    mode: Literal["cartesian", "zip"] = "cartesian"
    seeds: Seeds | None = Field(None, description="default [0]; a fork grid plays its parent's seed")
    set: dict[str, Any] = Field(default_factory=dict, description="dotted path: value, the same in every cell")
    axes: dict[str, AxisValues] = Field(min_length=1, description="dotted path: values (or a range)")

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, seeds: list[int] | None) -> list[int] | None:
        if seeds is not None and len(set(seeds)) != len(seeds):
            raise ValueError("seeds repeat")
        return seeds

    @field_validator("axes")
    @classmethod
    def _not_seed(cls, axes: dict[str, list[Any]]) -> dict[str, list[Any]]:
        if "seed" in axes:
            raise ValueError("`seed` is not an axis; list the seeds under `seeds`")
        return axes


@dataclass(frozen=True)
class Cell:
    """One combination of axis values, numbered in grid order."""

    index: int
    values: dict[str, Any]

    def overrides(self) -> list[str]:
        """The values as `--set` overrides (JSON is YAML, so each reads back as the value itself)."""
        return [f"{path}={json.dumps(value)}" for path, value in self.values.items()]

    def label(self) -> str:
        return ", ".join(f"{path}={json.dumps(value)}" for path, value in self.values.items())


class SweepSpec(BaseModel):
    """A sweep fully resolved: the base scenario's data, the fixed settings, the axes' values and the seeds."""

    model_config = ConfigDict(extra="forbid")

    name: str
    source: str = Field(description="the grid file it came from, for messages")
    base_scenario: dict[str, Any]
    set: dict[str, Any]
    axes: dict[str, list[Any]]
    mode: Literal["cartesian", "zip"]
    seeds: list[int]
    fork: ForkSpec | None = Field(None, description="a fork grid's parent, round and interventions")

    def cells(self) -> list[Cell]:
        """Every combination of axis values (cartesian: the last axis varies fastest; zip: i-th with i-th)."""
        paths = list(self.axes)
        columns = [self.axes[path] for path in paths]
        combos = zip(*columns, strict=True) if self.mode == "zip" else itertools.product(*columns)
        return [Cell(index, dict(zip(paths, combo, strict=True))) for index, combo in enumerate(combos)]

    def overrides(self, cell: Cell, seed: int) -> list[str]:
        """What a cell run with `seed` sets on the base scenario: `set`, then the cell's values, then the seed."""
        fixed = [f"{path}={json.dumps(value)}" for path, value in self.set.items()]
        return [*fixed, *cell.overrides(), f"seed={seed}"]

    def scenario_data(self, cell: Cell, seed: int) -> dict[str, Any]:
        """The scenario mapping of `cell` run with `seed` (base, then `set`, then the cell's values); paths they
        give are relative to the grid file and confined like its base."""
        data = apply_overrides(copy.deepcopy(self.base_scenario), self.overrides(cell, seed), self.source)
        anchor_paths(data, Path(self.source), scenario_roots(Path(self.source)))
        return data

    def fork_cell(self, cell: Cell) -> ForkCell:
        """A fork grid's cell as the fork it plays: its round, settings and interventions."""
        assert self.fork is not None, "only a fork grid's cells are forks"
        return fork_cell(self.fork, self.set | cell.values, self.source)

    def scenarios(self, origins: Origins | None = None) -> dict[int, Scenario]:
        """Every cell's typed scenario (first seed), or a ScenarioError listing each distinct problem once.

        `origins`: the base scenario's values, from files the user did not name, that problems must not echo.
        """
        cells = self.cells()
        found: dict[tuple[str, str, str], list[Cell]] = {}
        scenarios: dict[int, Scenario] = {}
        checked = (fork_scenarios(self.fork, (self.set | cell.values for cell in cells), self.source)
                   if self.fork is not None else (self._checked(cell, origins) for cell in cells))
        for cell, (scenario, problems) in zip(cells, checked, strict=True):
            for problem in problems:
                found.setdefault((problem.file, problem.field, problem.message), []).append(cell)
            if scenario is not None:
                scenarios[cell.index] = scenario
        if found:
            raise ScenarioError(
                [
                    Problem(file, field, f"{message} (in {len(hit)} of {len(cells)} cells; "
                            f"first: cell {hit[0].index} with {hit[0].label()})")
                    for (file, field, message), hit in found.items()
                ]
            )
        return scenarios

    def _checked(self, cell: Cell, origins: Origins | None) -> tuple[Scenario | None, list[Problem]]:
        """The cell's scenario (first seed) and its problems."""
        overrides = self.overrides(cell, self.seeds[0])
        shown = (origins or Origins()).overridden(override_keys(overrides))
        try:
            return validate(self.scenario_data(cell, self.seeds[0]), self.source, shown)
        except ScenarioError as error:
            return None, error.problems


def load_grid(path: str | Path) -> SweepSpec:
    """Read a grid file and its base scenario (or its parent run), and check every cell's scenario; raise
    ScenarioError if not."""
    path = Path(path)
    problem = file_problem(path, "grid")
    if problem is not None:
        raise ScenarioError([Problem(str(path), "", problem)])
    data = read_yaml(path)
    try:
        grid = GridFile.model_validate(data)
    except ValidationError as error:
        raise ScenarioError(_grid_problems(error, str(path))) from None
    if (grid.base is None) == (grid.fork is None):
        raise ScenarioError([Problem(str(path), "base", "a grid names exactly one of base (a scenario file) or fork "
                                     "(a completed run whose forks are its cells)")])
    cells = math.prod(len(values) for values in grid.axes.values()) if grid.mode == "cartesian" else 0
    if cells > MAX_AXIS_VALUES:
        raise ScenarioError([Problem(str(path), "axes", f"{cells} cells; a grid may have at most {MAX_AXIS_VALUES}")])
    if grid.mode == "zip":
        lengths = {axis: len(values) for axis, values in grid.axes.items()}
        if len(set(lengths.values())) > 1:
            raise ScenarioError(
                [Problem(str(path), "axes", f"mode zip needs axes of equal length, got {lengths}")]
            )
    spec, origins = _fork_spec(path, grid) if grid.fork is not None else _base_spec(path, grid)
    spec.scenarios(origins)
    return spec


def _base_spec(path: Path, grid: GridFile) -> tuple[SweepSpec, Origins]:
    """A grid over a base scenario, and the origins of the base's values from files the user did not name."""
    assert grid.base is not None
    if grid.intervene:
        raise ScenarioError([Problem(str(path), "intervene", "only a fork grid has intervene: (a grid over a base "
                                     "scenario changes its interventions: through axes and set)")])
    base_path = path.parent / grid.base
    roots = scenario_roots(path)
    if not confined(base_path, roots):
        raise ScenarioError([Problem(str(path), "base", confinement_rule(roots, "base"))])
    problem = file_problem(base_path, "scenario")
    if problem is not None:
        raise ScenarioError([Problem(str(path), "base", f"{problem}: {base_path}")])
    base, origins = resolve_extends(base_path, roots, named=False)
    base.setdefault("name", base_path.stem)
    spec = SweepSpec(name=grid.name or path.stem, source=str(path), base_scenario=base, set=grid.set, axes=grid.axes,
                     mode=grid.mode, seeds=grid.seeds or [0])
    return spec, origins


def _fork_spec(path: Path, grid: GridFile) -> tuple[SweepSpec, Origins]:
    """A grid of forks of the completed run `fork.run`: every cell plays the parent's seed."""
    assert grid.fork is not None
    parent = parent_run(path, grid.fork.run)
    base = read_scenario(parent)
    if grid.seeds is not None:
        raise ScenarioError([Problem(str(path), "seeds", f"a fork keeps its parent's seed ({base.get('seed')}); leave "
                                     "seeds out of a fork grid (run the parent with another seed and fork that)")])
    if grid.fork.at is None and AT not in grid.axes and AT not in grid.set:
        raise ScenarioError([Problem(str(path), "fork.at",
                                     f"required: the round the forks start at (or an axis {AT})")])
    problems = intervene_problems(grid.intervene, str(path))
    if problems:
        raise ScenarioError(problems)
    fork = ForkSpec(run=str(parent), at=grid.fork.at, intervene=grid.intervene,
                    created=read_manifest(parent).get("created"))
    spec = SweepSpec(name=grid.name or path.stem, source=str(path), base_scenario=base, set=grid.set, axes=grid.axes,
                     mode=grid.mode, seeds=[base["seed"]], fork=fork)
    return spec, Origins()


def _grid_problems(error: ValidationError, source: str) -> list[Problem]:
    """Pydantic's errors on a grid file as problems naming the field (axes keep their dotted path whole)."""
    problems = []
    for item in error.errors(include_url=False):
        field = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in item["loc"]).lstrip(".")
        field = field or "(top level)"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = f"unknown key; a grid has {', '.join(GridFile.model_fields)}"
        elif item["type"] == "missing":
            message = "required but missing"
        elif not isinstance(item.get("input"), dict | list):
            message += f" (got {item.get('input')!r})"
        problems.append(Problem(source, field, message))
    return problems
