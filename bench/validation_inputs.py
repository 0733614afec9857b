"""What determines docs/validation.md's numbers: a digest of those files, and the commit they were read at."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INPUTS = ("bench/validation.py", "bench/validation_checks.py", "society", "norms", "scenarios")
"""The writer, the checks, the engine and its norms phases, and the scenarios the checks play."""
DIGEST_LINE = "Inputs digest: "


def input_files() -> list[Path]:
    """Every file under INPUTS that can change a measured number (Python sources and scenario files)."""
    files: list[Path] = []
    for name in INPUTS:
        path = ROOT / name
        files += [path] if path.is_file() else [f for f in path.rglob("*") if f.suffix in (".py", ".yaml")]
    return sorted(files)


def inputs_digest() -> str:
    """SHA-256 over the inputs' relative paths and contents."""
    digest = hashlib.sha256()
    for path in input_files():
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def commit() -> str:
    """The checked-out commit, marked `+changes` where the inputs differ from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()

    head = git("rev-parse", "--short=12", "HEAD")
    return head + ("+changes" if git("status", "--porcelain", "--", *INPUTS) else "")


def recorded_digest(document: Path) -> str | None:
    """The inputs digest a written docs/validation.md records, if any."""
    for line in document.read_text().splitlines():
        if line.startswith(DIGEST_LINE):
            return line.removeprefix(DIGEST_LINE).split("`")[1]
    return None
