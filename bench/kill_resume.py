"""Kill `society run` with SIGKILL at random moments, resume it, and count the runs whose tables equal an
uninterrupted run's.

Three scenarios: a heuristic commons (village_10k, shrunk), a heuristic norms society with messages
(norms_rich_selfish), and LLM citizens (village_llm, shrunk) replaying a cache recorded with the deterministic
`SchemaAnswers` stand-in, so no model is needed. Each kill lands at a random moment after the run's first round
is on disk; the run folder is then resumed with `society run --resume` and every table is compared.

    python bench/kill_resume.py                 # 21 runs, 7 per scenario (about 2 minutes on 2 cores)
    python bench/kill_resume.py --per-scenario 20
"""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the recorder lives with the tests

from polars.testing import assert_frame_equal  # noqa: E402

from society import load_run, load_scenario  # noqa: E402
from society.rundir.layout import read_manifest, table_files  # noqa: E402
from tests.llm_recording import record_llm_run  # noqa: E402

SCENARIOS = ROOT / "scenarios"
TABLES = ("rounds", "citizens", "events", "llm_calls")
LLM = ["population.size=12", "rounds=40"]


def society(*args: str) -> list[str]:
    return [sys.executable, "-m", "society", *args, "--quiet"]


def same_tables(run: Path, reference: Path) -> bool:
    first, second = load_run(reference), load_run(run)
    try:
        for table in TABLES:
            assert_frame_equal(getattr(first, table), getattr(second, table), check_column_order=False)
    except AssertionError:
        return False
    return True


def kill_and_resume(arguments: list[str], out: Path, delay_s: float) -> tuple[bool, bool]:
    """(whether the kill cut the run short, whether the resume succeeded)."""
    process = subprocess.Popen(society("run", *arguments, "--out", str(out)),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while process.poll() is None and not table_files(out, "rounds") and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(delay_s)
    process.send_signal(signal.SIGKILL)
    process.wait()
    cut = (out / "manifest.json").is_file() and read_manifest(out)["status"] != "completed"
    resumed = subprocess.run(society("run", "--resume", str(out)), capture_output=True, text=True, timeout=300)
    return cut, resumed.returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-scenario", type=int, default=7, help="killed runs per scenario (default 7)")
    parser.add_argument("--seed", type=int, default=14, help="seed of the kill moments")
    options = parser.parse_args()
    rng = random.Random(options.seed)
    with tempfile.TemporaryDirectory(prefix="kill-resume-") as folder:
        work = Path(folder)
        recorded = record_llm_run(load_scenario(SCENARIOS / "village_llm.yaml", LLM), work / "llm-recorded")
        scenarios = {
            "village_10k": ([str(SCENARIOS / "village_10k.yaml"), "--set", "population.size=3000",
                             "--set", "rounds=100"], 0.6),
            "norms_rich_selfish": ([str(SCENARIOS / "norms_rich_selfish.yaml"), "--set", "rounds=60"], 0.8),
            "village_llm replay": ([str(SCENARIOS / "village_llm.yaml"), *(f"--set={s}" for s in LLM),
                                    "--replay", str(recorded)], 0.5),
        }
        total = identical = cut_short = 0
        for index, (name, (arguments, window_s)) in enumerate(scenarios.items()):
            reference = work / f"{index}-whole"
            subprocess.run(society("run", *arguments, "--out", str(reference)), check=True, timeout=300,
                           stdout=subprocess.DEVNULL)
            matches = 0
            for kill in range(options.per_scenario):
                out = work / f"{index}-{kill}"
                cut, resumed = kill_and_resume(arguments, out, rng.uniform(0, window_s))
                same = resumed and same_tables(out, reference)
                total, identical, cut_short = total + 1, identical + same, cut_short + cut
                matches += same
            print(f"{name}: {matches}/{options.per_scenario} identical", flush=True)
    print(f"kill -9 then resume: {identical}/{total} runs identical to an uninterrupted run "
          f"({cut_short} killed mid-run, the rest after their last round; 3 scenarios incl. LLM replay)")
    sys.exit(0 if identical == total else 1)


if __name__ == "__main__":
    main()
