"""Start-up benchmark: from process start to the first round of `society run`, whole and stage by stage.

    python bench/bench_startup.py                                   # scenarios/village_10k.yaml, fastest of 5
    python bench/bench_startup.py --baseline-root ../old --repeats 7 --modules

Two measurements per side, each the fastest of `--repeats` fresh processes:

- *whole process*: wall seconds of `python -m society run SCENARIO --quiet --set rounds=1` (start-up, one round
  recorded, exit), and of the scenario as written (all its rounds).
- *stages*: the same command run inside an instrumented process that times, on the way to the first round,
  interpreter start-up, `import society.cli`, the command up to the model (its own imports, the scenario loaded
  and checked), `Society(...)` (graph, population, kernels the setup calls), the run directory created, the
  first round (kernels loaded from Numba's cache on first call) and its recording; the second round's time is
  shown beside the first, so the first-call overhead can be read off.

With `--baseline-root` (a checkout of another commit, e.g. `git archive COMMIT | tar -x -C DIR`), the same
measurements run against that code (by `PYTHONPATH`, with `--baseline-python` if it needs another interpreter),
alternating baseline and current in each repeat, so both see the same machine load. Each side plays once
untimed first, so Numba's kernel cache is written before any timing (that first, cold time is printed too).
"""

import time

SPAWNED = (time.time(), time.process_time())  # first statement: the driver times interpreter start-up to here

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("interpreter", "import society.cli", "command to model", "Society(...)", "run directory",
          "first round", "first round recorded")


def drive(scenario: str, out: str, spawned: float) -> None:
    """Run `society run` in this process, timing each stage to the first round (printed as one JSON line)."""
    marks: dict[str, tuple[float, float]] = {"spawned": (spawned, 0.0), "started": SPAWNED}
    before = set(sys.modules)
    modules: dict[str, list[str]] = {}

    def mark(name: str) -> None:
        nonlocal before
        marks[name] = (time.time(), time.process_time())
        now = set(sys.modules)
        modules[name] = sorted({module.split(".")[0] for module in now - before})
        before = now

    import society.cli

    mark("imported")
    try:  # as `society run` does first, where the code has it (a baseline checkout may not)
        from society.core.lean_mesa import import_mesa
    except ImportError:
        pass
    else:
        import_mesa()
    from society.core.model import Society
    from society.rundir.writer import RunDirectory

    init, step, append = Society.__init__, Society.step, RunDirectory.append_round
    steps: list[float] = []

    def timed_init(self: Society, *args: object, **kwargs: object) -> None:
        mark("command")
        init(self, *args, **kwargs)
        mark("setup")

    def timed_step(self: Society) -> None:
        if not steps:
            mark("run directory")
        started = time.perf_counter()
        step(self)
        steps.append(time.perf_counter() - started)
        if len(steps) == 1:
            mark("first round")

    def timed_append(self: RunDirectory, society_: Society) -> None:
        append(self, society_)
        if len(steps) == 1 and "recorded" not in marks:
            mark("recorded")

    Society.__init__, Society.step, RunDirectory.append_round = timed_init, timed_step, timed_append
    try:
        society.cli.main(["run", scenario, "--out", out, "--quiet", "--set", "rounds=2"], standalone_mode=False)
    finally:
        print(json.dumps({"marks": marks, "steps": steps, "modules": modules}))


def environment(root: Path | None) -> dict[str, str]:
    """This process's environment, with `root`'s packages first on the path when it is a baseline checkout."""
    env = dict(os.environ)
    if root is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(root), *filter(None, [env.get("PYTHONPATH", "")])])
    return env


def whole(python: str, root: Path | None, scenario: Path, out: Path, rounds: int | None) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one `python -m society run` process."""
    command = [python, "-m", "society", "run", str(scenario), "--out", str(out), "--quiet"]
    if rounds is not None:
        command += ["--set", f"rounds={rounds}"]
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run(command, check=True, env=environment(root), cwd=root or ROOT, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter() - started, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def staged(python: str, root: Path | None, scenario: Path, out: Path) -> dict[str, object]:
    """One instrumented process: wall and CPU seconds per stage to the first round, the first two rounds' wall
    seconds, and the packages each stage imported."""
    command = [python, str(Path(__file__).resolve()), "--drive", str(scenario), str(out), repr(time.time())]
    done = subprocess.run(command, check=True, env=environment(root), cwd=root or ROOT, capture_output=True, text=True)
    record = json.loads(done.stdout.strip().splitlines()[-1])
    marks = record["marks"]
    order = ["spawned", "started", "imported", "command", "setup", "run directory", "first round", "recorded"]
    seconds = {stage: [marks[b][k] - marks[a][k] for k in (0, 1)]
               for stage, a, b in zip(STAGES, order[:-1], order[1:], strict=True)}
    seconds["to first round recorded"] = [marks["recorded"][k] - marks["spawned"][k] for k in (0, 1)]
    return {"seconds": seconds, "steps": record["steps"], "modules": record["modules"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "village_10k.yaml")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--baseline-root", type=Path, help="a checkout of the commit to compare with")
    parser.add_argument("--baseline-python", default=sys.executable, help="the interpreter for the baseline")
    parser.add_argument("--modules", action="store_true", help="list the packages each stage imports")
    parser.add_argument("--drive", nargs=3, metavar=("SCENARIO", "OUT", "SPAWNED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive:
        drive(args.drive[0], args.drive[1], float(args.drive[2]))
        return
    scenario = args.scenario.resolve()
    sides: list[tuple[str, str, Path | None]] = [("current", sys.executable, None)]
    if args.baseline_root is not None:
        sides.insert(0, ("baseline", args.baseline_python, args.baseline_root.resolve()))
    results: dict[str, dict[str, list]] = {name: {"one": [], "all": [], "staged": []} for name, _, _ in sides}
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as scratch:
        runs = iter(Path(scratch) / str(k) for k in range(10**6))
        for name, python, root in sides:
            wall, cpu = whole(python, root, scenario, next(runs), 1)
            print(f"{name}: first run (Numba's cache cold or warm) {wall:.2f} s wall, {cpu:.2f} s CPU", flush=True)
        for _ in range(args.repeats):
            for name, python, root in sides:
                results[name]["one"].append(whole(python, root, scenario, next(runs), 1))
                results[name]["all"].append(whole(python, root, scenario, next(runs), None))
                results[name]["staged"].append(staged(python, root, scenario, next(runs)))
    load = os.getloadavg()[0]
    print(f"\n{scenario.name}, fastest of {args.repeats} per cell, Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs, load average {load:.1f} at the end\n")
    names = [name for name, _, _ in sides]
    print("| seconds | " + " | ".join(f"{n} wall" for n in names) + " | " + " | ".join(f"{n} CPU" for n in names)
          + " |\n|---|" + "---|" * 2 * len(names))
    rows: list[tuple[str, list[list[float]]]] = [
        ("whole `society run`, 1 round", [list(min(c[k] for c in results[n]["one"]) for k in (0, 1)) for n in names]),
        ("whole `society run`, all rounds", [list(min(c[k] for c in results[n]["all"]) for k in (0, 1))
                                            for n in names]),
    ]
    for stage in (*STAGES, "to first round recorded"):
        rows.append((stage, [[min(r["seconds"][stage][k] for r in results[n]["staged"]) for k in (0, 1)]
                             for n in names]))
    for label, cells in rows:
        print(f"| {label} | " + " | ".join(f"{c[0]:.3f}" for c in cells) + " | "
              + " | ".join(f"{c[1]:.3f}" for c in cells) + " |")
    for index, label in ((0, "round 1 (step)"), (1, "round 2 (step)")):
        walls = [f"{min(r['steps'][index] for r in results[n]['staged']):.3f}" for n in names]
        print(f"| {label} | " + " | ".join(walls) + " |" + " |" * len(names))
    if args.modules:
        for name in names:
            print(f"\n{name}: packages first imported in each stage (last staged run)")
            for stage, packages in results[name]["staged"][-1]["modules"].items():
                print(f"  {stage}: {', '.join(packages)}")


if __name__ == "__main__":
    main()
