"""Engine benchmark: heuristic harvest + regrow + punishment against a plain-Mesa implementation of the same rules.

    python bench/bench_engine.py                                   # 10k, 100k, 1M citizens
    python bench/bench_engine.py --sizes 10000 --same-rounds 20 --rounds 20 --repeats 2 --skip-recorded

Both implementations play the same rules (bench/mesa_baseline.py documents them) on the same Watts-Strogatz graph
(k = 10, p = 0.1, built once by the engine and handed to the Mesa model), in one process, one after the other.

The comparison is over the same rounds on both sides: each is timed over the first `--same-rounds` rounds of a
fresh model (100 at 10k and 100k; 5 at 1M, where a plain-Mesa round takes seconds), setup untimed, and each
figure is the fastest of `--repeats` runs. Before timing, the first round of both is checked to play the same
rules: their total harvest, stock and punishment count must agree within sampling noise (the two draw different
random numbers). Separately, for the 1M x 100 rounds target, the engine is timed over `--rounds` rounds and a
whole recorded `society run` (setup, rounds, Parquet tables, checkpoints as by default) is timed once
(bench/bench_recording.py times recording itself, beside plain Mesa).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from mesa_baseline import run_mesa_baseline

from society import Society
from society.core.runner import run_scenario
from society.scenario.schema import Scenario
from society.world.graph import SocialGraph

TOTALS = ("total_harvest", "stock_total", "punishments")
TOLERANCE = {"total_harvest": 0.02, "stock_total": 0.02, "punishments": 0.05}
"""Largest relative difference in the first round's totals that counts as the same rules (n >= 10,000)."""


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


def time_engine(n: int, rounds: int, seed: int) -> tuple[float, list[dict[str, float]], SocialGraph]:
    """Seconds for `rounds` rounds of the array engine on a fresh society, nothing written; setup untimed.

    Also returns every round's totals and the society's graph.
    """
    society = Society(bench_scenario(n, rounds, seed, record=False))
    totals = []
    seconds = 0.0
    for _ in range(rounds):
        started = time.perf_counter()
        society.step()
        seconds += time.perf_counter() - started
        totals.append({key: society.round_row[key] for key in TOTALS})
    return seconds, totals, society.graph


def time_recorded_run(n: int, rounds: int, seed: int) -> float:
    """Seconds for a whole `society run`: setup, rounds, every round's tables and the default checkpoints on disk."""
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        run_scenario(bench_scenario(n, rounds, seed, record=True), Path(folder) / "run")
        return time.perf_counter() - started


def same_rules(engine: dict[str, float], mesa: dict[str, float]) -> dict[str, float]:
    """Relative differences of the first round's totals; raises if one is beyond `TOLERANCE`."""
    differences = {key: abs(engine[key] - mesa[key]) / max(abs(mesa[key]), 1e-12) for key in TOTALS}
    off = {key: value for key, value in differences.items() if value > TOLERANCE[key]}
    if off:
        raise SystemExit(f"the engine and plain Mesa disagree on the first round: engine {engine}, Mesa {mesa}")
    return differences


def neighbour_lists(graph: SocialGraph) -> list[np.ndarray]:
    """Each citizen's neighbours, for the Mesa model (so both play on the same graph)."""
    return np.split(graph.indices, graph.indptr[1:-1])


def bench_size(n: int, same_rounds: int, rounds: int, seed: int, repeats: int, recorded: bool) -> dict[str, Any]:
    """One row of the results: both implementations over the same rounds, then the engine's longer runs."""
    engine_s, totals, graph = time_engine(n, same_rounds, seed)
    engine_first, neighbours = totals[0], neighbour_lists(graph)
    del graph
    for _ in range(repeats - 1):
        engine_s = min(engine_s, time_engine(n, same_rounds, seed)[0])
    mesa_runs = [run_mesa_baseline(n, same_rounds, seed, neighbours) for _ in range(repeats)]
    mesa_s = min(run["seconds"] for run in mesa_runs)
    differences = same_rules(engine_first, mesa_runs[0]["rounds_played"][0])
    del mesa_runs, neighbours
    row: dict[str, Any] = {
        "citizens": n,
        "same_rounds": same_rounds,
        "engine_s": round(engine_s, 3),
        "mesa_s": round(mesa_s, 2),
        "engine_ms_per_round": round(1e3 * engine_s / same_rounds, 2),
        "mesa_ms_per_round": round(1e3 * mesa_s / same_rounds, 1),
        "engine_citizen_rounds_per_s": round(n * same_rounds / engine_s),
        "mesa_citizen_rounds_per_s": round(n * same_rounds / mesa_s),
        "speedup": round(mesa_s / engine_s, 1),
        "first_round_differences": {key: round(value, 4) for key, value in differences.items()},
    }
    if rounds != same_rounds:
        full_s = min(time_engine(n, rounds, seed)[0] for _ in range(repeats))
        row |= {"rounds": rounds, "engine_full_s": round(full_s, 2)}
    if recorded:
        recorded_s = time_recorded_run(n, rounds, seed)
        row |= {"rounds": rounds, "recorded_run_s": round(recorded_s, 2),
                "recorded_citizen_rounds_per_s": round(n * rounds / recorded_s)}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--same-rounds", type=int, nargs="+",
                        help="rounds both implementations are timed over: one value, or one per size "
                             "(default: 100, or 5 from 1M citizens)")
    parser.add_argument("--rounds", type=int, default=100, help="rounds of the engine-only and recorded runs")
    parser.add_argument("--repeats", type=int, default=3, help="runs per timing, the fastest kept (both sides)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-recorded", action="store_true", help="leave out the recorded `society run`")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.same_rounds is None:
        same_rounds = [5 if n >= 1_000_000 else 100 for n in args.sizes]
    elif len(args.same_rounds) in (1, len(args.sizes)):
        same_rounds = args.same_rounds * len(args.sizes) if len(args.same_rounds) == 1 else args.same_rounds
    else:
        parser.error(f"--same-rounds takes one value or one per size ({len(args.sizes)}), not {len(args.same_rounds)}")
    Society(bench_scenario(1000, 2, args.seed, record=False)).step()  # compile the Numba kernels first
    results = []
    for n, k in zip(args.sizes, same_rounds, strict=True):
        row = bench_size(n, k, args.rounds, args.seed, args.repeats, not args.skip_recorded)
        results.append(row)
        print(json.dumps(row), flush=True)
    print(f"\nmachine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    header = ("citizens", "same_rounds", "engine_s", "mesa_s", "engine_citizen_rounds_per_s",
              "mesa_citizen_rounds_per_s", "speedup", "engine_full_s", "recorded_run_s")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in results:
        print("| " + " | ".join(str(row.get(key, "")) for key in header) + " |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
