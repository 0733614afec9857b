"""Caching keyed on the modification times of a run's files (the files themselves are read by `layout`)."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache, wraps
from pathlib import Path
from typing import TypeVar

from society.rundir.layout import round_files

T = TypeVar("T")

Stamp = tuple[tuple[str, int, int], ...]


def stamp(path: Path) -> Stamp:
    """Name, modification time and size of a file, or of every round file of a table folder (empty if absent)."""
    files = [path] if path.is_file() else round_files(path)
    stamps = []
    for file in files:
        try:
            info = file.stat()
        except FileNotFoundError:
            continue
        stamps.append((file.name, info.st_mtime_ns, info.st_size))
    return tuple(stamps)


def keyed_on_files(*relative: str, maxsize: int = 32) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Cache a function of (folder, *args) until a file or table folder named by `relative` changes.

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
