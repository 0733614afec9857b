"""Sweep benchmark: one 64-cell heuristic grid played serially, by 2 local workers, and by a local Ray.

    python bench/bench_sweep.py                                     # the shipped 8 x 8 grid, 1,000 citizens
    python bench/bench_sweep.py --workers 4 --set population.size=5000

The grid is scenarios/grids/punish_cost_x_richness.yaml (8 punishment costs x 8 regrowth rates, one seed,
a 1,000-citizen village over 50 rounds, every table recorded). Each executor writes its own sweep folder in
a temporary directory; wall time covers the whole `run_sweep` call (pool or Ray start-up included, grid
validation included, summary written). Serial runs once with the kernels on every CPU (as `society run`) and
once on one thread (as each run in a pool of 2 workers on 2 CPUs). All summaries must agree, which the
script checks.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import polars as pl
import yaml
from polars.testing import assert_frame_equal

from society.rundir.layout import SUMMARY
from society.sweeps import LocalExecutor, RayExecutor, SerialExecutor, SweepSpec, load_grid, run_sweep
from society.sweeps.executors import Executor, cpu_count

GRID = Path(__file__).parents[1] / "scenarios" / "grids" / "punish_cost_x_richness.yaml"


def time_sweep(spec: SweepSpec, executor: Executor, folder: Path) -> tuple[float, pl.DataFrame]:
    """Wall seconds of one whole sweep (cells validated, runs played, summary written), and its summary."""
    started = time.perf_counter()
    report = run_sweep(spec, folder, executor)
    seconds = time.perf_counter() - started
    if report.failures or report.completed != report.total:
        raise RuntimeError(f"{executor.description}: {report.line()}")
    return seconds, pl.read_parquet(folder / SUMMARY)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", type=Path, default=GRID)
    parser.add_argument("--workers", type=int, default=2, help="local workers and local Ray CPUs")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE",
                        help="override a field in every cell (value read as YAML)")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray executor")
    args = parser.parse_args()

    executors: list[tuple[str, Executor]] = [
        (f"serial, kernels on {cpu_count()} threads", SerialExecutor()),
        ("serial, kernels on 1 thread", SerialExecutor(threads=1)),
        (f"local, {args.workers} workers", LocalExecutor(args.workers)),
    ]
    if not args.no_ray:
        executors.append((f"ray, local, {args.workers} CPUs", RayExecutor(args.workers)))
    spec = load_grid(args.grid)
    fixed = {path: yaml.safe_load(value) for path, value in (item.split("=", 1) for item in args.overrides)}
    spec = spec.model_copy(update={"set": spec.set | fixed})
    runs = len(spec.cells()) * len(spec.seeds)
    print(f"grid {args.grid.name}: {runs} runs; {cpu_count()} CPUs, Python {platform.python_version()}")
    print("| executor | wall s | runs/s | speed-up vs the first row |\n|---|---|---|---|")
    baseline: tuple[float, pl.DataFrame] | None = None
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as scratch:
        for index, (label, executor) in enumerate(executors):
            seconds, summary = time_sweep(spec, executor, Path(scratch) / str(index))
            if baseline is None:
                baseline = (seconds, summary)
            else:
                assert_frame_equal(summary, baseline[1])
            print(f"| {label} | {seconds:.2f} | {runs / seconds:.2f} | {baseline[0] / seconds:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
