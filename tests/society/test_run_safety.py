"""Run folders from anyone are safe to open and resume; damaged files and full disks give one clear line and lose
nothing; a run killed at any moment resumes to the tables of an uninterrupted one."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import pickle
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner, Result
from polars.testing import assert_frame_equal

from society import Society, load_run, load_scenario
from society.cli import main
from society.core.runner import resume_run, run_scenario
from society.rundir import layout, writer
from society.rundir.checkpoint import read_checkpoint, write_checkpoint
from society.rundir.layout import RunDataError
from society.rundir.writer import atomic_write
from tests.llm_recording import record_llm_run
from tests.shipped_tables import SCENARIOS, SHRUNK, SchemaAnswers, scenario_names

TABLES = ("rounds", "citizens", "events", "llm_calls")
FISHERY = ["rounds=12"]
LLM = ["population.size=12", "rounds=40"]


class Payload:
    """A pickle that creates `marker` when it is loaded: what a crafted file in a shared run folder would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return open, (str(self.marker), "w")


def payload(marker: Path) -> bytes:
    return pickle.dumps(Payload(marker))


def tables(run: Path) -> dict[str, pl.DataFrame]:
    loaded = load_run(run)
    return {table: getattr(loaded, table) for table in TABLES}


def assert_same_tables(run: Path, reference: dict[str, pl.DataFrame]) -> None:
    for table, frame in tables(run).items():
        assert_frame_equal(reference[table], frame, check_column_order=False)


def invoke(*args: str) -> Result:
    """The CLI in this process; a traceback would show as an exception other than SystemExit."""
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def one_error_line(result: Result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


@pytest.fixture(scope="module")
def fishery(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A completed 12-round run (checkpoints after rounds 10 and 12: every 10 rounds by default, and the last)."""
    return run_scenario(load_scenario(SCENARIOS / "govsim_fishery.yaml", FISHERY),
                        tmp_path_factory.mktemp("fishery") / "run")


@pytest.fixture
def copy(fishery: Path, tmp_path: Path) -> Path:
    """A copy of the completed run, to damage."""
    return Path(shutil.copytree(fishery, tmp_path / "copy"))


# ---- the checkpoint format -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", scenario_names())
def test_every_shipped_scenario_continues_identically_from_its_checkpoint_files(name: str, tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIOS / f"{name}.yaml", SHRUNK.get(name, []))

    def society() -> Society:
        made = Society(scenario)
        if made.llm is not None:
            made.llm.connection = SchemaAnswers()
        return made

    def play(model: Society, rounds: int) -> list[pl.DataFrame]:
        frames = []
        for _ in range(rounds):
            if not model.running:
                break
            model.step()
            frames += [pl.DataFrame([model.round_row]), model.round_citizens(), model.round_events()]
        return frames

    half = max(1, scenario.rounds // 2)
    whole = society()
    try:
        play(whole, half)
        checkpoint = whole.checkpoint()
        rest = play(whole, scenario.rounds)
    except RuntimeError:
        pytest.skip("the shrunk scenario stops on its fallback rate before its middle (pinned by shipped tables)")
    write_checkpoint(tmp_path, checkpoint, atomic_write)
    resumed = society()
    resumed.restore(read_checkpoint(tmp_path / layout.CHECKPOINT, resumed.checkpoint()))
    for expected, got in zip(rest, play(resumed, scenario.rounds), strict=True):
        assert_frame_equal(expected, got)


def test_the_checkpoint_is_json_and_an_npz_that_loads_without_pickle(fishery: Path) -> None:
    record = json.loads((fishery / layout.CHECKPOINT).read_text())
    assert record["format"] == 1 and record["round"] == 12
    arrays = fishery / record["arrays"]["file"]
    assert hashlib.sha256(arrays.read_bytes()).hexdigest() == record["arrays"]["sha256"]
    with np.load(arrays, allow_pickle=False) as npz:
        assert all(npz[name].dtype.kind in "biufU" for name in npz.files)
    previous = json.loads((fishery / layout.PREVIOUS_CHECKPOINT).read_text())
    assert previous["round"] == 10
    assert {path.name for path in fishery.glob(layout.CHECKPOINT_ARRAYS)} == {
        record["arrays"]["file"], previous["arrays"]["file"]}


def test_a_pickle_checkpoint_of_an_older_version_is_refused_unread(copy: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    (copy / layout.LEGACY_CHECKPOINT).write_bytes(payload(marker))
    (copy / layout.CHECKPOINT).unlink()
    manifest = json.loads((copy / layout.MANIFEST).read_text()) | {"status": "interrupted"}
    (copy / layout.MANIFEST).write_text(json.dumps(manifest))
    result = invoke("run", "--resume", str(copy), "--quiet")
    assert result.exit_code == 2
    line = one_error_line(result)
    assert "checkpoint.pkl" in line and "older version" in line and "cannot be resumed safely" in line
    assert not marker.exists()


def test_a_crafted_npz_with_a_pickled_array_is_refused_even_with_matching_checksums(copy: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    record = json.loads((copy / layout.CHECKPOINT).read_text())
    with np.load(copy / record["arrays"]["file"], allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays["a0"] = np.array([Payload(marker)], dtype=object)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    digest = hashlib.sha256(buffer.getvalue()).hexdigest()
    crafted = copy / layout.checkpoint_arrays_file(digest)
    crafted.write_bytes(buffer.getvalue())
    record["arrays"] = {"file": crafted.name, "sha256": digest}
    (copy / layout.CHECKPOINT).write_text(json.dumps(record))
    society = Society(load_scenario(copy / layout.SCENARIO))
    with pytest.raises(RunDataError, match=re.escape(crafted.name) + ": not a readable array file"):
        read_checkpoint(copy / layout.CHECKPOINT, society.checkpoint())
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage", "pickle"])
def test_a_damaged_latest_checkpoint_falls_back_to_the_previous_and_resumes_identically(
    damage: str, copy: Path, fishery: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    latest = copy / layout.CHECKPOINT
    data = latest.read_bytes()
    latest.write_bytes({"truncated": data[: len(data) // 2], "empty": b"", "garbage": os.urandom(300),
                        "pickle": payload(marker)}[damage])
    layout.round_file(copy, "rounds", 12).write_bytes(b"PAR1 cut")  # so the run is resumed, not left completed
    resume_run(copy)
    assert_same_tables(copy, tables(fishery))
    assert not marker.exists()


def test_when_no_checkpoint_reads_the_error_names_the_file(copy: Path) -> None:
    for name in (layout.CHECKPOINT, layout.PREVIOUS_CHECKPOINT):
        (copy / name).write_text('{"format": 1, "round": 3')
    layout.round_file(copy, "rounds", 12).unlink()
    result = invoke("run", "--resume", str(copy), "--quiet")
    assert result.exit_code == 2
    assert "checkpoint.json: not valid JSON" in one_error_line(result)
    assert layout.table_rounds(copy, "rounds") == list(range(1, 12)), "no earlier round is lost"


def test_a_checkpoint_of_another_scenario_is_refused_by_array(copy: Path, tmp_path: Path) -> None:
    other = run_scenario(load_scenario(SCENARIOS / "govsim_fishery.yaml", FISHERY + ["population.size=6"]),
                         tmp_path / "other")
    shutil.copy(other / layout.CHECKPOINT, copy / layout.CHECKPOINT)
    for arrays in other.glob(layout.CHECKPOINT_ARRAYS):
        shutil.copy(arrays, copy / arrays.name)
    society = Society(load_scenario(copy / layout.SCENARIO))
    with pytest.raises(RunDataError, match=r"checkpoint\.json: array state/\w+ is \w+\[6\], this run's scenario "
                                           r"needs \w+\[5\]"):
        read_checkpoint(copy / layout.CHECKPOINT, society.checkpoint())
    edited = json.loads((other / layout.CHECKPOINT).read_text())
    edited["state"]["round"] = 99
    (copy / layout.CHECKPOINT).write_text(json.dumps(edited))
    with pytest.raises(RunDataError, match="does not match its checksum"):
        read_checkpoint(copy / layout.CHECKPOINT, society.checkpoint())


# ---- damaged tables, manifest and cache ------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncated", "pickle"])
def test_a_damaged_last_round_is_a_clear_error_then_replayed_on_resume(
    damage: str, copy: Path, fishery: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    last = layout.round_file(copy, "citizens", 12)
    data = last.read_bytes()
    last.write_bytes(data[: len(data) - 20] if damage == "truncated" else payload(marker))
    with pytest.raises(RunDataError, match=re.escape(str(last)) + ": not a readable Parquet file"):
        _ = load_run(copy).citizens
    assert "citizens/000012.parquet: not a readable Parquet file" in one_error_line(invoke("info", str(copy)))
    result = invoke("run", "--resume", str(copy), "--quiet")
    assert result.exit_code == 0, result.output
    assert_same_tables(copy, tables(fishery))
    assert not marker.exists()


def test_a_truncated_manifest_is_one_clear_line_everywhere(copy: Path) -> None:
    manifest = copy / layout.MANIFEST
    manifest.write_text(manifest.read_text()[:40])
    with pytest.raises(RunDataError, match=r"manifest\.json: not valid JSON"):
        load_run(copy)
    for command in (["info", str(copy)], ["run", "--resume", str(copy)]):
        result = invoke(*command)
        assert result.exit_code == 2 and "manifest.json: not valid JSON" in one_error_line(result)
    manifest.write_text(json.dumps({"name": "x", "status": "running", "rounds_planned": "12", "rounds_completed": 1}))
    with pytest.raises(RunDataError, match="round counts are not whole numbers"):
        load_run(copy)


@pytest.fixture(scope="module")
def recorded_llm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small LLM run, answered by `SchemaAnswers` and recorded in its response cache."""
    scenario = load_scenario(SCENARIOS / "village_llm.yaml", LLM)
    return record_llm_run(scenario, tmp_path_factory.mktemp("llm") / "recorded")


def test_a_damaged_llm_cache_is_one_clear_line_and_never_runs_code(recorded_llm: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    run = Path(shutil.copytree(recorded_llm, tmp_path / "run"))
    layout.round_file(run, "rounds", 40).unlink()
    (run / layout.LLM_CACHE).write_bytes(payload(marker))
    scenario = (run / layout.SCENARIO).read_text().replace("cache: record", "cache: replay")
    (run / layout.SCENARIO).write_text(scenario)
    result = invoke("run", "--resume", str(run), "--quiet")
    assert result.exit_code == 2
    assert "llm_cache.sqlite: not a readable LLM response cache" in one_error_line(result)
    assert not marker.exists()
    assert layout.table_rounds(run, "rounds") == list(range(1, 40))


# ---- disk faults -----------------------------------------------------------------------------------------


def test_an_out_that_cannot_be_written_fails_before_round_one(tmp_path: Path) -> None:
    scenario = str(SCENARIOS / "govsim_fishery.yaml")
    taken = tmp_path / "a-file"
    taken.write_text("keep me")
    result = invoke("run", scenario, "--out", str(taken), "--quiet")
    assert result.exit_code == 2 and "exists and is not a folder" in one_error_line(result)
    assert taken.read_text() == "keep me"
    if os.geteuid() == 0:  # root writes into read-only folders: take one the kernel refuses to anyone
        read_only = Path("/sys/society-run")
    else:
        (tmp_path / "ro").mkdir(mode=0o555)
        read_only = tmp_path / "ro" / "run"
    result = invoke("run", scenario, "--out", str(read_only), "--quiet")
    assert result.exit_code == 2 and "cannot create the run folder" in one_error_line(result)


@pytest.mark.parametrize("manifest_too", [False, True])
def test_a_full_disk_stops_at_a_round_boundary_and_resume_continues_once_space_is_freed(
    manifest_too: bool, fishery: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = writer.write_file
    full = False

    def disk_fills_at_round_5(path: Path, data: bytes) -> None:
        nonlocal full
        number = re.fullmatch(r"\.(\d{6})\.parquet\.tmp", path.name)
        full |= number is not None and int(number[1]) >= 5
        if full and (manifest_too or layout.MANIFEST not in path.name):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        original(path, data)

    monkeypatch.setattr(writer, "write_file", disk_fills_at_round_5)
    out = tmp_path / "full"
    result = invoke("run", str(SCENARIOS / "govsim_fishery.yaml"), "--set", "rounds=12", "--out", str(out), "--quiet")
    assert result.exit_code == 2
    line = one_error_line(result)
    assert "No space left on device" in line and f"society run --resume {out}" in line
    assert layout.table_rounds(out, "rounds") == [1, 2, 3, 4], "the rounds written are kept"
    manifest = json.loads((out / layout.MANIFEST).read_text())
    if not manifest_too:
        assert manifest["status"] == "failed" and "No space left on device" in manifest["error"]
    assert not list(out.rglob(layout.TEMPORARY_FILES))
    monkeypatch.undo()
    assert invoke("run", "--resume", str(out), "--quiet").exit_code == 0
    assert_same_tables(out, tables(fishery))


# ---- kill -9 at random moments ---------------------------------------------------------------------------


def society_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "society", *args, "--quiet"]


def first_round_written(process: subprocess.Popen, out: Path) -> None:
    """Wait until the run has written its first round (or ended)."""
    deadline = time.monotonic() + 60
    while process.poll() is None and not layout.table_files(out, "rounds") and time.monotonic() < deadline:
        time.sleep(0.005)


def playing_seconds(command: list[str], out: Path) -> float:
    """Run `command` to its end; the seconds from its first round written to its manifest saying completed."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first_round_written(process, out)
    started = time.monotonic()
    while layout.read_manifest(out)["status"] != "completed" and process.poll() is None:
        time.sleep(0.002)
    playing = time.monotonic() - started
    assert process.wait(timeout=120) == 0
    return playing


def kill_and_resume(command: list[str], out: Path, rng: random.Random, within_s: float) -> bool:
    """Start `command`, SIGKILL it at a random moment within `within_s` after its first round is written, then
    resume it; whether the kill cut the run short."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first_round_written(process, out)
    time.sleep(rng.uniform(0, within_s))
    process.send_signal(signal.SIGKILL)
    process.wait()
    cut = layout.read_manifest(out)["status"] != "completed"
    resumed = subprocess.run(society_command("run", "--resume", str(out)), capture_output=True, text=True,
                             timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    return cut


def test_kill_9_at_random_moments_then_resume_gives_the_uninterrupted_tables(
    recorded_llm: Path, tmp_path: Path
) -> None:
    """Kills land at random moments over the first 80% of the rounds' playing time (first round written to
    completed), measured on this machine from the uninterrupted run, so a faster or slower machine still kills
    mid-run."""
    rng = random.Random(14)
    heuristic = [str(SCENARIOS / "village_10k.yaml"), "--set", "population.size=3000", "--set", "rounds=100"]
    llm = [str(SCENARIOS / "village_llm.yaml"), *(f"--set={setting}" for setting in LLM), "--replay", str(recorded_llm)]
    cut = []
    for name, arguments in (("heuristic", heuristic), ("llm", llm)):
        whole = tmp_path / f"{name}-whole"
        within_s = 0.8 * playing_seconds(society_command("run", *arguments, "--out", str(whole)), whole)
        reference = tables(whole)
        for kill in range(2):
            out = tmp_path / f"{name}-{kill}"
            cut.append(kill_and_resume(society_command("run", *arguments, "--out", str(out)), out, rng, within_s))
            assert_same_tables(out, reference)
    assert sum(cut) >= 2, "most kills must land while rounds are still being played"
