"""Engine benchmark: heuristic harvest + regrow + punishment against a plain-Mesa implementation.

    python bench/bench_engine.py                      # 10k, 100k, 1M citizens x 100 rounds
    python bench/bench_engine.py --sizes 10000 --rounds 20 --baseline-rounds 20

Both implementations play the same rules (bench/mesa_baseline.py documents them) on a Watts-Strogatz graph
of mean degree 10, in one process, one after the other. The plain-Mesa version is timed over
`--baseline-rounds` rounds (it is far too slow for 100 rounds at 1M) and reported per citizen-round.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

from mesa_baseline import run_mesa_baseline

from society import Society
from society.runner import run_scenario
from society.scenario import Scenario


def bench_scenario(n: int, rounds: int, seed: int, record: bool) -> Scenario:
    """The benchmark's rules as a scenario (the same ones the Mesa baseline implements)."""
    patches = max(1, n // 1000)
    return Scenario.model_validate(
        {
            "name": f"bench_{n}",
            "seed": seed,
            "rounds": rounds,
            "population": {
                "size": n,
                "policies": [
                    {"policy": "sustainable", "fraction": 0.5, "noise": 0.1},
                    {"policy": "conditional", "fraction": 0.3, "noise": 0.1},
                    {"policy": "greedy", "fraction": 0.2, "factor": 2, "noise": 0.1},
                ],
            },
            "graph": {"kind": "watts_strogatz", "k": 10, "p": 0.1},
            "commons": {
                "patches": patches,
                "capacity": 100 * n / patches,
                "initial_stock": 50 * n / patches,
                "regrowth": {"kind": "logistic", "rate": 0.5},
                "collapse_threshold": n / patches,
                "on_collapse": "continue",
                "assignment": "block",
            },
            "schedule": ["harvest", "regrow", {"phase": "punish", "params": {"threshold": 1.5}}],
            "output": {"citizens_every": 1 if record else 0, "events": record},
        }
    )


def time_engine(n: int, rounds: int, seed: int) -> dict[str, float]:
    """Rounds of the array engine alone, no recording."""
    started = time.perf_counter()
    society = Society(bench_scenario(n, rounds, seed, record=False))
    setup = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(rounds):
        society.step()
    seconds = time.perf_counter() - started
    return {"setup_s": setup, "seconds": seconds, "citizen_rounds_per_s": n * rounds / seconds,
            "punishments_last_round": society.round_row["punishments"]}


def time_recorded_run(n: int, rounds: int, seed: int) -> dict[str, float]:
    """A full `society run`: every round's rounds, citizens and events tables plus a checkpoint on disk."""
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        run_scenario(bench_scenario(n, rounds, seed, record=True), Path(folder) / "run")
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "citizen_rounds_per_s": n * rounds / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--baseline-rounds", type=int, nargs="+", default=[100, 10, 2],
                        help="plain-Mesa rounds per size (one value, or one per size)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    baseline_rounds = args.baseline_rounds * len(args.sizes) if len(args.baseline_rounds) == 1 else args.baseline_rounds
    Society(bench_scenario(1000, 2, args.seed, record=False)).step()  # compile the Numba kernels first
    results = []
    for n, mesa_rounds in zip(args.sizes, baseline_rounds, strict=True):
        engine = time_engine(n, args.rounds, args.seed)
        recorded = time_recorded_run(n, args.rounds, args.seed)
        mesa = run_mesa_baseline(n, mesa_rounds, args.seed)
        row = {
            "citizens": n,
            "rounds": args.rounds,
            "engine_s": round(engine["seconds"], 2),
            "engine_setup_s": round(engine["setup_s"], 2),
            "engine_citizen_rounds_per_s": round(engine["citizen_rounds_per_s"]),
            "recorded_run_s": round(recorded["seconds"], 2),
            "recorded_citizen_rounds_per_s": round(recorded["citizen_rounds_per_s"]),
            "mesa_rounds_timed": mesa_rounds,
            "mesa_citizen_rounds_per_s": round(mesa["citizen_rounds_per_s"]),
            "speedup_engine": round(engine["citizen_rounds_per_s"] / mesa["citizen_rounds_per_s"], 1),
            "speedup_recorded": round(recorded["citizen_rounds_per_s"] / mesa["citizen_rounds_per_s"], 1),
        }
        results.append(row)
        print(json.dumps(row), flush=True)
    print(f"\nmachine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    header = ("citizens", "rounds", "engine_s", "recorded_run_s", "engine_citizen_rounds_per_s",
              "recorded_citizen_rounds_per_s", "mesa_citizen_rounds_per_s", "mesa_rounds_timed",
              "speedup_engine", "speedup_recorded")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in results:
        print("| " + " | ".join(str(row[key]) for key in header) + " |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
