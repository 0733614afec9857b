"""Dashboard page load times on a 10,000-citizen, 100-round run: each page's script, cold cache and warm.

    python bench/bench_dashboard.py                 # runs scenarios/village_10k.yaml first (as shipped)
    python bench/bench_dashboard.py --run RUN_DIR   # time an existing run instead

A page load here is the page's whole script in Streamlit's AppTest (reading, querying, building charts);
"cold" clears every file-keyed cache first, as a freshly started dashboard would be.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from dashboard import catalog, queries

REPO = Path(__file__).parents[1]
APP = str(REPO / "dashboard" / "app.py")
PAGES = ("runs", "commons", "norms", "power", "network", "citizen", "reasoning", "sweeps", "live")


def clear_caches() -> None:
    for module in (queries, catalog):
        for value in vars(module).values():
            if callable(getattr(value, "cache_clear", None)):
                value.cache_clear()


def load_seconds(run: Path, page: str, cold: bool) -> float:
    os.environ["SOCIETY_RUNS_DIR"] = str(run.parent)
    app = AppTest.from_file(APP, default_timeout=600)
    app.query_params["run"] = run.name
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="an existing run directory (default: run village_10k now)")
    args = parser.parse_args()
    run = args.run
    if run is None:
        from society.core.runner import run_scenario
        from society.scenario.files import load_scenario

        started = time.perf_counter()
        run = run_scenario(load_scenario(REPO / "scenarios" / "village_10k.yaml"),
                           Path(tempfile.mkdtemp(prefix="bench-dashboard-")) / "village_10k")
        print(f"village_10k run written in {time.perf_counter() - started:.1f} s to {run}")
    print(f"{'page':<10} {'cold s':>8} {'warm s':>8}")
    for page in PAGES:
        cold = load_seconds(run, page, cold=True)
        warm = load_seconds(run, page, cold=False)
        print(f"{page:<10} {cold:>8.2f} {warm:>8.2f}")


if __name__ == "__main__":
    main()
