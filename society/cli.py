"""The `society` command: run, validate and inspect scenarios; other packages add commands through entry points."""

from __future__ import annotations

import json
import signal
import sys
import threading
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, NoReturn

import click

from society.core.lean_mesa import import_mesa
from society.rundir.layout import SWEEP, RunDataError
from society.scenario.files import ScenarioError, load_scenario

if TYPE_CHECKING:
    import polars as pl

INVALID_INPUT = 2
RUN_FAILED = 1
COMMANDS = "society.commands"
"""Entry-point group of the commands other packages add (e.g. `dashboard`), each a click command."""


def fail(message: str) -> NoReturn:
    """Stop a command with one `error:` line on stderr and the invalid-input exit status."""
    click.echo(f"error: {message}", err=True)
    sys.exit(INVALID_INPUT)


@cache
def _contributed() -> dict[str, EntryPoint]:
    return {point.name: point for point in entry_points(group=COMMANDS)}


class _Commands(click.Group):
    """The built-in commands, then the contributed ones, each imported only when it is run or listed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(_contributed()))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None and name in _contributed():
            command = _contributed()[name].load()
        return command


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Agent-based societies of LLM and heuristic citizens sharing a commons."""
    if threading.current_thread() is threading.main_thread():  # only the main thread may set a signal handler
        signal.signal(signal.SIGTERM, _stop_as_interrupt)


def _bars_lock_in_process() -> None:
    """Progress bars of this command lock within the process (tqdm's default lock is a multiprocessing one,
    which, once Mesa has set the `spawn` start method, starts a resource-tracker process for every run)."""
    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())


def _stop_as_interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM (`kill`, a batch scheduler) stops a command as Ctrl-C does: written rounds kept, servers stopped."""
    raise KeyboardInterrupt


@main.command()
@click.argument("scenario", required=False, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), help="Run directory to create (default: runs/<name>-<time>).")
@click.option("--seed", type=int, help="Override the scenario's seed.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a field, e.g. rounds=20.")
@click.option("--resume", type=click.Path(path_type=Path), help="Continue an interrupted run directory.")
@click.option(
    "--replay", type=click.Path(path_type=Path), help="Answer LLM citizens only from this earlier run's recorded answers."
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def run(
    scenario: Path | None, out: Path | None, seed: int | None, overrides: tuple[str, ...], resume: Path | None,
    replay: Path | None, quiet: bool,
) -> None:
    """Run SCENARIO headless and write its tables to a run directory."""
    import_mesa()
    from llm_backend.facade import loaded_errors
    from society.core.runner import (
        ReplayError,
        RunInterrupted,
        resume_run,
        run_scenario,
    )
    from society.llm.asking import FallbackRateExceeded
    from society.rundir.writer import RunWriteError

    _bars_lock_in_process()
    try:
        if resume is not None:
            if scenario is not None or overrides or seed is not None or replay is not None:
                fail("--resume takes the run directory alone (its scenario is already fixed)")
            path = resume_run(resume, progress=not quiet)
        else:
            if scenario is None:
                fail("missing SCENARIO (a YAML file) or --resume RUN_DIR")
            settings = list(overrides) + ([f"seed={seed}"] if seed is not None else [])
            path = run_scenario(load_scenario(scenario, settings), out, progress=not quiet, replay=replay)
    except ScenarioError as error:
        fail(f"invalid scenario\n{error}")
    except (FileExistsError, FileNotFoundError, ReplayError, RunDataError, RunWriteError,
            *loaded_errors("CacheFileError")) as error:
        fail(str(error))
    except loaded_errors("ServerError", "WeightsError", "UnreachableServerError") as error:
        fail(f"{error}\n(fix the llm section of the scenario, or the server, then continue with --resume)")
    except (FallbackRateExceeded, *loaded_errors("CacheMiss")) as error:
        click.echo(f"error: {error}\nthe run stopped after its last whole round; continue it with --resume", err=True)
        sys.exit(RUN_FAILED)
    except RunInterrupted as interrupted:
        click.echo(f"\n{interrupted}", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("\ninterrupted before the first round was written; nothing to resume", err=True)
        sys.exit(130)
    click.echo(f"run written to {path}")


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--at", "at", type=int, required=True, help="The round the change applies at the start of.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="Change a field at round --at (what an intervention's set may change), e.g. commons.capacity=900.")
@click.option("--intervene", "interventions", multiple=True, metavar="YAML_OR_FILE",
              help="An intervention at round --at (an entry of interventions: without when), e.g. "
                   "'{shock: {severity: 0.5}}' or a YAML file.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="The fork's run directory to create.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def fork(run_dir: Path, at: int, settings: tuple[str, ...], interventions: tuple[str, ...], out: Path,
         quiet: bool) -> None:
    """Play the completed run in RUN_DIR again from round --at on, changed there; rounds before are the parent's."""
    import_mesa()
    from llm_backend.facade import loaded_errors
    from society.core.fork import ForkError, ParentScenarioError, fork_run
    from society.core.runner import RunInterrupted
    from society.llm.asking import FallbackRateExceeded
    from society.rundir.writer import RunWriteError

    _bars_lock_in_process()
    try:
        path = fork_run(run_dir, at, out, settings, interventions, progress=not quiet)
    except ParentScenarioError as error:
        fail(f"{run_dir}: the parent run's own scenario has a problem (not the change; the fork cannot start from "
             f"it)\n{error}")
    except ScenarioError as error:
        fail(f"invalid change\n{error}")
    except (ForkError, FileExistsError, RunDataError, RunWriteError, *loaded_errors("CacheFileError")) as error:
        fail(str(error))
    except loaded_errors("ServerError", "WeightsError", "UnreachableServerError") as error:
        fail(f"{error}\n(fix the llm section of the scenario, or the server, then continue with society run --resume "
             f"{out})")
    except (FallbackRateExceeded, *loaded_errors("CacheMiss")) as error:
        click.echo(f"error: {error}\nthe fork stopped after its last whole round; continue it with society run "
                   f"--resume {out}", err=True)
        sys.exit(RUN_FAILED)
    except RunInterrupted as interrupted:
        click.echo(f"\n{interrupted}", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo(f"\n{RunInterrupted(out)}", err=True)
        sys.exit(130)
    click.echo(f"fork written to {path}")


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate(files: tuple[Path, ...]) -> None:
    """Check scenario FILES; print every problem (file, field, what was expected)."""
    from society.core.build import graph_file_problems

    failed = False
    for file in files:
        try:
            scenario = load_scenario(file)
            problems = graph_file_problems(scenario.graph, scenario.population.size)
        except ScenarioError as error:
            problems = error.problems
        failed |= bool(problems)
        for problem in problems:
            click.echo(str(problem), err=True)
        if not problems:
            click.echo(f"{file}: ok")
    sys.exit(INVALID_INPUT if failed else 0)


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
def info(run_dir: Path) -> None:
    """Summarise the run in RUN_DIR: status, rounds, final metrics."""
    from society.rundir.layout import check_tables
    from society.rundir.persona_validity import persona_validity
    from society.rundir.reader import load_run
    from society.rundir.run_metrics import run_metrics

    try:
        run = load_run(run_dir)
        manifest = run.manifest
        check_tables(run.path)
        rounds = run.rounds
        whole_run = run_metrics(run.path)
        personas = persona_validity(run.path)
    except (FileNotFoundError, RunDataError) as error:
        fail(str(error))
    click.echo(f"run        {run.path}")
    click.echo(f"scenario   {manifest['name']}  (seed {manifest.get('seed')}, {manifest.get('citizens')} citizens"
               f"{_arrivals_and_departures(run.events)})")
    click.echo(f"status     {manifest['status']}  ({manifest['rounds_completed']}/{manifest['rounds_planned']} rounds)")
    if manifest.get("ended_by") == "collapse":
        click.echo(f"collapse   round {manifest['collapse_round']}: the commons collapsed and the run ended there "
                   "(commons.on_collapse: stop)")
    validity = manifest.get("validity")
    if isinstance(validity, dict):
        share = f"fallbacks  {validity.get('fallbacks')} of {validity.get('asked')} LLM answers"
        verdict = "valid" if validity.get("valid") else "INVALID: " + str(validity.get("reason"))
        survey = (f"; survey: {validity['survey_fallbacks']} of {validity['survey_asked']}, not judged"
                  if validity.get("survey_asked") else "")
        click.echo(f"{share}  ({verdict}){survey}")
    if isinstance(manifest.get("fork_of"), dict):
        _fork_lines(run.path, manifest)
    graph = manifest.get("graph")
    if isinstance(graph, dict) and {"edges", "mean_degree", "average_clustering"} <= set(graph):
        click.echo(
            f"graph      {graph['edges']} edges, mean degree {graph['mean_degree']:.2f}, "
            f"clustering {graph['average_clustering']:.3f}"
        )
    if rounds.height:
        last = rounds.row(-1, named=True)
        skip = {"round", "stock"}
        click.echo(f"round {last['round']}:")
        for key, value in last.items():
            if key not in skip and value is not None:
                click.echo(f"  {key:<20} {value:.4g}" if isinstance(value, float) else f"  {key:<20} {value}")
        click.echo("run:")
        for key, value in whole_run.items():
            click.echo(f"  {key:<20} " + ("n/a" if value is None else f"{value:.4g}"))
    if personas is not None:
        _echo_persona_validity(personas)


def _arrivals_and_departures(events: pl.DataFrame) -> str:
    """", then N arrived and M left" when interventions added or removed citizens (empty otherwise)."""
    import polars as pl

    if events.is_empty() or "kind" not in events.columns:
        return ""
    arrived = left = 0
    for detail in events.filter(pl.col("kind") == "intervention")["detail"]:
        fired = json.loads(detail or "{}")
        arrived += len(fired.get("add", {}).get("citizens", []))
        left += len(fired.get("remove", {}).get("citizens", []))
    changes = [f"{arrived} arrived" if arrived else "", f"{left} left" if left else ""]
    return ", then " + " and ".join(change for change in changes if change) if arrived or left else ""


def _echo_persona_validity(table: pl.DataFrame) -> None:
    """The persona-validity block of `society info`: Pearson's r of each assigned trait with what was measured."""
    measures = [name for name in table.columns if name not in ("trait", "citizens")]
    click.echo("persona validity (Pearson r, assigned Big Five vs surveyed score and behaviour; NaN: < 3 citizens "
               "or no variance):")
    click.echo(f"  {'trait':<18} {'citizens':>8} " + " ".join(f"{name:>16}" for name in measures))
    for row in table.iter_rows(named=True):
        values = " ".join(f"{row[name]:>16.3f}" for name in measures)
        click.echo(f"  {row['trait']:<18} {row['citizens']:>8} {values}")


def _fork_lines(run: Path, manifest: dict) -> None:
    """What `info` says of a fork: its parent, its round and change, and the first round any of its tables differs."""
    from society.core.fork import divergence_round, fork_parent
    from society.rundir.layout import is_run_dir
    from society.scenario.files import confined

    change = "; ".join(json.dumps({k: v for k, v in spec.items() if k != "when"}, sort_keys=True)
                       for spec in manifest.get("fork_change") or []) or "no change"
    try:
        parent = fork_parent(run, manifest)
    except RunDataError as error:
        click.echo(f"fork of    an unknown parent ({error})")
        return
    click.echo(f"fork of    {parent}  (at round {manifest.get('fork_at')}: {change})")
    roots = (Path(run).resolve().parent, Path.cwd().resolve())
    try:
        if not confined(parent, roots):  # a fork folder from someone else may name any folder as its parent
            diverges = "not compared (the parent lies outside the fork's folder and the current folder; run info " \
                       "from a folder holding both)"
        else:
            diverges = divergence_round(run, parent) if is_run_dir(parent) else "parent not found"
    except RunDataError as error:
        diverges = f"parent unreadable ({error})"
    shown = "no divergence" if diverges is None else diverges if isinstance(diverges, str) else f"round {diverges}"
    click.echo(f"diverges   {shown}")


@main.group()
def llm() -> None:
    """The local LLM server (SmolLM2 or any model directory; on the GPUs CUDA sees, else vLLM's CPU build)."""


@llm.command()
@click.option("--port", type=int, help="Port on 127.0.0.1 (default: a free one).")
@click.option("--model-dir", type=click.Path(path_type=Path), help="A model directory (default: converted SmolLM2).")
@click.option("--concurrency", type=click.IntRange(min=1), default=256, show_default=True,
              help="Most sequences in a batch (on the CPU at most 256).")
def serve(port: int | None, model_dir: Path | None, concurrency: int) -> None:
    """Start vLLM in the foreground and restart it if it dies; Ctrl-C stops it."""
    from llm_backend.facade import ServerError, WeightsError, serve_local

    try:
        serve_local(model_dir, port, concurrency)
    except (ServerError, WeightsError) as error:
        fail(str(error))


@main.command()
@click.argument("grid", required=False, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), help="Sweep folder (default: runs/<grid name>-<time>).")
@click.option("--workers", type=click.IntRange(min=1), help="Runs at once (default: one per CPU).")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="A local process pool, or Ray.")
@click.option("--ray-address", metavar="ADDR", help="An existing Ray cluster (default: start a local Ray).")
@click.option("--resume", type=click.Path(path_type=Path), help="Continue the sweep in this folder.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def sweep(
    grid: Path | None, out: Path | None, workers: int | None, executor: str, ray_address: str | None,
    resume: Path | None, quiet: bool,
) -> None:
    """Run every cell of GRID (a base scenario, axes of values, seeds), skipping runs already completed."""
    from importlib.util import find_spec

    from society.sweeps import (
        ExecutorError,
        SweepFolderError,
        SweepLLMError,
        load_grid,
        make_executor,
        read_sweep,
        run_sweep,
    )
    from society.sweeps.executors import cpu_count
    from society.sweeps.sweep import default_sweep_dir

    _bars_lock_in_process()
    if ray_address and executor != "ray":
        fail("--ray-address needs --executor ray")
    if executor == "ray" and find_spec("ray") is None:
        fail("--executor ray needs Ray: python -m pip install 'society[ray]'")
    try:
        if resume is not None:
            if grid is not None or out is not None:
                fail(f"--resume takes the sweep folder alone (its grid is recorded in {SWEEP})")
            spec, folder = read_sweep(resume), resume
        else:
            if grid is None:
                fail("missing GRID (a YAML grid file) or --resume SWEEP_DIR")
            spec = load_grid(grid)
            folder = out or default_sweep_dir(spec)
        report = run_sweep(spec, folder, make_executor(executor, workers or cpu_count(), ray_address), not quiet)
    except ScenarioError as error:
        fail(f"invalid grid\n{error}")
    except (ExecutorError, SweepFolderError, SweepLLMError, RunDataError) as error:
        fail(str(error))
    except KeyboardInterrupt:
        click.echo("\ninterrupted", err=True)
        sys.exit(130)
    for cell, seed, message in report.failures[:10]:
        click.echo(f"  cell {cell} seed {seed}: {message}", err=True)
    click.echo(report.line(), err=bool(report.failures or report.interrupted))
    sys.exit(130 if report.interrupted else 1 if report.failures else 0)
