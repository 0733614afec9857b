"""The run writer's queue: rounds written in order off the round's thread, memory bounded, errors raised in the run."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from society import Society
from society.rundir import layout, writer
from society.rundir.writer import RunDirectory, RunWriteError
from tests.society.conftest import make_scenario

ROUNDS = 12


def round_of(path: Path) -> int | None:
    """The round a table file's temporary name belongs to (None for other files)."""
    number = re.fullmatch(r"\.(\d{6})\.parquet\.tmp", path.name)
    return None if number is None else int(number[1])


def most_rounds_waiting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, queue_bytes: int) -> int:
    """Play ROUNDS rounds on a slow disk; the most rounds handed to the writer and not yet written at once."""
    original = writer.write_file
    written: set[int] = set()

    def slow_disk(path: Path, data: bytes) -> None:
        time.sleep(0.01)
        original(path, data)
        if (number := round_of(path)) is not None:
            written.add(number)

    monkeypatch.setattr(writer, "write_file", slow_disk)
    scenario = make_scenario(rounds=ROUNDS)
    society = Society(scenario)
    run = RunDirectory.create(tmp_path / "run", scenario, society)
    run.queue_bytes = queue_bytes
    waiting = 0
    while society.running and society.round < ROUNDS:
        society.step()
        run.append_round(society)
        waiting = max(waiting, society.round - len(written))
    run.flush()
    assert layout.table_rounds(run.path, "rounds") == list(range(1, ROUNDS + 1))
    return waiting


def test_the_queue_holds_several_rounds_within_its_bound_and_one_round_past_a_tiny_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert most_rounds_waiting(tmp_path / "roomy", monkeypatch, writer.QUEUE_BYTES) > 2
    assert most_rounds_waiting(tmp_path / "tiny", monkeypatch, 1) <= 1


def test_a_failed_write_is_raised_in_the_run_and_no_later_round_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = writer.write_file

    def round_3_fails_once(path: Path, data: bytes) -> None:
        if round_of(path) == 3 and "events" in str(path):
            raise OSError(5, "Input/output error")
        original(path, data)

    monkeypatch.setattr(writer, "write_file", round_3_fails_once)
    scenario = make_scenario(rounds=ROUNDS)
    society = Society(scenario)
    run = RunDirectory.create(tmp_path / "run", scenario, society)
    with pytest.raises(RunWriteError, match="Input/output error"):
        while society.running and society.round < ROUNDS:
            society.step()
            run.append_round(society)
        run.flush()
    run.flush(raise_errors=False)
    assert layout.table_rounds(run.path, "rounds") == [1, 2, 3]
    assert layout.table_rounds(run.path, "events") == [1, 2]
    assert not (run.path / layout.CHECKPOINT).exists()
