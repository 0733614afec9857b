"""Struct-of-arrays citizen state: one numpy array per attribute, indexed by citizen."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Column:
    """How one state attribute is stored and whether the citizens table records it."""

    dtype: np.dtype
    record: bool
    fill: float | int | bool = 0


class CitizenState:
    """Named arrays of length `n`; phases add the columns they need and work on whole arrays."""

    def __init__(self, n: int) -> None:
        self.n = int(n)
        self._arrays: dict[str, np.ndarray] = {}
        self._columns: dict[str, Column] = {}

    def add(self, name: str, dtype: type | np.dtype, fill: float | int | bool = 0, record: bool = True) -> np.ndarray:
        """Register a column (idempotent for an identical spec) and return its array."""
        column = Column(np.dtype(dtype), record, fill)
        if name in self._columns:
            if self._columns[name].dtype != column.dtype:
                raise ValueError(f"state column {name!r} already exists with dtype {self._columns[name].dtype}")
            return self._arrays[name]
        self._columns[name] = column
        self._arrays[name] = np.full(self.n, fill, dtype=column.dtype)
        return self._arrays[name]

    def __getitem__(self, name: str) -> np.ndarray:
        return self._arrays[name]

    def __setitem__(self, name: str, values: np.ndarray) -> None:
        """Overwrite a registered column in place (keeps the array object that views hold).

        `state[name] += x` updates the column itself and then assigns it back to itself; that costs nothing.
        """
        column = self._arrays[name]
        if values is not column:
            column[...] = values

    def __contains__(self, name: str) -> bool:
        return name in self._arrays

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def recorded(self) -> list[str]:
        """Names of the columns written to the citizens table."""
        return [name for name, column in self._columns.items() if column.record]

    def grown(self, k: int) -> CitizenState:
        """A new state with `k` more citizens: every column copied, the new rows at their column's fill value."""
        state = CitizenState(self.n + k)
        for name, column in self._columns.items():
            state.add(name, column.dtype, column.fill, column.record)[: self.n] = self._arrays[name]
        return state

    def snapshot(self) -> dict[str, np.ndarray]:
        """Copies of every array, for a checkpoint."""
        return {name: array.copy() for name, array in self._arrays.items()}

    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        """Load arrays from a checkpoint into the registered columns."""
        missing = set(self._arrays) - set(arrays)
        if missing:
            raise ValueError(f"checkpoint lacks state columns: {sorted(missing)}")
        for name, values in arrays.items():
            if name in self._arrays:
                self._arrays[name][...] = values
