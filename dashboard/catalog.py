"""What a runs folder holds: runs, sweeps (and their cell runs), and folders that are neither, with their status."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dashboard.files import keyed_on_files
from society.rundir.layout import (
    CELLS,
    ERROR,
    MANIFEST,
    SEED_PREFIX,
    SWEEP,
    RunDataError,
    is_run_dir,
    is_sweep_dir,
    missing_manifest_fields,
    read_json,
)

Kind = Literal["run", "sweep", "other"]


@dataclass(frozen=True)
class Entry:
    """One folder of the runs folder; `problem` is a one-line reason when it cannot be shown."""

    path: Path
    name: str
    kind: Kind
    status: str
    problem: str | None = None
    info: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def invalid(self) -> bool:
        """Whether the run's manifest marks it invalid (too many of its LLM decisions made by fallbacks)."""
        validity = self.info.get("validity")
        return isinstance(validity, dict) and validity.get("valid") is False

    @property
    def label(self) -> str:
        return f"{self.name}  ({self.status}{', invalid' if self.invalid else ''})"


def discover(runs_dir: Path) -> list[Entry]:
    """Every run and sweep under `runs_dir` (a sweep's runs as `<sweep>/cells/<cell>/seed-<n>`), newest first."""
    if not runs_dir.is_dir():
        return []
    entries: list[Entry] = []
    for folder in _subfolders(runs_dir):
        entry = describe(folder, folder.name)
        entries.append(entry)
        if entry.kind == "sweep":
            entries += sweep_runs(folder, folder.name)
    return entries


def sweep_runs(sweep: Path, name: str) -> list[Entry]:
    """The runs of a sweep's cells (`cells/<cell>/seed-<n>`), in cell and seed order; a cell folder that holds
    no seed folder is described itself."""
    found: list[Entry] = []
    for cell in sorted(_subfolders(sweep / CELLS), key=lambda path: path.name):
        seeds = [folder for folder in _subfolders(cell) if folder.name.startswith(SEED_PREFIX)]
        if not seeds:
            found.append(describe(cell, f"{name}/{CELLS}/{cell.name}"))
            continue
        for seed in sorted(seeds, key=lambda path: _seed_number(path.name)):
            found.append(describe(seed, f"{name}/{CELLS}/{cell.name}/{seed.name}"))
    return found


def _seed_number(folder_name: str) -> int:
    suffix = folder_name.removeprefix(SEED_PREFIX)
    return int(suffix) if suffix.isdigit() else -1


def describe(folder: Path, name: str) -> Entry:
    """Classify one folder: a run (manifest.json), a sweep (sweep.json), or something that is neither."""
    if is_run_dir(folder):
        return _run_entry(folder, name)
    if is_sweep_dir(folder):
        return _sweep_entry(folder, name)
    if (folder / ERROR).is_file():
        reason = (folder / ERROR).read_text(errors="replace").strip().splitlines() or ["no error recorded"]
        return Entry(folder, name, "other", "failed", f"{folder}: this run failed before writing a round: {reason[0]}")
    if not any(folder.iterdir()):
        return Entry(folder, name, "other", "empty", f"{folder} is empty: no run has been written there yet")
    return Entry(folder, name, "other", "not a run", f"{folder} is not a run folder (no {MANIFEST}, no {SWEEP})")


def _run_entry(folder: Path, name: str) -> Entry:
    manifest, problem = run_manifest(folder)
    if problem is None:
        missing = missing_manifest_fields(manifest)
        if missing:
            problem = f"{folder / MANIFEST}: lacks the field(s) {', '.join(missing)}"
    if problem is not None:
        return Entry(folder, name, "run", "corrupt", problem)
    return Entry(folder, name, "run", str(manifest["status"]), None, manifest)


def _sweep_entry(folder: Path, name: str) -> Entry:
    spec, problem = _read_object(folder, SWEEP)
    if problem is not None:
        return Entry(folder, name, "sweep", "corrupt", problem)
    return Entry(folder, name, "sweep", str(spec.get("status", "unknown")), None, spec)


def run_manifest(folder: Path) -> tuple[dict[str, Any], str | None]:
    """A run's manifest (cached on its time), or a one-line problem naming it."""
    return _read_object(folder, MANIFEST)


@keyed_on_files(MANIFEST, SWEEP, maxsize=512)
def _read_object(folder: Path, name: str) -> tuple[dict[str, Any], str | None]:
    """A JSON object file of a run or sweep folder, or a one-line problem naming it."""
    try:
        return read_json(folder / name), None
    except RunDataError as error:
        return {}, str(error)


def _subfolders(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    found = [path for path in folder.iterdir() if path.is_dir() and not path.name.startswith(".")]
    return sorted(found, key=lambda path: path.stat().st_mtime, reverse=True)


def overview(entries: list[Entry]) -> list[dict[str, Any]]:
    """One row per entry for the Runs page's table."""
    rows = []
    for entry in entries:
        info = entry.info
        rows.append({
            "name": entry.name,
            "kind": entry.kind,
            "status": entry.status,
            "rounds": f"{info['rounds_completed']}/{info['rounds_planned']}" if entry.kind == "run" and info else "",
            "citizens": info.get("citizens") if entry.kind == "run" else None,
            "seed": info.get("seed") if entry.kind == "run" else None,
            "updated": str(info.get("updated", "")),
            "problem": entry.problem or "",
        })
    return rows
