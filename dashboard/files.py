"""Caching keyed on file modification times, and reading a run's Parquet tables with clear errors."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache, wraps
from pathlib import Path
from typing import ParamSpec, TypeVar

import polars as pl

P = ParamSpec("P")
T = TypeVar("T")

Stamp = tuple[tuple[str, int, int], ...]


class RunDataError(Exception):
    """A run folder's file cannot be read; the message is one line naming the file and what is wrong."""


def stamp(path: Path) -> Stamp:
    """Name, modification time and size of a file, or of every Parquet file in a folder (empty if absent)."""
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(path.glob("*.parquet"))
    else:
        return ()
    stamps = []
    for file in files:
        try:
            info = file.stat()
        except FileNotFoundError:
            continue
        stamps.append((file.name, info.st_mtime_ns, info.st_size))
    return tuple(stamps)


def keyed_on_files(*relative: str, maxsize: int = 32) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Cache a function of (folder, *args) until a file or Parquet folder named by `relative` changes.

    A run still being written gets new table files every round, which changes the key, so its pages show
    every round written so far while a finished run is read once.
    """

    def decorate(function: Callable[..., T]) -> Callable[..., T]:
        @lru_cache(maxsize=maxsize)
        def cached(folder: Path, stamps: tuple[Stamp, ...], *args: object) -> T:
            return function(folder, *args)

        @wraps(function)
        def wrapper(folder: str | Path, *args: object) -> T:
            folder = Path(folder)
            return cached(folder, tuple(stamp(folder / name) for name in relative), *args)

        wrapper.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
        return wrapper

    return decorate


def table_files(folder: Path) -> list[Path]:
    """The table's per-round Parquet files, in round order (half-written temporary files are skipped)."""
    return sorted(folder.glob("*.parquet")) if folder.is_dir() else []


def scan_table(folder: Path) -> pl.LazyFrame | None:
    """All of a table's files as one lazy frame (columns unioned), or None when it has no file yet."""
    files = table_files(folder)
    if not files:
        return None
    try:
        return pl.concat([pl.scan_parquet(file) for file in files], how="diagonal_relaxed")
    except (pl.exceptions.PolarsError, OSError) as error:
        raise _unreadable(files, error) from None


def collect(frame: pl.LazyFrame, folder: Path) -> pl.DataFrame:
    """Run a query over a table's files, turning a damaged file into a RunDataError naming it."""
    try:
        return frame.collect()
    except (pl.exceptions.PolarsError, OSError) as error:
        raise _unreadable(table_files(folder), error) from None


def read_parquet(file: Path) -> pl.DataFrame:
    """One Parquet file, or a RunDataError naming it."""
    try:
        return pl.read_parquet(file)
    except (pl.exceptions.PolarsError, OSError) as error:
        raise _unreadable([file], error) from None


def _unreadable(files: list[Path], error: Exception) -> RunDataError:
    for file in files:
        try:
            pl.read_parquet_schema(file)
        except (pl.exceptions.PolarsError, OSError):
            return RunDataError(f"{file}: not a readable Parquet file (damaged or cut short)")
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return RunDataError(f"{files[0].parent}: the table cannot be read ({first_line})")
