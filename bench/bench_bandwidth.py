"""A round at 100,000 citizens against what memory bandwidth allows, phase by phase, with a profile of where it goes.

    python bench/bench_bandwidth.py                      # 100k citizens, rounds 1-20 (before the collapse)
    python bench/bench_bandwidth.py --citizens 1000000

The estimate: for each part of the benchmark's round (bench_engine.py's rules: harvest, regrow, punish with a
1.5x threshold, then the round's metrics), the bytes it must read and write per citizen (`MUST_TOUCH`, written
down from what the rules need, not from what the code happens to do), times the citizens, divided by this
machine's memory bandwidth (a numpy copy of an array far larger than the caches, read + written bytes over
seconds, fastest of 5). Measured: each part's wall time per round over the pre-collapse rounds of `--repeats`
fresh societies (nothing recorded; the median round and the mean), and a profile of one such round per part
(cProfile: Numba kernels show as one call each, so the profile says which kernel or Python step takes the rest).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_engine import bench_scenario  # noqa: E402

from society import Society  # noqa: E402
from society.core import model  # noqa: E402

NEIGHBOURS = 10
"""The benchmark graph's mean degree (Watts-Strogatz, k = 10)."""

LINE = 64
"""Bytes a read at a random place brings from memory: a whole cache line (a neighbour's value, a target's wealth)."""

MUST_TOUCH: dict[str, list[tuple[str, float]]] = {
    "harvest": [
        ("patch of the citizen (int64) and its stock, read", 8 + 8),
        ("sustainable share, written then read", 8 + 8),
        ("noise draw (20% of citizens are noiseless: 0.8 draws), written then read", 0.8 * 8 * 2),
        ("conditional citizens (30%) read their neighbours' last ratios: index (int64) + a random line each",
         0.3 * NEIGHBOURS * (8 + LINE)),
        ("request, written then read by the allocation", 8 + 8),
        ("granted take, written", 8),
        ("take, ratio, written; total take, wealth, reputation, read and written", 2 * 8 + 3 * 16),
    ],
    "regrow": [("per patch only (one patch per 1,000 citizens)", 0.0)],
    "punish": [
        ("take and sustainable share, read (who over-harvested)", 16),
        ("violation flag, written then read", 2),
        ("punisher flag (bool) and neighbour-list bounds (int64), read", 1 + 16),
        ("violators' neighbour lists (int64) scanned from their side: about 1 in 4 citizens violates",
         0.24 * NEIGHBOURS * 8),
        ("whether each violator's neighbour punishes: a random line per neighbour", 0.24 * NEIGHBOURS * LINE),
        ("the acts (actor, target as int64): about 1.9 per citizen, written then read", 1.9 * 16 * 2),
        ("each act's target: its received amount, a random line read and written", 1.9 * LINE * 2),
        ("paid, received, wealth: read and written", 3 * 16),
    ],
    "metrics": [
        ("Gini of wealth and of takes: each array read, its sorted copy written and read", 2 * 3 * 8),
        ("sums and means of wealth, take, request, punishments: read", 5 * 8),
        ("payoff: wealth now and before, read; written", 3 * 8),
    ],
}
"""Bytes per citizen per round each part must read or write under the benchmark's rules (pre-collapse)."""

PARTS = ("harvest", "regrow", "punish", "metrics")


def memory_bandwidth(megabytes: int = 512, repeats: int = 5) -> float:
    """Bytes per second of a numpy copy of a `megabytes` array (bytes read plus bytes written), fastest of `repeats`."""
    source = np.ones(megabytes * 2**20 // 8)
    target = np.empty_like(source)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        np.copyto(target, source)
        best = min(best, time.perf_counter() - started)
    return 2 * source.nbytes / best


def part_times(citizens: int, rounds: int, repeats: int) -> dict[str, tuple[float, float]]:
    """(median, mean) seconds per round of each part over rounds 1..`rounds` of `repeats` fresh societies.

    Both are given: on a shared two-core machine a round whose parallel kernel waits for a busy core costs several
    times the typical one, which moves the mean and not the median. Each society's rounds start after a full pass
    of the garbage collector, as in a fresh process (see `society.core.runner.setup_frozen`).
    """
    warm = Society(bench_scenario(citizens, 2, seed=1, record=False))  # loads every compiled kernel once, untimed
    warm.step()
    warm.step()
    samples: dict[str, list[float]] = {name: [] for name in (*PARTS, "rest")}
    for _ in range(repeats):
        society = Society(bench_scenario(citizens, rounds, seed=1, record=False))
        gc.collect()  # the next full pass would walk this society (and the last) inside a timed round
        metric_seconds = _timing_metrics()
        try:
            _time_rounds(society, rounds, metric_seconds, samples)
        finally:
            model.core_metrics = _CORE_METRICS
    return {name: (float(np.median(values)), float(np.mean(values))) for name, values in samples.items()}


def _time_rounds(
    society: Society, rounds: int, metric_seconds: Callable[[], float], samples: dict[str, list[float]]
) -> None:
    """Play `rounds` rounds, adding each part's seconds in each round to `samples`."""
    for _ in range(rounds):
        phases, metrics = dict(society.phase_seconds), metric_seconds()
        started = time.perf_counter()
        society.step()
        total = time.perf_counter() - started
        parts = {name: seconds - phases.get(name, 0.0) for name, seconds in society.phase_seconds.items()}
        parts["metrics"] = metric_seconds() - metrics
        parts["rest"] = total - sum(parts.values())
        for name, seconds in parts.items():
            samples[name].append(seconds)


_CORE_METRICS = model.core_metrics


def _timing_metrics() -> Callable[[], float]:
    """Time the round's core metrics from now on; returns a function giving the seconds spent so far."""
    spent = [0.0]

    def timed(society: Society) -> dict[str, Any]:
        started = time.perf_counter()
        row = _CORE_METRICS(society)
        spent[0] += time.perf_counter() - started
        return row

    model.core_metrics = timed
    return lambda: spent[0]


def profile_one_round(citizens: int, warm_rounds: int) -> dict[str, pstats.Stats]:
    """A cProfile of each part of round `warm_rounds + 1` (before the collapse)."""
    society = Society(bench_scenario(citizens, warm_rounds + 1, seed=1, record=False))
    for _ in range(warm_rounds):
        society.step()
    profiles = {name: cProfile.Profile() for name in PARTS}
    for phase in society.phases:
        phase.run = _profiled(phase.run, profiles[phase.name])
    model.core_metrics = _profiled(_CORE_METRICS, profiles["metrics"])
    try:
        society.step()
    finally:
        model.core_metrics = _CORE_METRICS
    return {name: pstats.Stats(profile) for name, profile in profiles.items()}


def _profiled(function: Callable[..., Any], profile: cProfile.Profile) -> Callable[..., Any]:
    def run(*args: Any) -> Any:
        profile.enable()
        try:
            return function(*args)
        finally:
            profile.disable()

    return run


def top_calls(stats: pstats.Stats, count: int) -> list[tuple[str, float]]:
    """The `count` functions with the most own time in `stats`: (name, ms)."""
    rows = [(f"{Path(file).stem}.{name}" if file != "~" else name, own * 1e3)
            for (file, _, name), (_, _, own, _, _) in stats.stats.items()]
    return sorted(rows, key=lambda row: -row[1])[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--citizens", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=20, help="pre-collapse rounds timed (the commons lasts ~30)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    bandwidth = memory_bandwidth()
    times = part_times(args.citizens, args.rounds, args.repeats)
    profiles = profile_one_round(args.citizens, warm_rounds=args.rounds // 2)
    print(f"{args.citizens:,} citizens, rounds 1-{args.rounds} (before the collapse), {args.repeats} runs; "
          f"memory bandwidth {bandwidth / 1e9:.1f} GB/s (numpy copy, read + write); "
          f"load average {os.getloadavg()[0]:.1f}\n")
    print("| part | bytes/citizen it must touch | estimate ms | measured ms, median round | median / estimate "
          "| measured ms, mean round |")
    print("|---|---|---|---|---|---|")
    total_bytes = total_estimate = 0.0
    for name in PARTS:
        per_citizen = sum(size for _, size in MUST_TOUCH[name])
        estimate = per_citizen * args.citizens / bandwidth * 1e3
        total_bytes += per_citizen
        total_estimate += estimate
        median, mean = (seconds * 1e3 for seconds in times[name])
        ratio = f"{median / estimate:.1f}x" if estimate else "-"
        print(f"| {name} | {per_citizen:.0f} | {estimate:.2f} | {median:.2f} | {ratio} | {mean:.2f} |")
    median_rest, mean_rest = (seconds * 1e3 for seconds in times["rest"])
    print(f"| rest of the round (interventions, bookkeeping) | - | - | {median_rest:.2f} | - | {mean_rest:.2f} |")
    median_round = sum(times[name][0] for name in times) * 1e3
    mean_round = sum(times[name][1] for name in times) * 1e3
    print(f"| **round** | {total_bytes:.0f} | {total_estimate:.2f} | {median_round:.2f} | "
          f"{median_round / total_estimate:.1f}x | {mean_round:.2f} |\n")
    for name in PARTS:
        print(f"{name}, one round profiled (own time, ms): " + "; ".join(
            f"{call} {ms:.2f}" for call, ms in top_calls(profiles[name], 6)))
    print("\nWhat each part must touch (bytes per citizen):")
    for name in PARTS:
        for what, size in MUST_TOUCH[name]:
            print(f"- {name}: {what}: {size:g}")


if __name__ == "__main__":
    main()
