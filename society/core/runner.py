"""Running a scenario into a run directory, with progress, Ctrl-C safety and resume."""

from __future__ import annotations

import contextlib
import gc
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

import polars as pl
from tqdm import tqdm

from society.core.model import Society
from society.core.validity import fallback_validity
from society.llm.asking import FallbackRateExceeded
from society.llm.backend import connect
from society.llm.persona_files import changed_persona_files
from society.rundir.checkpoint import checkpoint_files, checkpoint_round, read_checkpoint
from society.rundir.layout import (
    LLM_CACHE,
    MANIFEST,
    SCENARIO,
    RunDataError,
    checked_manifest,
    first_damaged_round,
    llm_log,
    read_manifest,
    read_scenario,
    read_table,
)
from society.rundir.writer import RunDirectory, RunWriteError
from society.scenario.files import validate
from society.scenario.problems import Problem, ScenarioError
from society.scenario.schema import Scenario


class RunInterrupted(Exception):
    """The run was stopped (Ctrl-C); its directory can be resumed."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__(f"interrupted; continue with: society run --resume {run_dir}")
        self.run_dir = run_dir


def default_run_dir(scenario: Scenario) -> Path:
    """`<output.dir>/<name>-<timestamp>`: a fresh folder per run."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return scenario.output.dir / f"{scenario.name}-{stamp}"


class ReplayError(ValueError):
    """`--replay` names no recorded LLM run, or the scenario has no LLM citizens to replay."""


def run_scenario(
    scenario: Scenario, out: Path | None = None, progress: bool = False, replay: Path | None = None
) -> Path:
    """Play `scenario` to the end, recording every round into a new run directory; returns its path.

    With `replay`, LLM answers come only from that earlier run's response cache (a miss is an error).
    """
    if replay is not None:
        scenario = _replaying(scenario, replay)
    started = time.perf_counter()
    society = Society(scenario)
    run = RunDirectory.create(out or default_run_dir(scenario), scenario, society)
    if replay is not None:
        shutil.copyfile(replay / LLM_CACHE, run.path / LLM_CACHE)
        run.update_manifest(llm={"replay_of": str(replay), "model": RunDirectory(replay).manifest["llm"]["model"]})
    run.update_manifest(timings={"setup_s": round(time.perf_counter() - started, 3)})
    return _play(society, run, progress)


def _replaying(scenario: Scenario, replay: Path) -> Scenario:
    """The scenario set to answer from a recorded cache, after checking `replay` is a recorded LLM run."""
    if not scenario.has_llm_citizens:
        raise ReplayError(f"--replay {replay}: the scenario {scenario.name!r} has no LLM citizens to replay")
    if not (replay / MANIFEST).is_file() or not (replay / LLM_CACHE).is_file():
        raise ReplayError(f"--replay {replay}: not a run directory with recorded LLM answers (no {LLM_CACHE})")
    if "llm" not in RunDirectory(replay).manifest:
        raise ReplayError(f"--replay {replay}: its manifest names no LLM model")
    llm = scenario.llm.model_copy(update={"cache": "replay"})
    return scenario.model_copy(update={"llm": llm})


def resume_run(run_dir: Path, progress: bool = False) -> Path:
    """Continue an interrupted run from its last checkpoint; a finished run is left as it is.

    A round whose table file is cut short or damaged is played again, from a checkpoint taken before it.
    """
    run = RunDirectory(run_dir)
    if not (run.path / SCENARIO).is_file():
        raise FileNotFoundError(f"{run_dir} is not a run directory (no {SCENARIO})")
    manifest = checked_manifest(run.path)
    damaged = first_damaged_round(run.path, manifest["rounds_completed"])
    if manifest["status"] == "completed" and damaged is None:
        return run.path
    society = Society(recorded_scenario(run.path))
    _restore_latest(society, run.path, damaged)
    run.update_manifest(status="running", rounds_completed=society.round)
    return _play(society, run, progress, replay_after=society.round)


def recorded_scenario(run: Path, data: dict[str, Any] | None = None) -> Scenario:
    """The scenario the run folder `run` recorded (or `data`, that scenario's mapping changed), validated as it is:
    its paths were anchored and confined when the run began. A ScenarioError if a persona file it reads changed since
    (its SHA-256 in the manifest differs): the run would give its citizens other personas."""
    source = str(run / SCENARIO)
    scenario, problems = validate(read_scenario(run) if data is None else data, source)
    if problems:
        raise ScenarioError(problems)
    changed = changed_persona_files(read_manifest(run).get("persona_files") or {})
    if changed:
        raise ScenarioError([Problem(source, "", message) for message in changed])
    return scenario


def _restore_latest(society: Society, run: Path, damaged: int | None, files: list[Path] | None = None) -> None:
    """Restore the latest readable checkpoint taken before round `damaged` (none: the society starts afresh), among
    `files` (default: the run's latest and previous checkpoints).

    A checkpoint that cannot be read is passed over for the next earlier one; when none is left, its error is raised.
    """
    errors: list[RunDataError] = []
    candidates: list[tuple[int, Path]] = []
    for file in checkpoint_files(run) if files is None else files:
        try:
            number = checkpoint_round(file)
        except RunDataError as error:
            errors.append(error)
            continue
        if damaged is None or number < damaged:
            candidates.append((number, file))
    template = society.checkpoint()
    for _, file in sorted(candidates, key=lambda candidate: candidate[0], reverse=True):
        try:
            checkpoint = read_checkpoint(file, template)
        except RunDataError as error:
            errors.append(error)
            continue
        try:
            society.restore(checkpoint)
        except (KeyError, IndexError, TypeError, ValueError) as error:
            raise RunDataError(f"{file}: does not fit this run's scenario ({type(error).__name__}: {error})") \
                from None
        return
    if errors:
        raise errors[0]


@contextlib.contextmanager
def _llm_connected(society: Society, run: RunDirectory, progress: bool) -> Iterator[None]:
    """Give the society's LLM citizens their model for the run (starting the local server if asked)."""
    if society.llm is None:
        yield
        return
    settings = society.scenario.llm
    recorded = run.manifest.get("llm", {})
    if progress and settings.cache != "replay" and settings.backend == "local":
        print("starting the local vLLM server (SmolLM2 on the CPU; about a minute)...", file=sys.stderr, flush=True)
    backends = society.llm.backends
    recorded_models = recorded.get("models", [recorded.get("model")])
    with contextlib.ExitStack() as stack:
        connections = [
            stack.enter_context(connect(backend, run.path / LLM_CACHE, recorded_models[k] if k < len(recorded_models)
                                        else None, run.path / llm_log(k)))
            for k, backend in enumerate(backends)
        ]
        models = {"model": connections[0].model}
        if len(connections) > 1:
            models["models"] = [connection.model for connection in connections]
        run.update_manifest(llm=recorded | models | {"backend": settings.backend, "cache": settings.cache})
        society.llm.connections = connections
        try:
            yield
        finally:
            society.llm.connection = None


def _play(
    society: Society, run: RunDirectory, progress: bool, replay_after: int | None = None, copied_until: int = 0
) -> Path:
    """Play the rounds left; with `replay_after` (a resume), first drop the table files of later rounds.

    They are dropped only once the rounds can be played (the LLM connected), so a resume that fails before loses
    no recorded round. Rounds up to `copied_until` (a fork's, copied from its parent) are played to rebuild the
    state, not recorded again; the last of them is checkpointed.
    """
    scenario = society.scenario
    bar = tqdm(total=scenario.rounds, initial=society.round, unit="round", disable=not progress, dynamic_ncols=True)
    started = time.perf_counter()
    try:
        with _llm_connected(society, run, progress):
            if replay_after is not None:
                run.drop_rounds_after(replay_after)
            with _stops_between_rounds(society.llm is None) as stop_asked, setup_frozen():
                _play_rounds(society, run, bar, stop_asked, copied_until)
        run.flush()
    except KeyboardInterrupt:
        run.flush(raise_errors=False)
        with contextlib.suppress(Exception):
            run.checkpoint_recorded_round(society)
            run.flush(raise_errors=False)
        _note_in_manifest(run, status="interrupted", rounds_completed=_last_checkpointed(run))
        raise RunInterrupted(run.path) from None
    except RunWriteError as error:
        run.flush(raise_errors=False)
        _note_in_manifest(run, status="failed", error=f"{type(error).__name__}: {error}")
        raise RunWriteError(f"{error}; the run stopped after its last whole round: free space, then continue "
                            f"with: society run --resume {run.path}") from None
    except BaseException as error:
        run.flush(raise_errors=False)
        with contextlib.suppress(RunDataError):
            _note_in_manifest(run, status="failed", error=f"{type(error).__name__}: {error}",
                              **_validity(society, run, in_flight=isinstance(error, FallbackRateExceeded)))
        raise
    finally:
        bar.close()
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
        **_validity(society, run),
    )
    return run.path


def _validity(society: Society, run: RunDirectory, in_flight: bool = False) -> dict[str, Any]:
    """The manifest's `validity` of an LLM run, over every recorded call (and the round in flight's, when a
    fallback stop cut it short); nothing for a run without LLM citizens."""
    if society.llm is None:
        return {}
    calls = read_table(run.path, "llm_calls")
    if in_flight:
        calls = pl.concat([calls, society.llm.round_calls()], how="diagonal_relaxed")
    if calls.is_empty():
        calls = pl.DataFrame(schema={"phase": pl.Utf8, "fallback": pl.Boolean})
    return {"validity": fallback_validity(calls.select("phase", "fallback"), society.scenario.llm.invalid_threshold)}


def _play_rounds(
    society: Society, run: RunDirectory, bar: tqdm, stop_asked: Callable[[], bool], copied_until: int
) -> None:
    while society.running and society.round < society.scenario.rounds:
        society.step()
        if society.round > copied_until:
            run.append_round(society)
        elif society.round == copied_until:
            run.record_copied_round(society)
        bar.update(1)
        if society.commons is not None:
            bar.set_postfix(stock=f"{society.commons.stock.sum():.4g}", refresh=False)
        if stop_asked():
            raise KeyboardInterrupt


_froze_a_run = False
"""Whether this process has already played a run's rounds with its setup frozen (`setup_frozen`)."""


@contextlib.contextmanager
def setup_frozen() -> Iterator[None]:
    """Keep what exists before the rounds (modules, compiled kernels, the society) out of the garbage collector's
    full passes while they run, in a process's first run.

    Those objects live as long as the run, yet a full pass walks all of them: about 80 ms, once or more in a run,
    inside some round (a 100-round run of 100,000 citizens takes under a second). Objects the rounds make are
    collected as before. A later run in the same process (a sweep's worker, a script's loop) is not frozen: the
    earlier runs' societies may still be waiting for a full pass (they are cyclic garbage), and freezing them in
    every run would keep them for good. Nothing is frozen where the caller has frozen objects itself.
    """
    global _froze_a_run
    if _froze_a_run or gc.get_freeze_count():
        yield
        return
    _froze_a_run = True
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@contextlib.contextmanager
def _stops_between_rounds(enabled: bool) -> Iterator[Callable[[], bool]]:
    """While `enabled` (rounds without LLM citizens: short ones), a first Ctrl-C or SIGTERM lets the round in
    progress finish, so the run stops at a round's end and checkpoints it; a second stops at once.

    Yields whether a stop was asked. Signal handlers can only be set in the main thread; elsewhere nothing changes.
    """
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    asked: list[int] = []

    def ask(signum: int, frame: FrameType | None) -> None:
        if asked:
            raise KeyboardInterrupt
        asked.append(signum)

    previous = {stop: signal.signal(stop, ask) for stop in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: bool(asked)
    finally:
        for stop, handler in previous.items():
            signal.signal(stop, handler)


def _note_in_manifest(run: RunDirectory, **changes: Any) -> None:
    """Record why the run stopped, if the disk still takes the manifest (a full one may not)."""
    with contextlib.suppress(RunWriteError, RunDataError):
        run.update_manifest(**changes)


def _last_checkpointed(run: RunDirectory) -> int:
    """The round of the run's latest readable checkpoint (0 when it has none)."""
    for file in checkpoint_files(run.path):
        with contextlib.suppress(RunDataError):
            return checkpoint_round(file)
    return 0
