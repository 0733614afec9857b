"""Untrusted scenario and grid files: `extends:` confined, no value of an unnamed file echoed, unreadable files
refused in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from society.cli import main
from society.scenario.files import SHIPPED_SCENARIOS, ScenarioError, load_scenario

SECRET = "AKIAsk-live-0123456789abcdefSECRET"
SCENARIO = (
    "rounds: 2\npopulation: {size: 4, policies: [{policy: sustainable, fraction: 1}]}\n"
    "commons: {capacity: 100}\nschedule: [harvest, regrow]\n"
)


def society(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "society", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def assert_clear_refusal(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output
    for text in expected:
        assert text in output, output


@pytest.mark.parametrize("extends", ["/etc/hostname", "../outside.yaml", "../../outside.yaml", "link.yaml"])
def test_extends_leaving_the_scenario_tree_is_refused(tmp_path: Path, extends: str) -> None:
    (tmp_path / "outside.yaml").write_text(SCENARIO)
    home = tmp_path / "project" / "study"
    home.mkdir(parents=True)
    (home / "link.yaml").symlink_to(tmp_path / "outside.yaml")
    scenario = home / "s.yaml"
    scenario.write_text(f"extends: {extends}\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(scenario)
    [problem] = caught.value.problems
    assert (problem.file, problem.field) == (str(scenario.resolve()), "extends")
    assert "may only name a scenario file inside" in problem.message and str(home) in problem.message
    assert_clear_refusal(society("validate", str(scenario)), f"{scenario.resolve()}: extends: ")


def test_extends_within_the_tree_and_into_the_shipped_scenarios_is_followed(tmp_path: Path) -> None:
    (tmp_path / "bases").mkdir()
    (tmp_path / "bases" / "base.yaml").write_text(SCENARIO)
    (tmp_path / "bases" / "middle.yaml").write_text("extends: base.yaml\nrounds: 3\n")
    child = tmp_path / "child.yaml"
    child.write_text("extends: bases/middle.yaml\n")
    assert load_scenario(child).rounds == 3
    shipped = tmp_path / "shipped.yaml"
    shipped.write_text(f"extends: {SHIPPED_SCENARIOS / 'govsim_fishery.yaml'}\nrounds: 4\n")
    assert load_scenario(shipped).population == load_scenario(SHIPPED_SCENARIOS / "govsim_fishery.yaml").population


def test_a_grid_base_outside_the_grid_tree_is_refused(tmp_path: Path) -> None:
    (tmp_path / "outside.yaml").write_text(SCENARIO)
    grid = tmp_path / "grids" / "g.yaml"
    grid.parent.mkdir()
    grid.write_text("base: ../outside.yaml\naxes: {rounds: [1, 2]}\n")
    assert_clear_refusal(society("sweep", str(grid), "--out", str(tmp_path / "sweep")),
                         f"{grid}: base: base may only name a scenario file inside")


def write_credentials(folder: Path) -> Path:
    """A credentials-style file the scenario extends: the secret under an unknown key and wrongly typed keys."""
    (folder / "creds").mkdir()
    creds = folder / "creds" / "credentials.yaml"
    creds.write_text(
        f"aws_secret_access_key: {SECRET}\nrounds: {SECRET}\nseed: {SECRET}\n"
        f"commons: {{capacity: 100, resource: [{SECRET}]}}\nllm: {{base_urls: [{SECRET}]}}\n"
        f"schedule: [{SECRET}]\n"
    )
    return creds


def test_no_value_of_an_extended_file_is_echoed(tmp_path: Path) -> None:
    creds = write_credentials(tmp_path)
    scenario = tmp_path / "s.yaml"
    scenario.write_text("extends: creds/credentials.yaml\npopulation: {size: 4, policies: [{policy: sustainable, "
                        "fraction: 1}]}\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(scenario)
    fields = {problem.field for problem in caught.value.problems}
    assert {"aws_secret_access_key", "rounds", "seed", "commons.resource", "llm.base_urls"} <= fields
    assert all(problem.file == str(creds) for problem in caught.value.problems)
    for command in (["validate", str(scenario)], ["run", str(scenario), "--out", str(tmp_path / "run")]):
        result = society(*command)
        assert_clear_refusal(result, f"{creds}: aws_secret_access_key: unknown key", f"{creds}: rounds: ")
        assert SECRET not in result.stdout + result.stderr


def test_no_value_of_a_grid_base_is_echoed_but_the_grid_values_are(tmp_path: Path) -> None:
    write_credentials(tmp_path)
    (tmp_path / "base.yaml").write_text("extends: creds/credentials.yaml\n")
    grid = tmp_path / "g.yaml"
    grid.write_text("base: base.yaml\naxes: {population.size: [-7]}\n")
    result = society("sweep", str(grid), "--out", str(tmp_path / "sweep"))
    assert_clear_refusal(result, "aws_secret_access_key: unknown key", "(got -7)")
    assert SECRET not in result.stdout + result.stderr


def test_values_of_the_named_file_and_of_set_are_echoed(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(SCENARIO)
    scenario = tmp_path / "s.yaml"
    scenario.write_text("extends: base.yaml\ncolour: red\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(scenario, ["rounds=-3"])
    text = str(caught.value)
    assert f"{scenario}: colour: unknown key" in text and "(got 'red')" in text
    assert f"{scenario}: rounds: Input should be greater than 0 (got -3)" in text


UNREADABLE = {
    "latin1": "name: t\nrounds: 2\ndescription: caf\xe9\n".encode("latin-1"),
    "utf16": SCENARIO.encode("utf-16"),
    "binary": bytes(range(256)) * 4,
    "nul": b"rounds: 2\x00\n",
    "empty": b"",
}


@pytest.mark.parametrize("kind", [*UNREADABLE, "folder"])
@pytest.mark.parametrize("command", ["validate", "run", "sweep", "extends", "grid base"])
def test_an_unreadable_file_is_one_clear_line(tmp_path: Path, kind: str, command: str) -> None:
    bad = tmp_path / "bad.yaml"
    if kind == "folder":
        bad.mkdir()
    else:
        bad.write_bytes(UNREADABLE[kind])
    named = bad
    if command in ("extends", "grid base"):
        named = tmp_path / "named.yaml"
        named.write_text("extends: bad.yaml\n" if command == "extends" else "base: bad.yaml\naxes: {rounds: [1]}\n")
    args = {"validate": ["validate", str(named)], "run": ["run", str(named), "--out", str(tmp_path / "r")],
            "extends": ["validate", str(named)]}.get(command, ["sweep", str(named), "--out", str(tmp_path / "s")])
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and (result.exception is None or isinstance(result.exception, SystemExit))
    problem_lines = [line for line in result.stderr.splitlines() if "bad.yaml" in line]
    assert len(problem_lines) == 1, result.stderr
    expected = {"folder": "is a folder", "empty": "found an empty file", "nul": "not a text file"}
    assert expected.get(kind, "not UTF-8 text") in problem_lines[0]


def test_a_file_it_may_not_read_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO)
    refused = Path.read_bytes

    def read_bytes(path: Path) -> bytes:
        if path == scenario.resolve():
            raise PermissionError(13, "Permission denied")
        return refused(path)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    result = CliRunner().invoke(main, ["validate", str(scenario)])
    assert result.exit_code == 2 and (result.exception is None or isinstance(result.exception, SystemExit))
    assert result.stderr.strip() == f"{scenario.resolve()}: cannot read file (Permission denied)"


def test_a_graph_file_is_never_echoed(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(f"{SECRET}\n")
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO + f"graph: {{kind: edgelist, path: {secret_file}}}\n")
    result = society("validate", str(scenario))
    assert_clear_refusal(result, "graph.path", "line 1: expected two integer node ids")
    assert SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize("how", ["absolute", "dotdot", "symlink", "set"])
def test_a_graph_file_outside_the_scenarios_tree_is_refused_unread(tmp_path: Path, how: str) -> None:
    """A stranger's scenario cannot make a private edge list (two numbers a line) the run's graph."""
    private = tmp_path / "private" / "edges.csv"
    private.parent.mkdir()
    private.write_text("0 1\n1 2\n2 3\n")
    folder = tmp_path / "downloads"
    folder.mkdir()
    (folder / "link.csv").symlink_to(private)
    named = {"absolute": str(private), "dotdot": "../private/edges.csv", "symlink": "link.csv"}.get(how, "x.csv")
    scenario = folder / "s.yaml"
    scenario.write_text(SCENARIO + f"graph: {{kind: edgelist, path: {named}}}\n")
    extra = ["--set", "graph.path=../private/edges.csv"] if how == "set" else []
    assert_clear_refusal(society("run", str(scenario), "--out", str(tmp_path / "run"), *extra),
                         "graph.path may only name a graph file inside")
    assert not (tmp_path / "run").exists()
