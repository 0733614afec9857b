"""A round's events file, encoded straight from the round's event batches on the writer thread.

Most of an events table is constant within a batch (a punishment round's 179k rows at 100,000 citizens share one
round, phase, kind, cost and impact, and have no detail), so each such column of a batch is written as one
dictionary value with an index per row, not a value per row. Actors and targets are delta-encoded and left
uncompressed (a punisher's targets follow each other in the graph's order): smaller than LZ4 of their plain values
and a fraction of its work. Statistics are kept where a reader skips files by them (round, phase, kind). In all,
about half the encoding work Polars spends on the same rows, in a file about half the size. The file holds plain
Parquet types (int32, string, int64, double; no Arrow schema, so no reader sees a dictionary type), and reads back
identical to `Society.round_events()`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

COLUMNS = ("round", "phase", "kind", "actor", "target", "cost", "impact", "detail")
"""The events table's columns, in file order (as `society.core.model.EVENT_SCHEMA`)."""

PER_BATCH = ("round", "phase", "kind", "cost", "impact", "detail")
"""Columns written dictionary-encoded: constant within a batch, or a few distinct values."""

NULLABLE = ("cost", "impact", "detail")
"""Columns that may hold nulls; the others are written as required (no definition level per row)."""

SKIPPED_BY = ("round", "phase", "kind")
"""Columns whose min/max statistics are written: the ones a reader filters whole files by (events of a kind)."""

DELTA_ENCODED = ("actor", "target")
"""Columns written with Parquet's delta encoding, uncompressed; the others are compressed with LZ4."""

ROW_BYTES = 2 * 8 + 5 * 4
"""Bytes queued per event: actor and target, and a dictionary index for each other column."""


class EventBatch(NamedTuple):
    """Events recorded together by one phase (`Society.record_events`): one actor and target per row; `cost` and
    `impact` an array per row, one number for every row, or None; `detail` a text per row or None."""

    round: int
    phase: str
    kind: str
    actors: np.ndarray
    targets: np.ndarray
    cost: np.ndarray | float | None
    impact: np.ndarray | float | None
    detail: list[str | None] | None


class RoundEvents:
    """A round's event batches, copied so the next round may reuse the arrays while the writer encodes these."""

    def __init__(self, batches: Iterable[tuple]) -> None:
        """`batches`: the round's `EventBatch`es, or tuples of the same fields (`Society.round_event_batches()`)."""
        self.batches = [
            EventBatch(
                number, phase, kind, np.array(actors, dtype=np.int64), np.array(targets, dtype=np.int64),
                _owned(cost), _owned(impact), None if detail is None else list(detail),
            )
            for number, phase, kind, actors, targets, cost, impact, detail in batches
        ]

    def estimated_size(self) -> int:
        """Bytes these events hold while queued (the writer's queue bound counts them)."""
        return sum(batch.actors.size for batch in self.batches) * ROW_BYTES

    def write(self, path: Path) -> None:
        """Encode the events as a Parquet file at `path` (encoded in memory, then written in one piece)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        encoded = pa.BufferOutputStream()
        pq.write_table(
            self.table(), encoded, store_schema=False, use_dictionary=list(PER_BATCH),
            column_encoding=dict.fromkeys(DELTA_ENCODED, "DELTA_BINARY_PACKED"),
            compression={name: "none" if name in DELTA_ENCODED else "lz4" for name in COLUMNS},
            write_statistics=list(SKIPPED_BY),
        )
        with open(path, "wb") as handle:
            handle.write(encoded.getvalue())

    def table(self) -> pa.Table:
        """The events as an Arrow table, batch after batch; per-batch columns dictionary-encoded.

        Arrays are built from their buffers and texts through Polars: `pyarrow.array` would import pandas, which a
        run never needs (see `society.core.lean_mesa`).
        """
        import pyarrow as pa

        types = _types()
        chunks: dict[str, list[pa.Array]] = {name: [] for name in COLUMNS}
        for batch in self.batches:
            rows = batch.actors.size
            values = {"round": batch.round, "phase": batch.phase, "kind": batch.kind, "cost": batch.cost,
                      "impact": batch.impact, "detail": batch.detail}
            first_value = _numbers(np.zeros(rows, np.int32), pa.int32())  # the index of every constant column
            for name in PER_BATCH:
                chunks[name].append(_dictionary_column(values[name], rows, types[name], first_value))
            chunks["actor"].append(_numbers(batch.actors, types["actor"]))
            chunks["target"].append(_numbers(batch.targets, types["target"]))
        columns = [pa.chunked_array(chunks[name], types[name] if name not in PER_BATCH else None)
                   if chunks[name] else pa.chunked_array([], types[name]) for name in COLUMNS]
        schema = pa.schema([pa.field(name, column.type, nullable=name in NULLABLE)
                            for name, column in zip(COLUMNS, columns, strict=True)])
        return pa.Table.from_arrays(columns, schema=schema)


def _owned(values: np.ndarray | float | None) -> np.ndarray | float | None:
    """A per-row array copied as float64; a single number or None as it is."""
    if values is None or np.ndim(values) == 0:
        return values
    return np.array(values, dtype=np.float64)


def _types() -> dict[str, pa.DataType]:
    import pyarrow as pa

    return {"round": pa.int32(), "phase": pa.string(), "kind": pa.string(), "actor": pa.int64(),
            "target": pa.int64(), "cost": pa.float64(), "impact": pa.float64(), "detail": pa.string()}


def _numbers(values: np.ndarray, value_type: pa.DataType) -> pa.Array:
    """A numeric Arrow array over `values`' own memory, converted to `value_type`'s numpy type first if need be."""
    import pyarrow as pa

    values = np.ascontiguousarray(values, dtype=value_type.to_pandas_dtype())
    return pa.Array.from_buffers(value_type, values.size, [None, pa.py_buffer(values)])


def _texts(values: list[str | None]) -> pa.Array:
    import polars as pl
    import pyarrow as pa

    return pl.Series(values, dtype=pl.Utf8).to_arrow().cast(pa.string())


def _dictionary_column(values: Any, rows: int, value_type: pa.DataType, first_value: pa.Array) -> pa.Array:
    """`values` (one value for every row, None for none, or one per row) as a dictionary array of `rows` rows;
    `first_value` is `rows` zeros, the indices of a single value."""
    import pyarrow as pa

    if values is None:
        return pa.nulls(rows, pa.dictionary(pa.int32(), value_type))
    if isinstance(values, list) or np.ndim(values) > 0:
        per_row = _texts(values) if value_type == pa.string() else _numbers(np.asarray(values), value_type)
        return per_row.dictionary_encode()
    value = _texts([values]) if value_type == pa.string() else _numbers(np.array([values]), value_type)
    return pa.DictionaryArray.from_arrays(first_value, value)
