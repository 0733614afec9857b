"""Personas from data: a persona file's rows in order or drawn by weight, validated with clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from society import Society, load_scenario
from society.scenario.files import SHIPPED_SCENARIOS, ScenarioError

HEADER = "openness,conscientiousness,extraversion,agreeableness,neuroticism,role,values,agenda,background,boat"
ROWS = [
    "0.1,0.2,0.3,0.4,0.5,fisher,family;tradition,,Fishes at dawn,red",
    "0.9,0.8,0.7,0.6,0.5,elder,fairness,keep the peace,Chairs the council,",
    "0.5,0.5,0.5,0.5,0.5,trader,,,,blue",
]


def scenario(folder: Path, persona: str, size: int = 3, extra: str = "") -> Path:
    path = folder / "s.yaml"
    path.write_text(
        f"rounds: 2\npopulation: {{size: {size}, policies: [{{policy: llm, fraction: 1, persona: {persona}}}]}}\n"
        f"commons: {{capacity: 100}}\nschedule: [harvest, regrow]\n{extra}"
    )
    return path


def write(folder: Path, lines: list[str], name: str = "people.csv") -> Path:
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    return [str(problem) for problem in caught.value.problems]


def test_rows_in_order_give_each_citizen_its_row(tmp_path: Path) -> None:
    write(tmp_path, [HEADER, *ROWS])
    personas = Society(load_scenario(scenario(tmp_path, "{file: people.csv}"))).llm.persona_table()
    assert personas["citizen"].to_list() == [0, 1, 2]
    assert personas["role"].to_list() == ["fisher", "elder", "trader"]
    assert personas["openness"].to_list() == [0.1, 0.9, 0.5]
    assert personas["values"].to_list() == [["family", "tradition"], ["fairness"], []]
    assert personas["agenda"].to_list() == [None, "keep the peace", None]
    assert personas["background"].to_list() == ["Fishes at dawn", "Chairs the council", None]
    assert personas["boat"].to_list() == ["red", None, "blue"]
    assert personas["description"][0] == (
        "You are citizen 0, a fisher: openness low, conscientiousness low, extraversion low, agreeableness "
        "moderate, neuroticism moderate. You value family and tradition. Background: Fishes at dawn. Boat: red.")
    assert personas["description"][2].endswith("neuroticism moderate. Boat: blue.")


def test_a_parquet_file_reads_as_its_csv_does(tmp_path: Path) -> None:
    csv = write(tmp_path, [HEADER, *ROWS])
    frame = pl.read_csv(csv).with_columns(pl.col("values").str.split(";"))
    frame.write_parquet(tmp_path / "people.parquet")
    from_csv = Society(load_scenario(scenario(tmp_path, "{file: people.csv}"))).llm.persona_table()
    from_parquet = Society(load_scenario(scenario(tmp_path, "{file: people.parquet}"))).llm.persona_table()
    assert from_parquet.drop("values").equals(from_csv.drop("values"))
    assert from_parquet["values"].to_list()[:2] == from_csv["values"].to_list()[:2]


def test_a_weighted_table_is_sampled_by_weight_and_seed(tmp_path: Path) -> None:
    write(tmp_path, [HEADER + ",weight", *(row + f",{w}" for row, w in zip(ROWS, (1, 0.001, 3)))])
    path = scenario(tmp_path, "{file: people.csv}", size=400)
    roles = Society(load_scenario(path)).llm.persona_table()["role"].to_list()
    assert roles == Society(load_scenario(path)).llm.persona_table()["role"].to_list()
    assert 60 < roles.count("fisher") < 140 and roles.count("elder") < 5 and 260 < roles.count("trader") < 340
    other_seed = Society(load_scenario(path, ["seed=5"])).llm.persona_table()["role"].to_list()
    assert other_seed != roles


def test_the_shipped_persona_scenario_samples_its_file() -> None:
    scene = load_scenario(SHIPPED_SCENARIOS / "village_personas_llm.yaml")
    assert Path(scene.population.policies[0].persona.file) == SHIPPED_SCENARIOS / "personas" / "fishing_village.csv"
    personas = Society(scene).llm.persona_table()
    assert personas.height == scene.population.size
    shipped = pl.read_csv(SHIPPED_SCENARIOS / "personas" / "fishing_village.csv", infer_schema=False)
    assert set(personas["background"].to_list()) <= set(shipped["background"].to_list())
    assert {"age", "household_size"} <= set(personas.columns)
    assert np.all((personas["neuroticism"].to_numpy() >= 0) & (personas["neuroticism"].to_numpy() <= 1))


@pytest.mark.parametrize(("lines", "expected"), [
    ([HEADER.replace("openness,", "")] + [row.split(",", 1)[1] for row in ROWS],
     "missing column 'openness' (required:"),
    ([HEADER, ROWS[0], ROWS[1].replace("0.9,", "1.4,", 1), ROWS[2]],
     "row 2, column 'openness': expected a number in [0, 1] (got 1.4)"),
    ([HEADER, ROWS[0], ROWS[1], ROWS[2].replace("0.5,", "calm,", 1)],
     "row 3, column 'openness': expected a number in [0, 1], found a value that is not a number"),
    ([HEADER, ROWS[0], ROWS[1].replace("elder", ""), ROWS[2]], "row 2, column 'role': expected a text"),
    ([HEADER], "has no rows"),
    ([HEADER + ",weight", *(row + ",1" for row in ROWS[:2]), ROWS[2] + ",0"],
     "row 3, column 'weight': expected a positive number (a weight) (got 0)"),
    ([HEADER + ",citizen", *(row + ",7" for row in ROWS)], "column 'citizen' is the persona table's own"),
])
def test_a_bad_persona_file_names_scenario_file_row_and_column(
    tmp_path: Path, lines: list[str], expected: str
) -> None:
    persona_file = write(tmp_path, lines)
    path = scenario(tmp_path, "{file: people.csv}")
    [found] = problems(path)
    assert found.startswith(f"{path}: population.policies[0].persona.file: {persona_file.resolve()}: ")
    assert expected in found


def test_row_count_must_match_the_group_without_weights(tmp_path: Path) -> None:
    write(tmp_path, [HEADER, *ROWS])
    [found] = problems(scenario(tmp_path, "{file: people.csv}", size=4))
    assert "has 3 rows but the group has 4 citizens" in found and "add a weight column" in found


def test_an_empty_or_unreadable_file_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "people.csv").write_bytes(b"")
    [found] = problems(scenario(tmp_path, "{file: people.csv}"))
    assert "is empty" in found
    (tmp_path / "people.parquet").write_bytes(b"not parquet SECRET")
    [found] = problems(scenario(tmp_path, "{file: people.parquet}"))
    assert "cannot be read as Parquet" in found and "SECRET" not in found
    [found] = problems(scenario(tmp_path, "{file: people.txt}"))
    assert "expected a persona file ending in .csv or .parquet" in found


def test_no_text_cell_of_the_file_is_echoed(tmp_path: Path) -> None:
    write(tmp_path, [HEADER, ROWS[0], ROWS[1].replace("0.8,", "SECRET-KEY,", 1), ROWS[2]])
    [found] = problems(scenario(tmp_path, "{file: people.csv}"))
    assert "column 'conscientiousness'" in found and "SECRET" not in found


@pytest.mark.parametrize("where", ["../outside.csv", "/OUTSIDE/outside.csv", "link.csv"])
def test_a_persona_file_outside_the_scenario_tree_is_refused(tmp_path: Path, where: str) -> None:
    outside = write(tmp_path, [HEADER, *ROWS], "outside.csv")
    home = tmp_path / "study"
    home.mkdir()
    (home / "link.csv").symlink_to(outside)
    path = scenario(home, "{file: " + where.replace("/OUTSIDE", str(tmp_path)) + "}")
    [found] = problems(path)
    assert "population.policies[0].persona.file: population.policies[0].persona.file may only name a persona " \
           "file inside" in found


def test_a_file_and_distributions_together_are_refused(tmp_path: Path) -> None:
    write(tmp_path, [HEADER, *ROWS])
    [found] = problems(scenario(tmp_path, "{file: people.csv, roles: {elder: 1}}"))
    assert "a persona file gives every persona field; drop ['roles']" in found


def test_activation_roles_are_checked_against_the_file(tmp_path: Path) -> None:
    write(tmp_path, [HEADER, *ROWS])
    assert load_scenario(scenario(tmp_path, "{file: people.csv}", extra="llm: {activation: {by_role: {elder: "
                                                                        "0.5}}}\n"))
    [found] = problems(scenario(tmp_path, "{file: people.csv}", extra="llm: {activation: {by_role: {mayor: 0.5}}}\n"))
    assert "llm.activation.by_role.mayor: no LLM citizen has the role 'mayor'" in found


def test_a_persona_file_set_by_override_is_anchored_and_confined(tmp_path: Path) -> None:
    outside = write(tmp_path, [HEADER, *ROWS], "outside.csv")
    home = tmp_path / "study"
    home.mkdir()
    write(home, [HEADER, *ROWS], "mine.csv")
    path = scenario(home, "{file: mine.csv}")
    field = "population.policies.0.persona.file"
    with pytest.raises(ScenarioError, match="may only name a persona file inside"):
        load_scenario(path, [f"{field}={outside}"])
    with pytest.raises(ScenarioError, match="may only name a persona file inside"):
        load_scenario(path, [f"{field}=../outside.csv"])
    chosen = load_scenario(path, [f"{field}=mine.csv"])  # relative to the scenario file's folder, as in the file
    assert chosen.population.policies[0].persona.file == (home / "mine.csv").resolve()


def test_a_grid_axis_cannot_name_a_persona_file_outside_the_grid_tree(tmp_path: Path) -> None:
    from society.sweeps.grid import load_grid

    outside = write(tmp_path, [HEADER, *ROWS], "outside.csv")
    home = tmp_path / "study"
    home.mkdir()
    write(home, [HEADER, *ROWS], "mine.csv")
    scenario(home, "{file: mine.csv}")
    grid = home / "grid.yaml"
    grid.write_text(f"base: s.yaml\naxes: {{population.policies.0.persona.file: [mine.csv, {outside}]}}\n")
    with pytest.raises(ScenarioError) as caught:
        load_grid(grid)
    [found] = [str(problem) for problem in caught.value.problems]
    assert "may only name a persona file inside" in found and "in 1 of 2 cells" in found


def _interrupted_run_of_a_persona_file_outside_the_shipped_folder(tmp_path: Path) -> tuple[Path, Path]:
    """A run (recorded, then marked unfinished) of a scenario whose persona file lies in `tmp_path`; its folder
    and its persona file."""
    import json
    import shutil

    from tests.llm_recording import record_llm_run

    people = tmp_path / "people.csv"
    shutil.copyfile(SHIPPED_SCENARIOS / "personas" / "fishing_village.csv", people)
    path = tmp_path / "s.yaml"
    path.write_text(f"extends: {SHIPPED_SCENARIOS / 'village_personas_llm.yaml'}\n"
                    "population: {size: 12, policies: [{policy: llm, fraction: 1, persona: {file: people.csv}}]}\n")
    run = record_llm_run(load_scenario(path, ["rounds=2", "llm.fallback_threshold=1.0"]), tmp_path / "run")
    manifest = json.loads((run / "manifest.json").read_text())
    (run / "manifest.json").write_text(json.dumps(manifest | {"status": "running"}))
    return run, people


def _resumed(run: Path) -> Path:
    from society.core import runner
    from tests.llm_recording import _recording

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runner, "connect", _recording)
        return runner.resume_run(run)


def test_a_run_with_a_persona_file_of_its_own_resumes(tmp_path: Path) -> None:
    run, people = _interrupted_run_of_a_persona_file_outside_the_shipped_folder(tmp_path)
    assert _resumed(run) == run
    assert (run / "manifest.json").read_text().count(str(people.resolve())) == 1


def test_a_resume_refuses_a_persona_file_changed_since_the_run_began(tmp_path: Path) -> None:
    run, people = _interrupted_run_of_a_persona_file_outside_the_shipped_folder(tmp_path)
    people.write_text(people.read_text().replace("0.", "0.1", 1))
    with pytest.raises(ScenarioError) as caught:
        _resumed(run)
    [found] = [str(problem) for problem in caught.value.problems]
    assert f"{people.resolve()}: the run's persona file changed since the run began" in found


@pytest.mark.parametrize("column", [
    pl.Series("boat", [["red"], ["blue"], []]),
    pl.Series("boat", [{"colour": "red"}, {"colour": "blue"}, {"colour": None}]),
    pl.Series("openness", [{"score": 0.1}, {"score": 0.9}, {"score": 0.5}]),
])
def test_a_column_of_lists_or_records_is_refused_by_name(tmp_path: Path, column: pl.Series) -> None:
    frame = pl.read_csv(write(tmp_path, [HEADER, *ROWS]), infer_schema=False).with_columns(column)
    frame.write_parquet(tmp_path / "people.parquet")
    [found] = problems(scenario(tmp_path, "{file: people.parquet}"))
    assert found.startswith(f"{tmp_path / 's.yaml'}: population.policies[0].persona.file: "
                            f"{(tmp_path / 'people.parquet').resolve()}: column {column.name!r}: expected one number "
                            "or text per cell, found a column of ")


def test_weights_whose_sum_overflows_are_refused(tmp_path: Path) -> None:
    write(tmp_path, [HEADER + ",weight", *(row + ",1e308" for row in ROWS)])
    [found] = problems(scenario(tmp_path, "{file: people.csv}", size=5))
    assert "column 'weight': the weights sum past the largest number" in found


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_a_persona_file_past_the_row_or_byte_cap_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            kind: str) -> None:
    from society.llm import persona_files

    csv = write(tmp_path, [HEADER, *ROWS])
    if kind == "parquet":
        pl.read_csv(csv, infer_schema=False).write_parquet(tmp_path / "people.parquet")
    path = scenario(tmp_path, f"{{file: people.{kind}}}")
    monkeypatch.setattr(persona_files, "MOST_ROWS", 2)
    [found] = problems(path)
    assert found.endswith("has more than 2 rows; a persona file may have at most 2")
    monkeypatch.setattr(persona_files, "MOST_ROWS", 3)
    assert load_scenario(path)
    monkeypatch.setattr(persona_files, "MOST_BYTES", 100)
    [found] = problems(path)
    assert f"{(tmp_path / f'people.{kind}').resolve()}: has " in found
    assert found.endswith("bytes; a persona file may have at most 100")


def test_a_persona_change_keeps_the_files_background_and_extra_columns(tmp_path: Path) -> None:
    write(tmp_path, [HEADER, *ROWS])
    society = Society(load_scenario(scenario(tmp_path, "{file: people.csv}", extra=(
        "interventions: [{when: {round: 1}, persona: {citizens: [0], role: captain}}]\n"))))
    society.steps = 1  # inside round 1, as step() is when it applies the interventions due
    society.interventions.before_round()
    assert society.llm.persona_table()["description"][0] == (
        "You are citizen 0, a captain: openness low, conscientiousness low, extraversion low, agreeableness "
        "moderate, neuroticism moderate. You value family and tradition. Background: Fishes at dawn. Boat: red.")
