"""Running a scenario into a run directory, with progress, Ctrl-C safety and resume."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from tqdm import tqdm

from society.model import Society
from society.recorder import CHECKPOINT, SCENARIO, RunDirectory
from society.scenario import Scenario
from society.scenario_files import load_scenario


class RunInterrupted(Exception):
    """The run was stopped (Ctrl-C); its directory can be resumed."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__(f"interrupted; continue with: society run --resume {run_dir}")
        self.run_dir = run_dir


def default_run_dir(scenario: Scenario) -> Path:
    """`<output.dir>/<name>-<timestamp>`: a fresh folder per run."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return scenario.output.dir / f"{scenario.name}-{stamp}"


def run_scenario(scenario: Scenario, out: Path | None = None, progress: bool = False) -> Path:
    """Play `scenario` to the end, recording every round into a new run directory; returns its path."""
    started = time.perf_counter()
    society = Society(scenario)
    run = RunDirectory.create(out or default_run_dir(scenario), scenario, society)
    run.update_manifest(timings={"setup_s": round(time.perf_counter() - started, 3)})
    return _play(society, run, progress)


def resume_run(run_dir: Path, progress: bool = False) -> Path:
    """Continue an interrupted run from its last checkpoint; a finished run is left as it is."""
    run = RunDirectory(run_dir)
    if not (run.path / SCENARIO).is_file():
        raise FileNotFoundError(f"{run_dir} is not a run directory (no {SCENARIO})")
    if run.manifest["status"] == "completed":
        return run.path
    society = Society(load_scenario(run.path / SCENARIO))
    if (run.path / CHECKPOINT).is_file():
        society.restore(run.load_checkpoint())
    run.drop_rounds_after(society.round)
    run.update_manifest(status="running", rounds_completed=society.round)
    return _play(society, run, progress)


def _play(society: Society, run: RunDirectory, progress: bool) -> Path:
    scenario = society.scenario
    bar = tqdm(total=scenario.rounds, initial=society.round, unit="round", disable=not progress, dynamic_ncols=True)
    started = time.perf_counter()
    try:
        while society.running and society.round < scenario.rounds:
            society.step()
            run.append_round(society)
            bar.update(1)
            if society.commons is not None:
                bar.set_postfix(stock=f"{society.commons.stock.sum():.4g}", refresh=False)
    except KeyboardInterrupt:
        run.flush(raise_errors=False)
        run.update_manifest(status="interrupted", rounds_completed=_last_checkpointed(run))
        raise RunInterrupted(run.path) from None
    except BaseException as error:
        run.flush(raise_errors=False)
        run.update_manifest(status="failed", error=f"{type(error).__name__}: {error}")
        raise
    finally:
        bar.close()
    run.flush()
    timings = run.manifest.get("timings", {}) | {
        "rounds_s": round(time.perf_counter() - started, 3),
        "phases_s": {name: round(seconds, 3) for name, seconds in society.phase_seconds.items()},
    }
    ended_by = "collapse" if society.round < scenario.rounds else "rounds"
    run.update_manifest(
        status="completed",
        rounds_completed=society.round,
        ended_by=ended_by,
        collapse_round=society.collapse_round,
        timings=timings,
    )
    return run.path


def _last_checkpointed(run: RunDirectory) -> int:
    return run.load_checkpoint()["round"] if (run.path / CHECKPOINT).is_file() else 0
