"""One run of a sweep (a cell with one seed): start it, resume it, or record why it failed."""

from __future__ import annotations

import shutil
import signal
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numba

from society.core.fork import fork_run
from society.core.runner import RunInterrupted, resume_run, run_scenario
from society.rundir.layout import ERROR, is_run_dir, read_manifest
from society.scenario.schema import Scenario
from society.sweeps.forks import ForkCell

Status = Literal["completed", "failed", "interrupted", "pending"]


@dataclass(frozen=True)
class CellTask:
    """What a worker needs to play one run: where, which scenario, how many kernel threads."""

    cell: int
    seed: int
    run_dir: Path
    scenario: dict[str, Any]
    threads: int
    fork: ForkCell | None = None
    """A fork grid's cell: forked from its parent (its `llm` section taken from `scenario`), not played afresh."""


@dataclass(frozen=True)
class CellOutcome:
    cell: int
    seed: int
    status: Status
    error: str | None = None


def run_status(run_dir: Path) -> tuple[Status, str | None]:
    """Where a run folder stands (from its manifest and error file), and its error if it failed."""
    error_file = run_dir / ERROR
    if error_file.is_file():
        return "failed", error_file.read_text().partition("\n")[0]
    if not is_run_dir(run_dir):
        return "pending", None
    status = read_manifest(run_dir)["status"]
    return ("completed", None) if status == "completed" else ("interrupted", None)


def run_cell(task: CellTask) -> CellOutcome:
    """Play the run in `task.run_dir` to the end: start it, resume it, or leave it when already complete.

    Errors are caught and written to the run folder's error file, so one failing run never stops a sweep;
    Ctrl-C stops the run at a round boundary and reports it interrupted (resumable).
    """
    if threading.current_thread() is not threading.main_thread():
        return _play(task)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return _play(task)
    finally:
        signal.signal(signal.SIGINT, previous)


def _play(task: CellTask) -> CellOutcome:
    numba.set_num_threads(max(1, min(task.threads, numba.config.NUMBA_NUM_THREADS)))
    run_dir = task.run_dir
    status, _ = run_status(run_dir)
    if status == "completed":
        return CellOutcome(task.cell, task.seed, "completed")
    (run_dir / ERROR).unlink(missing_ok=True)
    try:
        if is_run_dir(run_dir):
            resume_run(run_dir)
        else:
            if run_dir.exists():
                shutil.rmtree(run_dir)
            _start(task)
    except (RunInterrupted, KeyboardInterrupt):
        return CellOutcome(task.cell, task.seed, "interrupted")
    except Exception as error:
        message = f"{type(error).__name__}: {error}".replace("\n", " | ")
        record_failure(run_dir, message, traceback.format_exc())
        return CellOutcome(task.cell, task.seed, "failed", message)
    return CellOutcome(task.cell, task.seed, "completed")


def _start(task: CellTask) -> None:
    """Play a new run: the cell's scenario, or the cell's fork of its parent run."""
    if task.fork is None:
        run_scenario(Scenario.model_validate(task.scenario), task.run_dir)
        return
    fork = task.fork
    fork_run(fork.parent, fork.at, task.run_dir, fork.settings, fork.interventions, llm=task.scenario["llm"])


def record_failure(run_dir: Path, message: str, details: str = "") -> None:
    """Write the run's error file: the one-line message first, then the details (a traceback)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / ERROR).write_text(f"{message}\n\n{details}")
