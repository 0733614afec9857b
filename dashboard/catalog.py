"""What a runs folder holds: runs, sweeps (and their cell runs), and folders that are neither, with their status."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dashboard.files import keyed_on_files

MANIFEST = "manifest.json"
SWEEP = "sweep.json"
SUMMARY = "summary.parquet"
REQUIRED_MANIFEST_FIELDS = ("name", "status", "rounds_planned", "rounds_completed")

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
    def label(self) -> str:
        return f"{self.name}  ({self.status})"


def discover(runs_dir: Path) -> list[Entry]:
    """Every run and sweep under `runs_dir` (sweep cells as `<sweep>/cells/<cell>`), newest first."""
    if not runs_dir.is_dir():
        return []
    entries: list[Entry] = []
    for folder in _subfolders(runs_dir):
        entry = describe(folder, folder.name)
        entries.append(entry)
        if entry.kind == "sweep":
            cells = folder / "cells"
            entries += [describe(cell, f"{folder.name}/cells/{cell.name}") for cell in _subfolders(cells)]
    return entries


def describe(folder: Path, name: str) -> Entry:
    """Classify one folder: a run (manifest.json), a sweep (sweep.json), or something that is neither."""
    if (folder / MANIFEST).is_file():
        return _run_entry(folder, name)
    if (folder / SWEEP).is_file():
        return _sweep_entry(folder, name)
    if not any(folder.iterdir()):
        return Entry(folder, name, "other", "empty", f"{folder} is empty: no run has been written there yet")
    return Entry(folder, name, "other", "not a run", f"{folder} is not a run folder (no {MANIFEST}, no {SWEEP})")


def _run_entry(folder: Path, name: str) -> Entry:
    manifest, problem = read_json(folder, MANIFEST)
    if problem is None:
        missing = [key for key in REQUIRED_MANIFEST_FIELDS if key not in manifest]
        if missing:
            problem = f"{folder / MANIFEST}: lacks the field(s) {', '.join(missing)}"
    if problem is not None:
        return Entry(folder, name, "run", "corrupt", problem)
    return Entry(folder, name, "run", str(manifest["status"]), None, manifest)


def _sweep_entry(folder: Path, name: str) -> Entry:
    spec, problem = read_json(folder, SWEEP)
    if problem is not None:
        return Entry(folder, name, "sweep", "corrupt", problem)
    return Entry(folder, name, "sweep", str(spec.get("status", "unknown")), None, spec)


def read_json(folder: Path, name: str) -> tuple[dict[str, Any], str | None]:
    """A JSON object file of a run or sweep folder, or a one-line problem naming it."""
    return _read_json(folder, name)


@keyed_on_files(MANIFEST, SWEEP, maxsize=512)
def _read_json(folder: Path, name: str) -> tuple[dict[str, Any], str | None]:
    path = folder / name
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        return {}, f"{path}: not valid JSON ({error.msg} at line {error.lineno}); the file is damaged"
    except (OSError, UnicodeDecodeError) as error:
        return {}, f"{path}: cannot be read ({error})"
    if not isinstance(data, dict):
        return {}, f"{path}: expected a JSON object, found {type(data).__name__}"
    return data, None


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
