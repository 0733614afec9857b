"""What recording costs: plain Mesa, the engine writing almost nothing, and the engine recording as it does by default.

    python bench/bench_recording.py                                     # 100k x 20 pre-collapse rounds, 1M x 100
    python bench/bench_recording.py --compare-with /tmp/base            # also the code checked out there
    python bench/bench_recording.py --sizes 10000 --rounds 20 --big 0   # quick

At `--sizes` citizens (default 100,000) over the first `--rounds` rounds (default 20: before the commons
collapses, see bench_engine.py), each side is timed `--repeats` times, the sides taking turns, and the fastest
kept:

* plain Mesa: bench/mesa_baseline.py, the same rules, on the engine's graph (rounds only, setup untimed);
* engine lean: a whole `society run` with no events, no citizens table and one checkpoint, after the last round;
* engine events + checkpoints: a whole `society run` recording events and checkpoints as the code does by
  default (the citizens table off, as in issue 17's measurement);
* engine fully recorded: the same with the citizens table every round (the default output).

The engine sides' time is the run's `timings.rounds_s` (from the first round to every file on disk, setup
excluded). Then `--big` citizens (default 1,000,000) x `--big-rounds` (100) fully recorded is timed whole
(setup included), once. With `--compare-with FOLDER`, the engine sides are also run with the `society`
package in FOLDER (e.g. a `git worktree` of the commit before), in a subprocess of this same invocation.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

STARTING_ENVIRONMENT = dict(os.environ)
"""This process's environment before `society` is imported (some versions of it set OMP_WAIT_POLICY for the
whole process), handed to the other code's subprocess so that it runs as its own command would."""

from bench_engine import bench_scenario, neighbour_lists  # noqa: E402
from mesa_baseline import run_mesa_baseline  # noqa: E402

import society  # noqa: E402
from society import Society  # noqa: E402
from society.core.runner import run_scenario  # noqa: E402
from society.scenario.schema import Scenario  # noqa: E402

MODES = {
    "lean": {"citizens_every": 0, "events": False},
    "events_checkpoints": {"citizens_every": 0, "events": True},
    "fully_recorded": {"citizens_every": 1, "events": True},
}
"""Output settings of each engine side (checkpoints: the code's default, except lean's one at the end)."""


def scenario(n: int, rounds: int, mode: str, seed: int) -> Scenario:
    """The benchmark scenario with `mode`'s output."""
    base = bench_scenario(n, rounds, seed, record=True)
    output = MODES[mode] | ({"checkpoint_every": rounds} if mode == "lean" else {})
    return base.model_copy(update={"output": base.output.model_copy(update=output)})


def rounds_seconds(chosen: Scenario) -> tuple[float, float]:
    """(the run's rounds_s from its manifest, its whole wall time) for one `society run`."""
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        path = run_scenario(chosen, Path(folder) / "run")
        wall = time.perf_counter() - started
        return json.loads((path / "manifest.json").read_text())["timings"]["rounds_s"], wall


def engine_sides(n: int, rounds: int, seed: int, repeats: int, big: int, big_rounds: int) -> dict[str, Any]:
    """The engine's sides with the `society` package this process imports."""
    rounds_seconds(scenario(1000, 3, "fully_recorded", seed))  # compile the Numba kernels, load the writers
    found: dict[str, Any] = {"society": str(Path(society.__file__).parent)}
    for mode in MODES:
        found[f"{mode}_s"] = round(min(rounds_seconds(scenario(n, rounds, mode, seed))[0] for _ in range(repeats)), 3)
    if big:
        whole_s = rounds_seconds(scenario(big, big_rounds, "fully_recorded", seed))[1]
        found["big_fully_recorded_wall_s"] = round(whole_s, 2)
    return found


def other_code(folder: Path, options: argparse.Namespace, big: int) -> dict[str, Any]:
    """`engine_sides` (one run each) with the `society` package in `folder`, in a subprocess."""
    here = Path(__file__).resolve().parent
    environment = STARTING_ENVIRONMENT | {"PYTHONPATH": os.pathsep.join([str(folder), str(here)])}
    command = [sys.executable, str(Path(__file__).resolve()), "--engine-only", "--sizes", str(options.sizes),
               "--rounds", str(options.rounds), "--repeats", "1", "--seed", str(options.seed),
               "--big", str(big), "--big-rounds", str(options.big_rounds)]
    done = subprocess.run(command, env=environment, cwd="/", capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def mesa_seconds(n: int, rounds: int, seed: int, repeats: int) -> float:
    """Plain Mesa over the same rounds on the engine's graph, fastest of `repeats`."""
    graph = Society(bench_scenario(n, rounds, seed, record=False)).graph
    neighbours = neighbour_lists(graph)
    return min(run_mesa_baseline(n, rounds, seed, neighbours)["seconds"] for _ in range(repeats))


def table(rows: dict[str, dict[str, Any]], mesa_s: float, rounds: int) -> str:
    """Markdown: ms per round and x plain Mesa of each side, per code."""
    lines = ["| code | side | ms/round | x plain Mesa |", "|---|---|---|---|",
             f"| - | plain Mesa | {1e3 * mesa_s / rounds:.1f} | 1.0 |"]
    for code, found in rows.items():
        for mode in MODES:
            seconds = found[f"{mode}_s"]
            lines.append(f"| {code} | engine {mode.replace('_', ' ')} | {1e3 * seconds / rounds:.1f} | "
                         f"{mesa_s / seconds:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, default=100_000, help="citizens of the side-by-side (one size)")
    parser.add_argument("--rounds", type=int, default=20, help="rounds of the side-by-side (pre-collapse)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per side, the fastest kept")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--big", type=int, default=1_000_000, help="citizens of the whole recorded run (0: none)")
    parser.add_argument("--big-rounds", type=int, default=100)
    parser.add_argument("--compare-with", type=Path, help="a checkout whose `society` is also timed")
    parser.add_argument("--engine-only", action="store_true", help="print the engine sides as JSON and stop")
    options = parser.parse_args()
    n, rounds = options.sizes, options.rounds
    if options.engine_only:
        print(json.dumps(engine_sides(n, rounds, options.seed, options.repeats, options.big, options.big_rounds)))
        return
    rows: dict[str, dict[str, Any]] = {}
    mesa_s = float("inf")
    for repeat in range(options.repeats):  # the sides take turns, so a change in the machine's load hits each alike
        big = options.big if repeat == 0 else 0
        turn = {"this": engine_sides(n, rounds, options.seed, 1, big, options.big_rounds)}
        if options.compare_with:
            turn["compared"] = other_code(options.compare_with, options, big)
        for code, found in turn.items():
            before = rows.get(code, {})
            rows[code] = before | found | {key: min(value, before[key]) for key, value in found.items()
                                           if key.endswith("_s") and key in before}
        mesa_s = min(mesa_s, mesa_seconds(n, rounds, options.seed, 1))
    print(json.dumps({"citizens": n, "rounds": rounds, "mesa_s": round(mesa_s, 3), **rows}, indent=1))
    print(f"\n{n:,} citizens, rounds 1-{rounds}, fastest of {options.repeats}; load average "
          f"{os.getloadavg()[0]:.1f} at the end\n")
    print(table(rows, mesa_s, rounds))
    if options.big:
        for code, found in rows.items():
            print(f"\n{code} ({found['society']}): {options.big:,} x {options.big_rounds} rounds fully recorded, "
                  f"whole run {found['big_fully_recorded_wall_s']} s")


if __name__ == "__main__":
    main()
