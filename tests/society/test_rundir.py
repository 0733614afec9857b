"""The run-directory layout: one module spells it, and the writer, the reader and the layout agree on a run."""

from __future__ import annotations

import ast
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from polars.testing import assert_frame_equal

from society import load_run, load_scenario
from society.cli import main
from society.core.runner import run_scenario
from society.rundir import layout
from society.rundir.writer import RunDirectory

REPO = Path(__file__).parents[2]
LAYOUT = REPO / "society" / "rundir" / "layout.py"
ROUNDS = 3

NAMES = (layout.SCENARIO, layout.MANIFEST, layout.GRAPH, layout.PERSONAS, layout.LLM_CACHE, layout.LLM_LOG,
         layout.CHECKPOINT, layout.PREVIOUS_CHECKPOINT, layout.LEGACY_CHECKPOINT, layout.ERROR, layout.SWEEP, layout.SUMMARY, layout.ROUND_FILES, layout.TEMPORARY_FILES,
         ".parquet")


def spelled_names(source: str) -> list[str]:
    """String literals in code (not documentation) that spell a run or sweep folder's file or folder name."""
    tree = ast.parse(source)
    documentation = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in documentation:
            text = node.value
            if any(name in text for name in NAMES) or text == layout.TABLES_DIR or text.startswith("tables/"):
                found.append(text)
    return found


def test_the_scan_finds_a_spelled_name_but_not_documentation() -> None:
    source = '"""Reads manifest.json."""\nPATH = "manifest.json"\nFILE = f"{n:06d}.parquet"\nDIR = "tables"\n'
    assert sorted(spelled_names(source)) == [".parquet", "manifest.json", "tables"]


def test_only_the_layout_module_spells_run_directory_names() -> None:
    sources = sorted((REPO / "society").rglob("*.py")) + sorted((REPO / "dashboard").rglob("*.py"))
    assert LAYOUT in sources
    spelled = {str(path.relative_to(REPO)): names for path in sources if path != LAYOUT
               if (names := spelled_names(path.read_text()))}
    assert spelled == {}
    assert len(spelled_names(LAYOUT.read_text())) >= len(NAMES)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    scenario = load_scenario(REPO / "scenarios" / "govsim_fishery.yaml", [f"rounds={ROUNDS}"])
    return run_scenario(scenario, tmp_path_factory.mktemp("runs") / "fishery")


def test_a_written_run_holds_exactly_the_layouts_files(run_dir: Path) -> None:
    files = {str(path.relative_to(run_dir)) for path in run_dir.rglob("*") if path.is_file()}
    rounds = load_run(run_dir).manifest["rounds_completed"]
    tables = {str(layout.round_file(run_dir, table, number).relative_to(run_dir))
              for table in ("rounds", "citizens", "events") for number in range(1, rounds + 1)}
    arrays = {path.name for path in run_dir.glob(layout.CHECKPOINT_ARRAYS)}
    assert len(arrays) == 1 and all(layout.is_checkpoint_arrays_name(name) for name in arrays)
    checkpoints = {layout.CHECKPOINT} | arrays  # fewer rounds than a checkpoint's 10: only the last one's
    assert files == {layout.SCENARIO, layout.MANIFEST, layout.GRAPH} | checkpoints | tables
    assert {path.name for path in (run_dir / layout.TABLES_DIR).iterdir()} == set(layout.TABLES)


def test_reader_and_layout_agree_with_the_writer(run_dir: Path) -> None:
    run = load_run(run_dir)
    manifest = layout.read_manifest(run_dir)
    assert manifest == run.manifest == RunDirectory(run_dir).manifest
    assert layout.missing_manifest_fields(manifest) == []
    assert manifest["status"] in layout.STATUSES and manifest["status"] == "completed"
    numbers = layout.table_rounds(run_dir, "rounds")
    assert numbers == list(range(1, manifest["rounds_completed"] + 1)) == run.rounds["round"].to_list()
    for table in ("rounds", "citizens", "events"):
        whole = pl.concat([layout.read_round(run_dir, table, number) for number in numbers], how="diagonal_relaxed")
        assert_frame_equal(getattr(run, table), whole)
        assert layout.table_columns(run_dir, table) == whole.columns
    assert run.llm_calls.is_empty() and run.personas.is_empty()
    assert run.graph.columns == ["source", "target"] and run.graph.height > 0
    assert run.scenario == layout.read_scenario(run_dir) and run.scenario["rounds"] == ROUNDS


def test_manifest_required_fields_in_order() -> None:
    assert layout.REQUIRED_MANIFEST_FIELDS == ("name", "status", "rounds_planned", "rounds_completed")
    assert layout.Manifest.__required_keys__ == set(layout.REQUIRED_MANIFEST_FIELDS)
    assert layout.missing_manifest_fields({"status": "running", "name": "x"}) == ["rounds_planned",
                                                                                  "rounds_completed"]


def test_temporary_files_are_never_read_and_resume_drops_them(run_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    for path in run_dir.rglob("*"):
        if path.is_file():
            (copy / path.relative_to(run_dir)).parent.mkdir(parents=True, exist_ok=True)
            (copy / path.relative_to(run_dir)).write_bytes(path.read_bytes())
    half = layout.temporary_file(layout.round_file(copy, "rounds", ROUNDS + 1))
    half.write_bytes(b"cut short")
    assert layout.table_rounds(copy, "rounds") == list(range(1, ROUNDS + 1))
    RunDirectory(copy).drop_rounds_after(1)
    assert not half.exists()
    assert [layout.table_rounds(copy, table) for table in layout.TABLES] == [[1], [1], [1], [], []]


def test_a_damaged_manifest_is_one_clear_error_naming_it(run_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / layout.MANIFEST).write_text('{"name": "broken", "status": ')
    with pytest.raises(layout.RunDataError, match=r"manifest\.json: not valid JSON"):
        layout.read_manifest(broken)
    result = CliRunner().invoke(main, ["info", str(broken)])
    assert result.exit_code == 2 and "manifest.json: not valid JSON" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("caller_froze", [False, True])
def test_a_processs_first_run_plays_its_rounds_with_the_setup_frozen_and_leaves_the_collector_as_found(
    caller_froze: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full garbage-collector pass over everything a run set up takes about 80 ms, inside some round: a process's
    first run plays its rounds with those objects frozen (out of its passes); later runs are not frozen (earlier
    runs' societies, cyclic garbage, would stay frozen with them); and after a run nothing stays frozen that the
    caller had not frozen itself."""
    import gc

    from society import Society
    from society.core import runner

    monkeypatch.setattr(runner, "_froze_a_run", False)  # as in a fresh process
    frozen_in_rounds = []
    step = Society.step
    monkeypatch.setattr(Society, "step", lambda self: (frozen_in_rounds.append(gc.get_freeze_count()), step(self)))
    scenario = load_scenario(REPO / "scenarios" / "govsim_fishery.yaml", ["rounds=2"])
    if caller_froze:
        gc.freeze()
    try:
        run_scenario(scenario, tmp_path / "first")
        assert len(frozen_in_rounds) == 2 and min(frozen_in_rounds) > 1000  # modules, kernels, the society
        assert gc.get_freeze_count() > 1000 if caller_froze else gc.get_freeze_count() == 0
        frozen_in_rounds.clear()
        run_scenario(scenario, tmp_path / "second")
        assert len(frozen_in_rounds) == 2
        assert min(frozen_in_rounds) > 1000 if caller_froze else max(frozen_in_rounds) == 0
    finally:
        gc.unfreeze()
