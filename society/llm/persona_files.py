"""Personas from data: a CSV or Parquet file of persona rows, validated, taken in order or sampled by weight.

Columns: the Big Five scores (`openness`, `conscientiousness`, `extraversion`, `agreeableness`, `neuroticism`,
numbers in [0, 1]) and `role` (text) are required; `values` (a list of texts; in CSV one text with the values
separated by `;`), `agenda` (a hidden aim), `background` (free text) and `weight` (a positive number) are
optional; every other column is an extra, shown in the persona text as `Name: value.` (underscores read as
spaces) and kept in the persona table. Without a `weight` column the rows are the group's citizens in order
(row k for the group's k-th citizen by number), so the file has exactly one row per citizen of the group; with
one, each citizen's row is drawn, with replacement, in proportion to the weights from the run's `personas` stream.

Reading never runs code (polars' CSV and Parquet readers) and a problem never echoes a text cell of the file,
only where it is (file, row counted from 1 after the header, column) and what was expected.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from society.scenario.bounds import MAX_CITIZENS
from society.scenario.schema import BIG_FIVE, LLMPolicy, Scenario

REQUIRED = (*BIG_FIVE, "role")
KNOWN = (*REQUIRED, "values", "agenda", "background", "weight")
FORMATS = {"csv": "CSV (UTF-8 text, a header row, the same number of fields on every line)", "parquet": "Parquet"}
"""The persona file kinds, by the file name's ending, and what each must be."""
RESERVED = ("citizen", "description")
"""Columns the persona table writes itself: a file may not name them."""
MOST_ROWS = MAX_CITIZENS
"""The most rows a persona file may have (a group never has more citizens)."""
MOST_BYTES = 64 * 2**20
"""The largest persona file read, in bytes."""
MOST_PROBLEMS = 20
"""Problems listed for one file; a file with more gets a last line saying how many were left out."""


class PersonaFileError(ValueError):
    """A persona file that cannot be used; `messages` says, for each problem, where it is and what was expected."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("\n".join(messages))
        self.messages = messages


@dataclass(frozen=True)
class PersonaRows:
    """The validated rows of a persona file, as columns."""

    path: Path
    traits: np.ndarray  # (rows, 5), columns in BIG_FIVE order
    roles: list[str]
    values: list[tuple[str, ...]]
    agendas: list[str | None]
    backgrounds: list[str | None]
    extras: dict[str, list[str | None]]
    weights: np.ndarray | None

    @property
    def size(self) -> int:
        return len(self.roles)

    def rows_for(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """The row each of `count` citizens gets: the rows in order, or drawn by weight from `rng`."""
        if self.weights is None:
            if count != self.size:
                raise PersonaFileError([f"{self.path}: has {self.size} rows but the group has {count} citizens "
                                        "(one row per citizen, in order; add a weight column to sample from it)"])
            return np.arange(count)
        return rng.choice(self.size, size=count, p=self.weights / self.weights.sum())


def read_persona_file(path: Path) -> PersonaRows:
    """The rows of the persona file at `path`, or a PersonaFileError naming every problem found."""
    frame = _read(path)
    if frame.height == 0:
        raise PersonaFileError([f"{path}: has no rows (expected a header and one row per persona)"])
    missing = [f"{path}: missing column {name!r} (required: {', '.join(REQUIRED)})"
               for name in REQUIRED if name not in frame.columns]
    reserved = [f"{path}: column {name!r} is the persona table's own (rename it)"
                for name in RESERVED if name in frame.columns]
    nested = _nested_columns(frame, path)
    if missing or reserved or nested:
        raise PersonaFileError(missing + reserved + nested)
    problems: list[str] = []
    traits = np.column_stack([_numbers(frame, path, name, problems, unit=True) for name in BIG_FIVE])
    roles = _texts(frame, path, "role", problems, required=True)
    weights = _numbers(frame, path, "weight", problems, unit=False) if "weight" in frame.columns else None
    values = _values(frame, path, problems)
    agendas = _texts(frame, path, "agenda", problems) if "agenda" in frame.columns else [None] * frame.height
    backgrounds = (_texts(frame, path, "background", problems) if "background" in frame.columns
                   else [None] * frame.height)
    extras = {name: _texts(frame, path, name, problems) for name in frame.columns if name not in KNOWN}
    if weights is not None and np.isfinite(weights).all() and not _finite_sum(weights):
        problems.append(f"{path}: column 'weight': the weights sum past the largest number (scale them down)")
    if problems:
        left = len(problems) - MOST_PROBLEMS
        raise PersonaFileError(problems[:MOST_PROBLEMS] + ([f"{path}: and {left} more problems"] if left > 0 else []))
    return PersonaRows(path, traits, [str(role) for role in roles], values, agendas, backgrounds, extras, weights)


def _read(path: Path) -> pl.DataFrame:
    """The file as a frame (CSV: every cell as text), or a PersonaFileError that quotes nothing of it."""
    suffix = path.suffix.lower().removeprefix(".")
    if suffix not in FORMATS:
        raise PersonaFileError([f"{path}: expected a persona file ending in "
                                f"{' or '.join('.' + name for name in FORMATS)}"])
    if not path.is_file():
        raise PersonaFileError([f"{path}: {'is a folder, not' if path.is_dir() else 'no such'} persona file"])
    if path.stat().st_size > MOST_BYTES:
        raise PersonaFileError([f"{path}: has {path.stat().st_size} bytes; a persona file may have at most "
                                f"{MOST_BYTES}"])
    try:
        if suffix == "csv":  # one row past the most, to tell a file that has more
            frame = pl.read_csv(path, infer_schema=False, encoding="utf8", n_rows=MOST_ROWS + 1)
        else:
            frame = pl.read_parquet(path, n_rows=MOST_ROWS + 1)
    except pl.exceptions.NoDataError:
        raise PersonaFileError([f"{path}: is empty (expected a header and one row per persona)"]) from None
    except (pl.exceptions.PolarsError, OSError, ValueError) as error:
        kind = FORMATS[suffix]
        raise PersonaFileError([f"{path}: cannot be read as {kind} ({type(error).__name__})"]) from None
    if frame.height > MOST_ROWS:
        raise PersonaFileError([f"{path}: has more than {MOST_ROWS} rows; a persona file may have at most "
                                f"{MOST_ROWS}"])
    return frame


def _finite_sum(numbers: np.ndarray) -> bool:
    """Whether the numbers' sum is a finite float (weights each finite can still sum past the largest)."""
    with np.errstate(over="ignore"):
        return math.isfinite(float(numbers.sum()))


def _nested_columns(frame: pl.DataFrame, path: Path) -> list[str]:
    """A problem for each column of lists or records (only `values` may hold lists, of texts)."""
    problems = []
    for name, dtype in frame.schema.items():
        if name == "values" and isinstance(dtype, pl.List) and not dtype.inner.is_nested():
            continue
        if dtype.is_nested():
            expected = "texts or lists of texts" if name == "values" else "one number or text per cell"
            problems.append(f"{path}: column {name!r}: expected {expected}, found a column of {dtype}")
    return problems


def _numbers(frame: pl.DataFrame, path: Path, name: str, problems: list[str], unit: bool) -> np.ndarray:
    """A column of numbers: in [0, 1] (`unit`) or positive (a weight); each bad cell added to `problems`."""
    column = frame[name]
    numbers = column.cast(pl.Float64, strict=False)
    expected = "a number in [0, 1]" if unit else "a positive number (a weight)"
    raw = column.cast(pl.Utf8, strict=False).to_list()
    for row, (value, cell) in enumerate(zip(numbers.to_list(), raw, strict=True), start=1):
        where = f"{path}: row {row}, column {name!r}"
        if value is None:
            found = "an empty cell" if cell is None or not str(cell).strip() else "a value that is not a number"
            problems.append(f"{where}: expected {expected}, found {found}")
        elif not math.isfinite(value) or (unit and not 0 <= value <= 1) or (not unit and value <= 0):
            problems.append(f"{where}: expected {expected} (got {value:g})")
    return np.array([math.nan if value is None else value for value in numbers.to_list()], dtype=np.float64)


def _texts(frame: pl.DataFrame, path: Path, name: str, problems: list[str], required: bool = False) -> list[str | None]:
    """A column of texts (None for empty cells; in a `required` column an empty cell is a problem)."""
    cells = frame[name].cast(pl.Utf8, strict=False).to_list()
    texts = [None if cell is None or not cell.strip() else cell.strip() for cell in cells]
    if required:
        problems += [f"{path}: row {row}, column {name!r}: expected a text, found an empty cell"
                     for row, text in enumerate(texts, start=1) if text is None]
    return texts


def _values(frame: pl.DataFrame, path: Path, problems: list[str]) -> list[tuple[str, ...]]:
    """The `values` column: a list of texts per row (a `;`-separated text in CSV), empty where absent."""
    if "values" not in frame.columns:
        return [()] * frame.height
    column = frame["values"]
    if isinstance(column.dtype, pl.List):
        try:
            cells = column.cast(pl.List(pl.Utf8)).to_list()
        except pl.exceptions.PolarsError:
            problems.append(f"{path}: column 'values': expected lists of texts")
            return [()] * frame.height
        return [tuple(item.strip() for item in cell or [] if item and item.strip()) for cell in cells]
    if column.dtype != pl.Utf8:
        problems.append(f"{path}: column 'values': expected texts separated by ';' or lists of texts")
        return [()] * frame.height
    return [tuple(part.strip() for part in (cell or "").split(";") if part.strip()) for cell in column.to_list()]


def persona_file_digests(scenario: Scenario) -> dict[str, str]:
    """The SHA-256 of each persona file the scenario's LLM groups read, by path (for a run's manifest)."""
    groups = [*scenario.population.policies, *(i.add.policy for i in scenario.interventions if i.add is not None)]
    files = sorted({str(spec.persona.file) for spec in groups
                    if isinstance(spec, LLMPolicy) and spec.persona.file is not None})
    return {file: hashlib.sha256(Path(file).read_bytes()).hexdigest() for file in files}


def changed_persona_files(recorded: dict[str, str]) -> list[str]:
    """Problems, one per file of `recorded` (path to SHA-256) that is gone or whose bytes changed since."""
    problems = []
    for file, digest in recorded.items():
        try:
            found = hashlib.sha256(Path(file).read_bytes()).hexdigest()
        except OSError as error:
            problems.append(f"{file}: the run's persona file cannot be read ({error.strerror or error})")
            continue
        if found != digest:
            problems.append(f"{file}: the run's persona file changed since the run began (its SHA-256 differs), so "
                            "it would give other personas; restore the file as it was")
    return problems
