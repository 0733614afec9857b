"""Reading a run directory back: `load_run(path).rounds / .citizens / .events` as Polars DataFrames."""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from society.rundir.writer import MANIFEST, PERSONAS, SCENARIO


class Run:
    """A finished or partial run directory; tables load on first access."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _table(self, name: str) -> pl.DataFrame:
        files = sorted((self.path / "tables" / name).glob("*.parquet"))
        if not files:
            return pl.DataFrame()
        return pl.concat([pl.read_parquet(file) for file in files], how="diagonal_relaxed")

    @cached_property
    def rounds(self) -> pl.DataFrame:
        """One row per round: the commons, harvest, punishment and wealth metrics."""
        return self._table("rounds")

    @cached_property
    def citizens(self) -> pl.DataFrame:
        """One row per citizen per recorded round."""
        return self._table("citizens")

    @cached_property
    def events(self) -> pl.DataFrame:
        """Punishments (and, as phases add them, votes and messages), one row each."""
        return self._table("events")

    @cached_property
    def llm_calls(self) -> pl.DataFrame:
        """One row per LLM call: round, phase, citizen, prompt and raw answer, tokens, latency, cached, fallback."""
        return self._table("llm_calls")

    @cached_property
    def personas(self) -> pl.DataFrame:
        """One row per LLM citizen: role, values, hidden agenda and Big Five scores (empty without LLM citizens)."""
        path = self.path / PERSONAS
        return pl.read_parquet(path) if path.is_file() else pl.DataFrame()

    def prompts(self, citizen: int) -> pl.DataFrame:
        """Every prompt one citizen was given and its raw answer, round by round."""
        calls = self.llm_calls
        if calls.is_empty():
            return calls
        return calls.filter(pl.col("citizen") == citizen)

    @cached_property
    def graph(self) -> pl.DataFrame:
        """The social graph as an edge list (source < target)."""
        return pl.read_parquet(self.path / "graph.parquet")

    @cached_property
    def manifest(self) -> dict[str, Any]:
        return json.loads((self.path / MANIFEST).read_text())

    @cached_property
    def scenario(self) -> dict[str, Any]:
        """The resolved scenario the run used."""
        return yaml.safe_load((self.path / SCENARIO).read_text())


def load_run(path: str | Path) -> Run:
    """Open the run directory at `path`."""
    path = Path(path)
    if not (path / MANIFEST).is_file():
        raise FileNotFoundError(f"{path} is not a run directory (no {MANIFEST})")
    return Run(path)
