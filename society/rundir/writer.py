"""Writing a run directory (see `layout`): scenario, manifest, per-round tables and checkpoints, all atomic."""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from society.core.model import Society
from society.llm.persona_files import persona_file_digests
from society.phases.survey import round_answers
from society.rundir.checkpoint import write_checkpoint
from society.rundir.events_file import RoundEvents
from society.rundir.layout import (
    GRAPH,
    MANIFEST,
    PERSONAS,
    SCENARIO,
    TABLES,
    TEMPORARY_FILES,
    Manifest,
    Table,
    read_manifest,
    read_personas,
    round_file,
    round_files,
    table_dir,
    temporary_file,
)
from society.scenario.files import scenario_to_yaml
from society.scenario.schema import Scenario
from society.world.graph import graph_stats

CHECKPOINT_EVERY = 10
"""Rounds between checkpoints when the scenario names none and has no LLM citizens."""

QUEUE_BYTES = 512 * 2**20
"""At most this much recorded data (frames, checkpoint arrays) waits for the writer thread, beyond one round."""


class RunWriteError(RuntimeError):
    """A run folder's file cannot be written (read-only, not a folder, disk full); one line naming it and why."""


def write_file(path: Path, data: bytes | pl.DataFrame | RoundEvents) -> None:
    """The write layer: put `data` in the file `path`, bytes as they are, a frame as LZ4 Parquet encoded by Polars
    straight into the file, a round's events as their own LZ4 Parquet file (every file of a run folder is written
    through here)."""
    if isinstance(data, pl.DataFrame):
        data.write_parquet(path, compression="lz4")
        return
    if isinstance(data, RoundEvents):
        data.write(path)
        return
    with open(path, "wb") as handle:
        handle.write(data)


def atomic_write(path: Path, data: bytes | pl.DataFrame | RoundEvents) -> None:
    """Write to a temporary file beside `path`, then rename it over `path` (a RunWriteError when the disk refuses)."""
    temporary = temporary_file(path)
    try:
        write_file(temporary, data)
        os.replace(temporary, path)
    except (OSError, pl.exceptions.PolarsError) as error:
        temporary.unlink(missing_ok=True)
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error).splitlines()[0]
        raise RunWriteError(f"{path}: cannot be written ({reason})") from None


def _write_parquet(frame: pl.DataFrame | RoundEvents, path: Path) -> None:
    atomic_write(path, frame)


def checkpoint_every(society: Society) -> int:
    """Rounds between the society's checkpoints (`output.checkpoint_every`, or its default)."""
    chosen = society.scenario.output.checkpoint_every
    if chosen is not None:
        return chosen
    return 1 if society.llm is not None else CHECKPOINT_EVERY


KEEP_CHECKPOINTS_LLM = 10
"""Rounds between kept checkpoints when the scenario names none and has LLM citizens (without: none kept)."""


def keeps_checkpoint(society: Society, number: int) -> bool:
    """Whether the checkpoint of round `number` is kept for forks (`output.keep_checkpoints`, or its default)."""
    every = society.scenario.output.keep_checkpoints
    if every is None:
        every = KEEP_CHECKPOINTS_LLM if society.llm is not None else 0
    return every > 0 and number > 0 and number % every == 0


def _array_bytes(tree: Any) -> int:
    """The bytes of every numpy array in a checkpoint (0 for None)."""
    if isinstance(tree, np.ndarray):
        return tree.nbytes
    if isinstance(tree, dict):
        return sum(_array_bytes(item) for item in tree.values())
    if isinstance(tree, list | tuple):
        return sum(_array_bytes(item) for item in tree)
    return 0


def versions() -> dict[str, str]:
    """Versions of Python and the libraries a run's numbers depend on."""
    found = {"python": platform.python_version()}
    for package in ("society", "mesa", "numpy", "numba", "networkx", "polars", "pyarrow", "pydantic"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _missing_folders(path: Path) -> list[Path]:
    """`path` and those of its parent folders that do not exist yet, outermost first."""
    missing = [folder for folder in (path, *path.parents) if not folder.exists()]
    return missing[::-1]


def _remove_made(path: Path, made: list[Path]) -> None:
    """Undo an unfinished `RunDirectory.create`: remove the run folder `path` and the parent folders it made
    (innermost first, each only while empty) or, when `path` was there already (empty), only what it now holds."""
    if made:
        shutil.rmtree(path, ignore_errors=True)
        for folder in reversed(made[:-1]):
            try:
                folder.rmdir()
            except OSError:
                return
        return
    for entry in path.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


class RunDirectory:
    """Writer of one run directory (`runs/<name>/`).

    Rounds' files are written by one background thread, in order, while the next rounds are computed; each
    round's tables land before its checkpoint. The queue is bounded by `queue_bytes` (the frames and checkpoint
    arrays waiting to be written; at least one round is always accepted): a round that would go past it waits
    for the writer. A write error stops every later write and is raised in the caller's thread by the next
    `append_round` or `flush`.
    """

    def __init__(self, path: Path, queue_bytes: int = QUEUE_BYTES) -> None:
        self.path = Path(path)
        self.queue_bytes = queue_bytes
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="run-writer")
        self._pending: deque[tuple[Future[None], int]] = deque()
        self._failed = threading.Event()
        self.recorded_round: int | None = None
        """The last round queued whole (tables and, when due, checkpoint)."""
        self._checkpointed_round: int | None = None
        self._arrivals_recorded = 0

    @classmethod
    def create(cls, path: Path, scenario: Scenario, society: Society) -> RunDirectory:
        """Start a new run directory for `society` (refuses a folder that already holds files).

        All or nothing: when creation stops before the manifest is written (an error, Ctrl-C), what this call made
        is removed again (the run folder's files, and the folders it created), so a retry at `path` starts afresh.
        """
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise RunWriteError(f"{path}: exists and is not a folder; pass another --out")
        if path.exists() and any(path.iterdir()):
            raise FileExistsError(f"{path} already holds files; pass another --out, or --resume {path}")
        made = _missing_folders(path)
        try:
            return cls._fill(path, scenario, society)
        except BaseException:
            _remove_made(path, made)
            raise

    @classmethod
    def _fill(cls, path: Path, scenario: Scenario, society: Society) -> RunDirectory:
        """Write a new run directory's folders, scenario, graph, personas and, last, its manifest."""
        try:
            for table in TABLES:
                (path / table_dir(table)).mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise RunWriteError(f"{path}: cannot create the run folder ({error.strerror or error})") from None
        run = cls(path)
        atomic_write(path / SCENARIO, scenario_to_yaml(scenario).encode())
        u, v = society.graph.edges()
        _write_parquet(pl.DataFrame({"source": u, "target": v}), path / GRAPH)
        if society.llm is not None:
            _write_parquet(society.llm.persona_table(), path / PERSONAS)
        run.write_manifest(
            {
                "name": scenario.name,
                "status": "running",
                "seed": scenario.seed,
                "rounds_planned": scenario.rounds,
                "rounds_completed": 0,
                "citizens": scenario.population.size,
                "created": now(),
                "updated": now(),
                "command": sys.argv,
                "versions": versions(),
                "graph": graph_stats(society.graph),
                "timings": {},
                **({"persona_files": digests} if (digests := persona_file_digests(scenario)) else {}),
            }
        )
        return run

    def _record_arrivals(self, society: Society) -> None:
        """Add the personas of the LLM newcomers seated since the last round recorded to the personas file (as they
        arrived; rewritten whole, atomically). A resumed or forked run adds those its folder lacks."""
        llm = society.llm
        if llm is None or len(llm.arrivals) == self._arrivals_recorded:
            return
        table = read_personas(self.path)
        known = set(table["citizen"].to_list()) if "citizen" in table.columns else set()
        new = [row for row in llm.arrivals if row["citizen"] not in known]
        if new:
            _write_parquet(pl.concat([table, pl.DataFrame(new)], how="diagonal_relaxed"), self.path / PERSONAS)
        self._arrivals_recorded = len(llm.arrivals)

    @property
    def manifest(self) -> Manifest:
        return read_manifest(self.path)

    def write_manifest(self, manifest: Manifest) -> None:
        atomic_write(self.path / MANIFEST, json.dumps(manifest, indent=2, default=str).encode())

    def update_manifest(self, **changes: Any) -> None:
        """Change some manifest fields and stamp the update time."""
        self.write_manifest(self.manifest | changes | {"updated": now()})

    def append_round(self, society: Society) -> None:
        """Queue the round just played: its tables first, then the checkpoint (snapshots taken now)."""
        output = society.scenario.output
        number = society.round
        finished = not society.running
        files: list[tuple[Table, pl.DataFrame | RoundEvents]] = [("rounds", pl.DataFrame([society.round_row]))]
        if output.citizens_every and (number % output.citizens_every == 0 or finished):
            files.append(("citizens", society.round_citizens()))
        if output.events:
            files.append(("events", RoundEvents(society.round_event_batches())))
        if society.llm is not None:
            files.append(("llm_calls", society.llm.round_calls()))
        survey = round_answers(society)
        if survey is not None:
            files.append(("survey", survey))
        kept = keeps_checkpoint(society, number)
        checkpoint = society.checkpoint() if number % checkpoint_every(society) == 0 or finished or kept else None
        self._record_arrivals(society)
        self._submit(number, files, checkpoint, kept)
        self.recorded_round = number

    def record_copied_round(self, society: Society) -> None:
        """Queue a checkpoint of the round `society` is at, whose tables are already in the folder (a fork's copy
        of its parent's rounds), and count the round as recorded."""
        self._record_arrivals(society)
        self._submit(society.round, [], society.checkpoint(), keeps_checkpoint(society, society.round))
        self.recorded_round = society.round

    def checkpoint_recorded_round(self, society: Society) -> None:
        """Queue a checkpoint of the round just recorded, when `society` is still at its end and it has none yet
        (a run stopped between rounds then resumes from there rather than replaying from an earlier one)."""
        if society.round == self.recorded_round and self._checkpointed_round != society.round:
            self._submit(society.round, [], society.checkpoint())

    def _submit(
        self, number: int, files: list[tuple[Table, pl.DataFrame | RoundEvents]], checkpoint: dict | None,
        kept: bool = False,
    ) -> None:
        """Queue one round's writes, first waiting for the writer while the queue would go past its bound."""
        size = sum(frame.estimated_size() for _, frame in files) + _array_bytes(checkpoint)
        self._collect_finished()
        while self._pending and sum(queued for _, queued in self._pending) + size > self.queue_bytes:
            self._wait_oldest()
        self._pending.append((self._writer.submit(self._write_round, number, files, checkpoint, kept), size))
        if checkpoint is not None:
            self._checkpointed_round = number

    def _write_round(
        self, number: int, files: list[tuple[Table, pl.DataFrame | RoundEvents]], checkpoint: dict | None, kept: bool
    ) -> None:
        if self._failed.is_set():
            return  # an earlier round failed: writing later ones would leave a hole before them
        try:
            for table, frame in files:
                _write_parquet(frame, round_file(self.path, table, number))
            if checkpoint is not None:
                try:
                    write_checkpoint(self.path, checkpoint, atomic_write, kept)
                except OSError as error:
                    raise RunWriteError(
                        f"{self.path}: the checkpoint cannot be written ({error.strerror or error})"
                    ) from None
        except BaseException:
            self._failed.set()
            raise

    def _collect_finished(self) -> None:
        """Drop the rounds already written from the queue, raising the first write error."""
        while self._pending and self._pending[0][0].done():
            self._wait_oldest()

    def _wait_oldest(self) -> None:
        future, _ = self._pending.popleft()
        future.result()

    def flush(self, raise_errors: bool = True) -> None:
        """Wait until every queued round is on disk (re-raising the first write error unless told not to).

        A write can itself be cut short by Ctrl-C (Polars checks for signals): that round's files stay
        temporary and its checkpoint unwritten, so a resume simply plays it again.
        """
        first: BaseException | None = None
        while self._pending:
            try:
                self._wait_oldest()
            except BaseException as error:  # noqa: BLE001 - every queued round is waited for, then the first raised
                first = first or error
        if first is not None and raise_errors:
            raise first

    def drop_rounds_after(self, number: int) -> None:
        """Remove table files of rounds after `number` (written after the last checkpoint) and half-written ones."""
        for table in TABLES:
            folder = self.path / table_dir(table)
            for file in round_files(folder):
                if int(file.stem) > number:
                    file.unlink()
            for leftover in folder.glob(TEMPORARY_FILES):
                leftover.unlink()
