"""Starting a shipped scenario in a separate process for the Live page, and watching it."""

from __future__ import annotations

import signal
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

LOGS = ".live"


def shipped_scenarios() -> list[Path]:
    """The scenarios shipped beside the package (the repository's scenarios/), else ./scenarios."""
    for folder in (Path(__file__).resolve().parents[1] / "scenarios", Path.cwd() / "scenarios"):
        if folder.is_dir():
            return sorted(folder.glob("*.yaml"))
    return []


@dataclass
class LiveRun:
    """A `society run` going on in its own process, writing into `run_dir`."""

    process: subprocess.Popen[bytes]
    run_dir: Path
    log: Path

    @property
    def exit_code(self) -> int | None:
        """None while the process runs."""
        return self.process.poll()

    def stop(self) -> None:
        """Interrupt the run as Ctrl-C would, so it records its status and can be resumed."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)

    def log_tail(self, lines: int = 8) -> str:
        """The last lines the process printed."""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.is_file() else ""


def start_run(scenario: Path, runs_dir: Path, overrides: list[str]) -> LiveRun:
    """Start `python -m society run SCENARIO` into a new folder of `runs_dir`; returns at once."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    run_dir = runs_dir / f"{scenario.stem}-live-{stamp}"
    log = runs_dir / LOGS / f"{run_dir.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    settings = [part for override in overrides for part in ("--set", override)]
    command = [sys.executable, "-m", "society", "run", str(scenario), "--out", str(run_dir), "--quiet", *settings]
    with open(log, "wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return LiveRun(process, run_dir, log)
