"""Reading a run directory back: `load_run(path).rounds / .citizens / .events` as Polars DataFrames."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import polars as pl

from society.rundir.layout import (
    MANIFEST,
    Manifest,
    checked_manifest,
    read_graph,
    read_personas,
    read_scenario,
    read_table,
)


class Run:
    """A finished or partial run directory; tables load on first access."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @cached_property
    def rounds(self) -> pl.DataFrame:
        """One row per round: the commons, harvest, punishment and wealth metrics."""
        return read_table(self.path, "rounds")

    @cached_property
    def citizens(self) -> pl.DataFrame:
        """One row per citizen per recorded round."""
        return read_table(self.path, "citizens")

    @cached_property
    def events(self) -> pl.DataFrame:
        """Punishments (and, as phases add them, votes and messages), one row each."""
        return read_table(self.path, "events")

    @cached_property
    def llm_calls(self) -> pl.DataFrame:
        """One row per LLM call: round, phase, citizen, prompt and raw answer, tokens, latency, cached, fallback."""
        return read_table(self.path, "llm_calls")

    @cached_property
    def survey(self) -> pl.DataFrame:
        """One row per citizen per item per survey round (empty without a survey phase): see `society.phases.survey`."""
        return read_table(self.path, "survey")

    @cached_property
    def personas(self) -> pl.DataFrame:
        """One row per LLM citizen: role, values, hidden agenda and Big Five scores (empty without LLM citizens)."""
        return read_personas(self.path)

    def prompts(self, citizen: int) -> pl.DataFrame:
        """Every prompt one citizen was given and its raw answer, round by round."""
        calls = self.llm_calls
        if calls.is_empty():
            return calls
        return calls.filter(pl.col("citizen") == citizen)

    @cached_property
    def graph(self) -> pl.DataFrame:
        """The social graph as an edge list (source < target)."""
        return read_graph(self.path)

    @cached_property
    def manifest(self) -> Manifest:
        return checked_manifest(self.path)

    @cached_property
    def scenario(self) -> dict[str, Any]:
        """The resolved scenario the run used."""
        return read_scenario(self.path)


def load_run(path: str | Path) -> Run:
    """Open the run directory at `path` (its manifest read and checked now; a RunDataError names a damaged file)."""
    path = Path(path)
    if not (path / MANIFEST).is_file():
        raise FileNotFoundError(f"{path} is not a run directory (no {MANIFEST})")
    run = Run(path)
    run.manifest  # noqa: B018  (read and checked now, so a damaged manifest is an error here)
    return run
