"""A round's events file reads back as the Polars events table, whatever the batches hold, and owns its arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
from polars.testing import assert_frame_equal

from society.core.model import EVENT_SCHEMA, _event_frame
from society.rundir.events_file import NULLABLE, PER_BATCH, RoundEvents

BATCHES = [
    (3, "punish", "punish", np.array([0, 0, 2]), np.array([1, 4, 3]), 1, np.float64(2.5), None),
    (3, "sanctions", "fine", np.array([7, 7]), np.array([1, 2]), None, np.array([0.5, 1.5]), None),
    (3, "elections", "ballot", np.array([1, 2, 3], np.int32), np.array([-1, -1, -1]), None, None,
     ['{"rank": [2, 1]}', None, '{"rank": [2, 1]}']),
    (3, "interventions", "intervention", np.array([-1]), np.array([-1]), 0.0, 0.0, ["ünïcode"]),
    (3, "punish", "punish", np.array([], np.int64), np.array([], np.int64), 1.0, 3.0, None),
]


def written(events: RoundEvents, tmp_path: Path) -> pl.DataFrame:
    path = tmp_path / "events.parquet"
    events.write(path)
    return pl.read_parquet(path)


def test_the_file_reads_back_as_the_events_table(tmp_path: Path) -> None:
    expected = pl.concat([_event_frame(*batch) for batch in BATCHES])
    assert_frame_equal(written(RoundEvents(BATCHES), tmp_path), expected)
    assert_frame_equal(written(RoundEvents([]), tmp_path), pl.DataFrame(schema=EVENT_SCHEMA))


def test_the_file_holds_plain_types_with_per_batch_columns_dictionary_encoded(tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    RoundEvents(BATCHES[:2]).write(path)
    schema = pq.read_schema(path)
    assert all("dictionary" not in str(field.type) for field in schema) and schema.metadata is None
    assert [field.name for field in schema if field.nullable] == list(NULLABLE)
    row_group = pq.ParquetFile(path).metadata.row_group(0)
    columns = {row_group.column(i).path_in_schema: row_group.column(i) for i in range(row_group.num_columns)}
    assert all("RLE_DICTIONARY" in columns[name].encodings for name in PER_BATCH)
    assert all("DELTA_BINARY_PACKED" in columns[name].encodings for name in ("actor", "target"))
    assert columns["kind"].statistics.min == "fine" and columns["kind"].statistics.max == "punish"
    assert [name for name, column in columns.items() if column.is_stats_set] == ["round", "phase", "kind"]


def test_a_file_records_the_kinds_it_holds_for_readers_that_filter_by_kind(tmp_path: Path) -> None:
    """The dashboard reads elections out of rounds of punishment events: each file's min/max kind lets a reader
    pass over a file that holds none."""
    RoundEvents(BATCHES[:1]).write(tmp_path / "punish.parquet")
    RoundEvents(BATCHES[2:3]).write(tmp_path / "ballot.parquet")
    query = pl.concat([pl.scan_parquet(tmp_path / name) for name in ("punish.parquet", "ballot.parquet")])
    assert query.filter(pl.col("kind").is_in(["ballot"])).collect()["actor"].to_list() == [1, 2, 3]
    statistics = pq.ParquetFile(tmp_path / "punish.parquet").metadata.row_group(0).column(2).statistics
    assert (statistics.min, statistics.max) == ("punish", "punish")


def test_the_events_are_copied_when_queued(tmp_path: Path) -> None:
    actors, targets, impact = np.array([1, 2]), np.array([3, 4]), np.array([0.5, 0.25])
    detail = ["a", "b"]
    events = RoundEvents([(1, "p", "k", actors, targets, None, impact, detail)])
    expected = _event_frame(1, "p", "k", actors.copy(), targets.copy(), None, impact.copy(), list(detail))
    actors[:] = 9
    targets[:] = 9
    impact[:] = 9.0
    detail[0] = "changed"
    assert_frame_equal(written(events, tmp_path), expected)
    assert events.estimated_size() > 0
