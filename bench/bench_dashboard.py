"""Dashboard page load times on a 10,000-citizen, 100-round run and on a 100-cell sweep: each page's script,
cold cache and warm.

    python bench/bench_dashboard.py                     # plays village_10k and a 100-cell sweep first
    python bench/bench_dashboard.py --only sweep        # only the sweep (about a minute on 2 cores)
    python bench/bench_dashboard.py --run RUN_DIR       # time an existing run instead of playing village_10k
    python bench/bench_dashboard.py --sweep SWEEP_DIR   # time an existing sweep instead of playing the grid

A page load here is the page's whole script in Streamlit's AppTest (reading, querying, building charts);
"cold" clears every file-keyed cache first, as a freshly started dashboard would be. The sweep is GovSim's
fishery (5 heuristic fishers, 12 months) over 10 greed factors x 10 collapse thresholds, one seed per cell:
cheap to play, and 100 cell runs for the Runs page, the sidebar and the Sweeps page to list.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from dashboard import catalog, queries

REPO = Path(__file__).parents[1]
APP = str(REPO / "dashboard" / "app.py")
PAGES = ("runs", "commons", "norms", "power", "network", "citizen", "reasoning", "sweeps", "live")
GRID = f"""name: bench_dashboard_grid
base: {REPO / "scenarios" / "govsim_fishery.yaml"}
seeds: 1
set:
  commons.on_collapse: continue
axes:
  population.policies.1.factor: {{from: 1.5, to: 6, step: 0.5}}
  commons.collapse_threshold: {{from: 1, to: 10, step: 1}}
"""
SIDE_BY_SIDE = ("cells/0050/seed-0", "cells/0099/seed-0")  # compared with cell 0's run


def clear_caches() -> None:
    for module in (queries, catalog):
        for value in vars(module).values():
            if callable(getattr(value, "cache_clear", None)):
                value.cache_clear()


def load_seconds(runs_dir: Path, page: str, params: dict[str, str | list[str]], cold: bool) -> float:
    """Seconds to open `page` with the URL's `params` on `runs_dir`."""
    os.environ["SOCIETY_RUNS_DIR"] = str(runs_dir)
    app = AppTest.from_file(APP, default_timeout=600)
    for key, value in params.items():
        app.query_params[key] = value
    if cold:
        clear_caches()
    started = time.perf_counter()
    app.run()
    if page != "runs":
        app.switch_page(f"views/{page}.py").run()
    seconds = time.perf_counter() - started
    if app.exception:
        raise RuntimeError(f"{page}: {app.exception[0].value}")
    return seconds


def report(runs_dir: Path, loads: list[tuple[str, str, dict[str, str | list[str]]]]) -> None:
    """Print each load's cold and warm seconds."""
    print(f"{'page':<34} {'cold s':>8} {'warm s':>8}")
    for label, page, params in loads:
        cold = load_seconds(runs_dir, page, params, cold=True)
        warm = load_seconds(runs_dir, page, params, cold=False)
        print(f"{label:<34} {cold:>8.2f} {warm:>8.2f}")


def village_run() -> Path:
    from society.core.runner import run_scenario
    from society.scenario.files import load_scenario

    started = time.perf_counter()
    run = run_scenario(load_scenario(REPO / "scenarios" / "village_10k.yaml"),
                       Path(tempfile.mkdtemp(prefix="bench-dashboard-")) / "village_10k")
    print(f"village_10k run written in {time.perf_counter() - started:.1f} s to {run}")
    return run


def sweep_folder() -> Path:
    """Play the 100-cell grid with `society sweep` (one run after another: the machine may be shared)."""
    folder = Path(tempfile.mkdtemp(prefix="bench-dashboard-sweep-"))
    grid = folder / "grid.yaml"
    grid.write_text(GRID)
    sweep = folder / "runs" / "grid"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "society", "sweep", str(grid), "--out", str(sweep), "--workers", "1"],
                   check=True, stdout=subprocess.DEVNULL)
    print(f"100-cell sweep written in {time.perf_counter() - started:.1f} s to {sweep}")
    return sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="an existing run directory (default: play village_10k now)")
    parser.add_argument("--sweep", type=Path, help="an existing sweep folder (default: play the 100-cell grid)")
    parser.add_argument("--only", choices=("run", "sweep"), help="time only the run or only the sweep")
    args = parser.parse_args()
    if args.only != "sweep":
        run = args.run or village_run()
        report(run.parent, [(page, page, {"run": run.name}) for page in PAGES])
    if args.only != "run":
        sweep = args.sweep or sweep_folder()
        first = f"{sweep.name}/cells/0000/seed-0"
        others = [f"{sweep.name}/{cell}" for cell in SIDE_BY_SIDE]
        print(f"\n{sweep.name}: {len(list((sweep / 'cells').iterdir()))} cells")
        report(sweep.parent, [
            ("runs (lists every cell run)", "runs", {"run": first}),
            ("sweeps (heatmap, 100 cells)", "sweeps", {"sweep": sweep.name}),
            ("commons (one cell run)", "commons", {"run": first}),
            ("commons (3 cell runs side by side)", "commons", {"run": first, "with": others}),
            ("norms (3 cell runs side by side)", "norms", {"run": first, "with": others}),
            ("power (3 cell runs side by side)", "power", {"run": first, "with": others}),
        ])


if __name__ == "__main__":
    main()
