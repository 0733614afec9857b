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


@pytest.mark.parametrize("stop", [KeyboardInterrupt, lambda: OSError(28, "No space left on device")],
                         ids=["ctrl-c", "disk-full"])
@pytest.mark.parametrize("existed", [False, True], ids=["new-folder", "empty-folder"])
def test_a_creation_stopped_before_the_manifest_leaves_nothing_that_blocks_a_retry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop: type[BaseException], existed: bool
) -> None:
    """A Ctrl-C or a write error while the run folder is set up removes what the call made; a folder that was there
    (empty) stays, and creating again at the same path works."""
    out = tmp_path / "runs" / "nested" / "run"
    if existed:
        out.mkdir(parents=True)
    scenario = make_scenario(rounds=2)
    society = Society(scenario)
    original = writer.write_file

    def graph_write_stops(path: Path, data: bytes) -> None:
        if path.name == layout.temporary_file(out / layout.GRAPH).name:
            raise stop()
        original(path, data)

    monkeypatch.setattr(writer, "write_file", graph_write_stops)
    with pytest.raises(KeyboardInterrupt if stop is KeyboardInterrupt else RunWriteError):
        RunDirectory.create(out, scenario, society)
    assert (out.is_dir() and not any(out.iterdir())) if existed else not (tmp_path / "runs").exists()
    monkeypatch.setattr(writer, "write_file", original)
    run = RunDirectory.create(out, scenario, society)
    assert run.manifest["status"] == "running" and (out / layout.GRAPH).is_file()
