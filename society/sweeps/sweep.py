"""Playing a sweep into its folder: sweep.json, one run folder per cell and seed, summary.parquet."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
from tqdm import tqdm

from society.rundir.layout import ERROR, LLM_LOG, SUMMARY, SWEEP, cell_run_dir, read_json, temporary_file
from society.rundir.writer import atomic_write, now
from society.scenario.schema import Scenario
from society.sweeps.cell import CellOutcome, CellTask, record_failure, run_status
from society.sweeps.executors import Executor, ExecutorError
from society.sweeps.forks import check_resumed_parent, recorded_run
from society.sweeps.grid import SweepSpec
from society.sweeps.llm import SweepLLMError, local_server, needs_local_server, share
from society.sweeps.summary import summary_frame

SPEC_FIELDS = ("base_scenario", "set", "axes", "mode", "seeds", "fork")
"""What decides a sweep's runs; a folder is continued only by a sweep that agrees on all of them."""


class SweepFolderError(Exception):
    """A sweep folder that cannot be used for this sweep (taken by other files or another grid)."""


@dataclass
class SweepReport:
    """How a sweep ended."""

    folder: Path
    total: int
    completed: int = 0
    failures: list[tuple[int, int, str]] = field(default_factory=list)
    interrupted: bool = False
    invalid: int = 0

    @property
    def status(self) -> str:
        if self.interrupted:
            return "interrupted"
        return "failed" if self.failures else "completed"

    def line(self) -> str:
        """One line for the end of a sweep."""
        text = f"sweep {self.folder}: {self.completed} of {self.total} runs completed"
        if self.failures:
            text += f", {len(self.failures)} failed (errors in {SUMMARY} and each run's {ERROR})"
        if self.invalid:
            text += f", {self.invalid} of them invalid (fallbacks made too many LLM decisions; `valid` in {SUMMARY})"
        if self.interrupted:
            text += f"; interrupted, continue with: society sweep --resume {self.folder}"
        return text


def default_sweep_dir(spec: SweepSpec) -> Path:
    """`<base output.dir>/<sweep name>-<timestamp>`, beside the base scenario's runs."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base_dir = spec.base_scenario.get("output", {}).get("dir", "runs")
    return Path(base_dir) / f"{spec.name}-{stamp}"


def read_sweep(folder: Path) -> SweepSpec:
    """The sweep recorded in `folder`'s sweep.json (to resume it without its grid file); a fork sweep's parent is
    resolved against the sweep folder and checked again as a grid's is (a ScenarioError naming sweep.json if it is
    not one)."""
    path = Path(folder) / SWEEP
    if not path.is_file():
        raise SweepFolderError(f"{folder} is not a sweep folder (no {SWEEP})")
    record = read_json(path)
    spec = SweepSpec.model_validate({key: record[key] for key in SweepSpec.model_fields if key in record})
    if spec.fork is not None:
        spec = spec.model_copy(update={"fork": check_resumed_parent(Path(folder), spec.fork)})
    return spec


def prepare_folder(folder: Path, spec: SweepSpec) -> None:
    """Create the sweep folder, or check that the sweep it already holds is this one."""
    path = folder / SWEEP
    current = _spec_record(folder, json.loads(spec.model_dump_json()))
    if path.is_file():
        written = read_json(path)
        recorded = _spec_record(folder, written)
        differing = [key for key in SPEC_FIELDS if recorded.get(key) != current[key]]
        if differing:
            raise SweepFolderError(
                f"{folder} holds another sweep (its {', '.join(differing)} differ); pass another --out"
            )
        # A parent named otherwise (an older sweep.json's absolute path, or an edited one) is recorded from now on
        # as sweeps record it: resolved, and relative to the sweep folder.
        if recorded != written:
            _write_record(folder, recorded)
        return
    if folder.exists() and any(folder.iterdir()):
        raise SweepFolderError(f"{folder} already holds files and no {SWEEP}; pass another --out")
    folder.mkdir(parents=True, exist_ok=True)
    record = current | {
        "cells": [{"cell": cell.index, "values": cell.values} for cell in spec.cells()],
        "status": "running",
        "created": now(),
    }
    _write_record(folder, record)


def _spec_record(folder: Path, record: dict[str, Any]) -> dict[str, Any]:
    """A sweep's fields (of its spec or its sweep.json) as the sweep.json in `folder` records them: a fork sweep's
    parent relative to the folder, so that the two can move together (older sweep.json files name it absolute)."""
    fork = record.get("fork")
    if not isinstance(fork, dict) or not isinstance(fork.get("run"), str):
        return record
    return record | {"fork": fork | {"run": recorded_run(folder, fork["run"])}}


def _write_record(folder: Path, record: dict[str, Any]) -> None:
    atomic_write(folder / SWEEP, json.dumps(record | {"updated": now()}, indent=2, default=str).encode())


def _update_record(folder: Path, **changes: Any) -> None:
    _write_record(folder, read_json(folder / SWEEP) | changes)


def run_sweep(spec: SweepSpec, folder: Path, executor: Executor, progress: bool = False) -> SweepReport:
    """Play every run of `spec` not yet completed in `folder`, then write summary.parquet.

    A fork grid's runs are forks of its parent run (each with a copy of the parent's LLM response cache).
    Completed runs are skipped, interrupted ones resumed; a failing run is recorded and the others go on.
    Runs with LLM citizens share one model server (started here when they name the local backend) and split
    their `llm.concurrency` between the runs in flight. Ctrl-C stops the runs in flight at a round boundary;
    the report says the sweep was interrupted.
    """
    folder = Path(folder).absolute()
    scenarios = spec.scenarios()
    cells = {cell.index: cell for cell in spec.cells()}
    prepare_folder(folder, spec)
    report = SweepReport(folder, total=len(scenarios) * len(spec.seeds))
    pending: list[tuple[int, int]] = []
    for cell in scenarios:
        for seed in spec.seeds:
            if run_status(folder / cell_run_dir(cell, seed))[0] == "completed":
                report.completed += 1
            else:
                pending.append((cell, seed))
    needs_server = needs_local_server(scenarios[cell] for cell, _ in pending)
    if needs_server and not executor.same_machine:
        raise SweepLLMError("runs on llm.backend local need the sweep's server on this machine; on a Ray cluster "
                            "name servers the cluster reaches (llm.backend: server, llm.base_urls)")
    port = _llm_port(folder) if needs_server else 0
    _update_record(folder, status="running", executor=executor.description)
    bar = tqdm(total=report.total, initial=report.completed, unit="run", disable=not progress, dynamic_ncols=True)
    try:
        with local_server([scenarios[cell] for cell, _ in pending], port, folder / LLM_LOG) as served, executor:
            runs_at_once = executor.runs_at_once()
            tasks = [
                CellTask(cell, seed, folder / cell_run_dir(cell, seed),
                         _run_scenario(scenarios[cell], seed, runs_at_once, served), executor.threads_per_run,
                         spec.fork_cell(cells[cell]) if spec.fork is not None else None)
                for cell, seed in pending
            ]
            try:
                for task, outcome in executor.run(tasks):
                    _count(report, task, outcome)
                    bar.update(1)
                    bar.set_postfix(failed=len(report.failures), refresh=False)
            except KeyboardInterrupt:
                report.interrupted = True
                executor.stop()
    except (ExecutorError, SweepLLMError) as error:
        _update_record(folder, status="failed", error=str(error))
        raise
    finally:
        bar.close()
    report.invalid = int((~write_summary(folder, spec)["valid"].fill_null(True)).sum())
    counts = {"total": report.total, "completed": report.completed, "failed": len(report.failures),
              "invalid": report.invalid}
    _update_record(folder, status=report.status, runs=counts)
    return report


def _run_scenario(scenario: Scenario, seed: int, runs_at_once: int, served: tuple[str, str] | None) -> dict[str, Any]:
    """What one run plays: the cell's scenario with its seed and its share of the model servers."""
    base_url, model = served or (None, None)
    shared = share(scenario, runs_at_once, base_url, model)
    return shared.model_copy(update={"seed": seed}).model_dump(mode="json")


def _llm_port(folder: Path) -> int:
    """The port of the sweep's LLM server: chosen once and kept in sweep.json, so resumed runs find it again."""
    from llm_backend.facade import free_port

    record = read_json(folder / SWEEP)
    if "llm_port" not in record:
        record["llm_port"] = free_port()
        _write_record(folder, record)
    return int(record["llm_port"])


def _count(report: SweepReport, task: CellTask, outcome: CellOutcome | BaseException) -> None:
    """Add one finished task to the report; an interrupted run means the sweep was asked to stop."""
    if isinstance(outcome, BaseException):
        message = f"worker lost the run: {type(outcome).__name__}: {outcome}".replace("\n", " | ")
        record_failure(task.run_dir, message)
        outcome = CellOutcome(task.cell, task.seed, "failed", message)
    if outcome.status == "interrupted":
        raise KeyboardInterrupt
    if outcome.status == "completed":
        report.completed += 1
    else:
        report.failures.append((task.cell, task.seed, outcome.error or outcome.status))


def write_summary(folder: Path, spec: SweepSpec) -> pl.DataFrame:
    """Rebuild summary.parquet from the run folders (written to a temporary name, then renamed)."""
    frame = summary_frame(folder, spec)
    temporary = temporary_file(folder / SUMMARY)
    frame.write_parquet(temporary)
    os.replace(temporary, folder / SUMMARY)
    return frame
