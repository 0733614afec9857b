"""Where everything lives in a run (and sweep) folder, what its manifest holds, and the low-level readers.

A run folder `runs/<name>/` holds:

    scenario.yaml                      the resolved scenario
    manifest.json                      status, seed, rounds, versions, timings (`Manifest`)
    graph.parquet                      the social graph as an edge list
    personas.parquet                   the LLM citizens' personas (only with LLM citizens; newcomers added on arrival)
    llm_cache.sqlite, vllm.log         the response cache and the local server's log (only with LLM citizens)
    checkpoint.json                    the state to resume from: JSON, its arrays in checkpoint-<digest>.npz
    checkpoint-previous.json           the checkpoint before it (to replay a round whose tables were damaged)
    checkpoints/<round:06d>.json       kept checkpoints, every output.keep_checkpoints rounds, their arrays beside
                                       them (a fork starts from the latest one before its round)
    tables/<table>/<round:06d>.parquet one file per round of each table in `TABLES` (survey: only with a survey phase)
    error.txt                          why the run failed (sweep runs only)

A sweep folder holds sweep.json, summary.parquet, vllm.log and `cells/<cell:04d>/seed-<seed>/`, one run folder
per cell and seed. Every file is written to a hidden temporary name beside it, then renamed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal, TypedDict, get_args

import polars as pl
import yaml

SCENARIO = "scenario.yaml"
MANIFEST = "manifest.json"
GRAPH = "graph.parquet"
PERSONAS = "personas.parquet"
LLM_CACHE = "llm_cache.sqlite"
LLM_LOG = "vllm.log"
CHECKPOINT = "checkpoint.json"
PREVIOUS_CHECKPOINT = "checkpoint-previous.json"
CHECKPOINT_ARRAYS = "checkpoint-*.npz"
LEGACY_CHECKPOINT = "checkpoint.pkl"
KEPT_CHECKPOINTS = "checkpoints"
KEPT_CHECKPOINT_FILES = "[0-9]*.json"
ERROR = "error.txt"
TABLES_DIR = "tables"
ROUND_FILES = "*.parquet"
TEMPORARY_FILES = ".*.tmp"

SWEEP = "sweep.json"
SUMMARY = "summary.parquet"
CELLS = "cells"

Table = Literal["rounds", "citizens", "events", "llm_calls", "survey"]
TABLES: tuple[Table, ...] = get_args(Table)

Status = Literal["running", "completed", "interrupted", "failed"]
STATUSES: tuple[Status, ...] = get_args(Status)


class _ManifestRequired(TypedDict):
    """The manifest fields every reader relies on, present from the run's start."""

    name: str
    status: Status
    rounds_planned: int
    rounds_completed: int


class Manifest(_ManifestRequired, total=False):
    """manifest.json: the required fields, and the others as the run writes them."""

    seed: int
    citizens: int
    created: str
    updated: str
    command: list[str]
    versions: dict[str, str]
    graph: dict[str, Any]
    timings: dict[str, Any]
    llm: dict[str, Any]
    ended_by: Literal["rounds", "collapse"]
    collapse_round: int | None
    error: str
    validity: dict[str, Any]
    fork_of: dict[str, Any]
    fork_at: int
    fork_change: list[dict[str, Any]]
    persona_files: dict[str, str]


REQUIRED_MANIFEST_FIELDS: tuple[str, ...] = tuple(_ManifestRequired.__annotations__)


class RunDataError(ValueError):
    """A run folder's file cannot be read; the message is one line naming the file and what is wrong."""


def is_run_dir(folder: Path) -> bool:
    """Whether `folder` is a run folder (it holds a manifest)."""
    return (folder / MANIFEST).is_file()


def is_sweep_dir(folder: Path) -> bool:
    """Whether `folder` is a sweep folder (it holds a sweep record)."""
    return (folder / SWEEP).is_file()


def table_dir(table: Table) -> str:
    """A table's folder, relative to the run folder."""
    return f"{TABLES_DIR}/{table}"


def round_file(run: Path, table: Table, number: int) -> Path:
    """The file of one round of a table."""
    return run / table_dir(table) / f"{number:06d}.parquet"


def temporary_file(path: Path) -> Path:
    """The hidden name a file is written under before it is renamed to `path`."""
    return path.with_name(f".{path.name}.tmp")


SEED_PREFIX = "seed-"
"""A sweep cell's run folders are named `seed-<seed>`."""


def llm_log(model: int) -> str:
    """The log of the managed server of the run's `model`-th model (the first one's is `vllm.log`)."""
    return LLM_LOG if model == 0 else f"vllm-{model}.log"


def checkpoint_arrays_file(digest: str) -> str:
    """The name of a checkpoint's array file, from the SHA-256 (hex) of its bytes."""
    return f"checkpoint-{digest[:16]}.npz"


def is_checkpoint_arrays_name(name: str) -> bool:
    """Whether `name` is a checkpoint array file's name (and so names no other file or folder)."""
    return re.fullmatch(r"checkpoint-[0-9a-f]{16}\.npz", name) is not None


def kept_checkpoint_file(run: Path, number: int) -> Path:
    """Where the checkpoint kept after round `number` lives (its arrays file beside it)."""
    return run / KEPT_CHECKPOINTS / f"{number:06d}.json"


def kept_checkpoint_files(run: Path) -> list[Path]:
    """The run's kept checkpoints, in round order."""
    return sorted((run / KEPT_CHECKPOINTS).glob(KEPT_CHECKPOINT_FILES))


def cell_run_dir(cell: int, seed: int) -> Path:
    """Where the run of a sweep's `cell` with `seed` lives, relative to the sweep folder."""
    return Path(CELLS) / f"{cell:04d}" / f"{SEED_PREFIX}{seed}"


def round_files(folder: Path) -> list[Path]:
    """A table folder's per-round files, in round order (half-written temporary files are skipped)."""
    return sorted(folder.glob(ROUND_FILES)) if folder.is_dir() else []


def table_files(run: Path, table: Table) -> list[Path]:
    """One table's per-round files, in round order."""
    return round_files(run / table_dir(table))


def table_rounds(run: Path, table: Table) -> list[int]:
    """The rounds that have a file of `table` (named by their files)."""
    return [int(file.stem) for file in table_files(run, table)]


def scan_table(run: Path, table: Table) -> pl.LazyFrame | None:
    """All of a table's files as one lazy frame (columns unioned), or None when it has no file yet."""
    files = table_files(run, table)
    if not files:
        return None
    try:
        return pl.concat([pl.scan_parquet(file) for file in files], how="diagonal_relaxed")
    except (pl.exceptions.PolarsError, OSError) as error:
        raise _unreadable(files, error) from None


def collect(query: pl.LazyFrame, run: Path, table: Table) -> pl.DataFrame:
    """Run a query over a table's files, turning a damaged file into a RunDataError naming it."""
    try:
        return query.collect()
    except (pl.exceptions.PolarsError, OSError) as error:
        raise _unreadable(table_files(run, table), error) from None


def read_table(run: Path, table: Table) -> pl.DataFrame:
    """Every round of a table written so far, in round order (empty when it has no file yet)."""
    frame = scan_table(run, table)
    return pl.DataFrame() if frame is None else collect(frame, run, table)


def read_round(run: Path, table: Table, number: int) -> pl.DataFrame:
    """One round's file of a table."""
    return read_parquet(round_file(run, table, number))


def table_columns(run: Path, table: Table) -> list[str]:
    """The columns of a table's latest file (cheap: reads one footer); empty when it has no file yet."""
    files = table_files(run, table)
    if not files:
        return []
    try:
        return list(pl.read_parquet_schema(files[-1]))
    except (pl.exceptions.PolarsError, OSError):
        raise RunDataError(f"{files[-1]}: not a readable Parquet file (damaged or cut short)") from None


def read_parquet(file: Path) -> pl.DataFrame:
    """One Parquet file, or a RunDataError naming it."""
    try:
        return pl.read_parquet(file)
    except FileNotFoundError:
        raise RunDataError(f"{file}: no such file") from None
    except (pl.exceptions.PolarsError, OSError) as error:
        raise _unreadable([file], error) from None


def readable_parquet(file: Path) -> bool:
    """Whether a Parquet file is whole: its footer (the metadata written last) reads."""
    try:
        pl.read_parquet_schema(file)
    except (pl.exceptions.PolarsError, OSError):
        return False
    return True


def check_tables(run: Path) -> None:
    """A RunDataError naming the first table file that is cut short or damaged (footers only: cheap)."""
    for table in TABLES:
        for file in table_files(run, table):
            if not readable_parquet(file):
                raise RunDataError(f"{file}: not a readable Parquet file (damaged or cut short)")


def first_damaged_round(run: Path, completed: int = 0) -> int | None:
    """The first round with a table file cut short or damaged, or missing from the rounds table (which must hold
    every round up to `completed`); None if there is none."""
    damaged = [int(file.stem) for table in TABLES for file in table_files(run, table) if not readable_parquet(file)]
    played = set(table_rounds(run, "rounds"))
    damaged += [number for number in range(1, max(played | {completed}) + 1) if number not in played]
    return min(damaged, default=None)


def read_graph(run: Path) -> pl.DataFrame:
    """The social graph as an edge list: source, target (source < target)."""
    return read_parquet(run / GRAPH)


def read_personas(run: Path) -> pl.DataFrame:
    """The LLM citizens' personas, one row each (empty when the run has none)."""
    path = run / PERSONAS
    return read_parquet(path) if path.is_file() else pl.DataFrame()


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object file (a manifest, a sweep record), or a RunDataError naming it."""
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise RunDataError(f"{path}: not valid JSON ({error.msg} at line {error.lineno}); the file is damaged") \
            from None
    except (OSError, UnicodeDecodeError) as error:
        raise RunDataError(f"{path}: cannot be read ({error})") from None
    if not isinstance(data, dict):
        raise RunDataError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def read_manifest(run: Path) -> Manifest:
    """The run's manifest (not checked for its required fields: see `missing_manifest_fields`)."""
    return read_json(run / MANIFEST)  # type: ignore[return-value]


def checked_manifest(run: Path) -> Manifest:
    """The run's manifest, its required fields present and of their types (else a RunDataError naming it)."""
    path = run / MANIFEST
    manifest = read_manifest(run)
    missing = missing_manifest_fields(manifest)
    if missing:
        raise RunDataError(f"{path}: lacks the fields {missing}; the file is damaged")
    if manifest["status"] not in STATUSES or not isinstance(manifest["name"], str):
        raise RunDataError(f"{path}: its name or status is not one this program writes; the file is damaged")
    counts = (manifest["rounds_planned"], manifest["rounds_completed"])
    if not all(type(count) is int and count >= 0 for count in counts):
        raise RunDataError(f"{path}: its round counts are not whole numbers; the file is damaged")
    return manifest


def missing_manifest_fields(manifest: dict[str, Any]) -> list[str]:
    """The required fields a manifest lacks, in the order `Manifest` names them."""
    return [key for key in REQUIRED_MANIFEST_FIELDS if key not in manifest]


def read_scenario_text(run: Path) -> str:
    """The resolved scenario YAML the run used."""
    path = run / SCENARIO
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise RunDataError(f"{path}: not UTF-8 text; the file is damaged") from None
    except OSError as error:
        raise RunDataError(f"{path}: cannot be read ({error.strerror or error})") from None


def read_scenario(run: Path) -> dict[str, Any]:
    """The resolved scenario the run used, as plain data."""
    path = run / SCENARIO
    try:
        data = yaml.safe_load(read_scenario_text(run))
    except yaml.YAMLError as error:
        raise RunDataError(f"{path}: not valid YAML ({str(error).splitlines()[0]}); the file is damaged") from None
    if not isinstance(data, dict):
        raise RunDataError(f"{path}: expected a YAML mapping, found {type(data).__name__}")
    return data


def _unreadable(files: list[Path], error: Exception) -> RunDataError:
    for file in files:
        try:
            pl.read_parquet_schema(file)
        except (pl.exceptions.PolarsError, OSError):
            return RunDataError(f"{file}: not a readable Parquet file (damaged or cut short)")
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return RunDataError(f"{files[0].parent}: the table cannot be read ({first_line})")
