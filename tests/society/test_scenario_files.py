"""Scenario loading: the malformed corpus, extends, --set, and the validate command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from society.cli import main
from society.scenario.files import ScenarioError, load_scenario

MALFORMED = sorted((Path(__file__).parent / "malformed").glob("*.yaml"))
SCENARIOS = sorted((Path(__file__).parents[2] / "scenarios").glob("*.yaml"))


def expected_message(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name} must start with '# expect: ...'"
    return first.removeprefix("# expect: ")


def test_corpus_is_large_enough() -> None:
    assert len(MALFORMED) >= 15


@pytest.mark.parametrize("path", MALFORMED, ids=lambda p: p.stem)
def test_malformed_scenario_names_the_problem(path: Path) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    lines = [str(problem) for problem in caught.value.problems]
    assert any(expected_message(path) in line for line in lines), lines
    assert all("\n" not in line and line.startswith(str(path)) for line in lines)


@pytest.mark.parametrize("path", MALFORMED, ids=lambda p: p.stem)
def test_validate_command_exits_2_without_traceback(path: Path) -> None:
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert expected_message(path) in result.output
    assert "Traceback" not in result.output


def test_validate_reports_every_problem_of_every_file(tmp_path: Path) -> None:
    bad = tmp_path / "many.yaml"
    bad.write_text(
        "name: t\nrounds: 0\npopulation: {size: 4, policies: [{policy: greedy, fraction: 1, factor: 0}]}\n"
        "schedule: [invest, {phase: punish, params: {cost: -1}}]\ncolour: red\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "society", "validate", str(bad), str(MALFORMED[0]), *map(str, SCENARIOS)],
        capture_output=True, text=True,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    for field in ("rounds", "population.policies[0].factor", "schedule[1].params.cost", "colour"):
        assert f"{bad}: {field}:" in result.stderr
    assert str(MALFORMED[0]) in result.stderr
    for shipped in SCENARIOS:
        assert f"{shipped}: ok" in result.stdout


def test_shipped_scenarios_are_valid() -> None:
    assert SCENARIOS, "no shipped scenarios found"
    for path in SCENARIOS:
        assert load_scenario(path).name == path.stem


def test_extends_merges_and_set_overrides(tmp_path: Path) -> None:
    base = tmp_path / "bases" / "base.yaml"
    base.parent.mkdir()
    base.write_text(
        "name: base\nrounds: 5\nseed: 3\npopulation: {size: 10, policies: [{policy: sustainable, fraction: 1}]}\n"
        "commons: {capacity: 100, regrowth: {kind: logistic, rate: 0.3}}\nschedule: [harvest, regrow]\n"
    )
    child = tmp_path / "child.yaml"
    child.write_text("extends: bases/base.yaml\nname: child\ncommons: {patches: 2}\n")
    scenario = load_scenario(child, ["rounds=9", "commons.regrowth.rate=0.6", "schedule.1=harvest"])
    assert scenario.name == "child"
    assert scenario.rounds == 9
    assert scenario.seed == 3
    assert scenario.commons.patches == 2
    assert scenario.commons.capacity == 100
    assert scenario.commons.regrowth.rate == 0.6
    assert [entry.phase for entry in scenario.schedule] == ["harvest", "harvest"]


def test_set_unknown_key_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(SCENARIOS[0], ["commons.capacityy=5", "schedule.9=harvest", "novalue"])
    text = str(caught.value)
    assert "schedule.9" in text and "novalue" in text


def test_set_value_is_validated() -> None:
    with pytest.raises(ScenarioError, match=r"rounds: Input should be greater than 0 \(got -1\)"):
        load_scenario(SCENARIOS[0], ["rounds=-1"])


def test_graph_path_is_relative_to_its_scenario(tmp_path: Path) -> None:
    (tmp_path / "edges.txt").write_text("0 1\n1 2\n2 3\n")
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "rounds: 1\npopulation: {size: 4, policies: [{policy: sustainable, fraction: 1}]}\n"
        "graph: {kind: edgelist, path: edges.txt}\nschedule: [invest]\n"
    )
    assert load_scenario(scenario).graph.path == (tmp_path / "edges.txt").resolve()
