"""Surveys: answers recorded, the world untouched (heuristic and LLM citizens), clear errors, persona validity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import yaml
from click.testing import CliRunner

from society import ScenarioError, Society, load_run, load_scenario
from society.cli import main
from society.core.runner import run_scenario
from society.rundir.persona_validity import pearson, persona_validity, persona_validity_of
from society.scenario.files import scenario_to_yaml
from society.scenario.schema import BIG_FIVE
from tests.llm_recording import record_llm_run

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
WORLD = ("rounds", "citizens", "events")
LIKERT = {"id": "a", "kind": "likert", "question": "Agree?", "labels": ["no", "yes"]}
HEURISTIC_ITEMS = [
    {"id": "norm", "kind": "number", "max": 100, "question": "What should each take of the {resource}?",
     "heuristic": {"column": "personal_norm", "times": "fair_share"}},
    {"id": "agree", "kind": "likert", "question": "Agree?", "labels": ["no", "yes"], "trait": "agreeableness",
     "heuristic": {"by_policy": {"greedy": 1, "sustainable": 7}}},
    {"id": "pick", "kind": "choice", "question": "Pick", "options": ["a", "b"],
     "heuristic": {"by_policy": {"learner": "b"}}},
    {"id": "unmapped", "kind": "choice", "question": "Pick", "options": ["a", "b"]},
]


def scenario_file(tmp_path: Path, name: str, overrides: list[str], survey: dict[str, Any] | None,
                  where: int | None = None) -> Path:
    """A shipped scenario resolved to one file, with `survey` (a survey phase's params) added or every survey
    phase taken out."""
    data = yaml.safe_load(scenario_to_yaml(load_scenario(SCENARIOS / f"{name}.yaml", overrides)))
    data["schedule"] = [step for step in data["schedule"] if step["phase"] != "survey"]
    if survey is not None:
        data["schedule"].insert(len(data["schedule"]) if where is None else where,
                                {"phase": "survey", "params": survey})
    path = tmp_path / f"{name}-{'survey' if survey else 'plain'}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def world(run: Path) -> dict[str, pl.DataFrame]:
    loaded = load_run(run)
    return {table: getattr(loaded, table) for table in WORLD}


def test_a_heuristic_survey_records_mapped_answers_and_leaves_the_world_as_it_was(tmp_path: Path) -> None:
    shrunk = ["rounds=6", "population.size=40"]
    plain = run_scenario(load_scenario(scenario_file(tmp_path, "norms_rich_selfish", shrunk, None)), tmp_path / "a")
    surveyed = run_scenario(load_scenario(scenario_file(
        tmp_path, "norms_rich_selfish", shrunk, {"every": 2, "rounds": [1], "items": HEURISTIC_ITEMS})), tmp_path / "b")
    before, after = world(plain), world(surveyed)
    for table in WORLD:
        assert after[table].equals(before[table]), table
    survey, citizens = load_run(surveyed).survey, load_run(surveyed).citizens
    assert load_run(plain).survey.is_empty()
    assert sorted(survey["round"].unique().to_list()) == [1, 2, 4, 6]
    assert "unmapped" not in survey["item"].to_list() and survey["source"].unique().to_list() == ["heuristic"]
    norm = survey.filter(pl.col("item") == "norm").join(citizens, on=["round", "citizen"])
    assert norm.height == 4 * 40
    expected = np.clip((norm["personal_norm"] * norm["fair_share"]).to_numpy(), 0, 100)
    assert np.allclose(norm["answer"].to_numpy(), expected)
    agree = survey.filter(pl.col("item") == "agree").join(citizens, on=["round", "citizen"])
    assert set(agree["policy"].cast(pl.Utf8).unique()) == {"greedy", "sustainable"}
    assert (agree["answer"] == pl.Series([1.0 if p == "greedy" else 7.0 for p in agree["policy"].cast(pl.Utf8)])).all()
    pick = survey.filter(pl.col("item") == "pick").join(citizens, on=["round", "citizen"])
    assert (pick["policy"].cast(pl.Utf8) == "learner").all() and set(pick["answer_text"]) == {"b"}
    assert set(pick["answer"]) == {2.0}


@pytest.mark.parametrize("overrides", [[], ["llm.activation.probability=0.6"], ["llm.cohorts.enabled=true"]],
                         ids=["all-asked", "activation", "cohorts"])
def test_an_llm_survey_leaves_the_world_and_the_other_prompts_as_they_were(tmp_path: Path,
                                                                          overrides: list[str]) -> None:
    settings = ["llm.fallback_threshold=1.0", *overrides]
    shipped = load_scenario(SCENARIOS / "persona_validity_llm.yaml")
    survey = shipped.schedule[-1].params.model_dump(mode="json")
    plain = record_llm_run(load_scenario(scenario_file(tmp_path, "persona_validity_llm", settings, None)),
                           tmp_path / "a")
    surveyed = record_llm_run(load_scenario(scenario_file(tmp_path, "persona_validity_llm", settings, survey)),
                              tmp_path / "b")
    before, after = world(plain), world(surveyed)
    for table in WORLD:
        assert after[table].equals(before[table]), table
    counted = [name for name in after["rounds"].columns if name.startswith("llm_")]  # the survey's calls are not
    assert {"llm_requests", "llm_fallbacks", "llm_prompt_tokens"} <= set(counted)
    assert after["rounds"].select(counted).equals(before["rounds"].select(counted))
    calls = load_run(surveyed).llm_calls
    acting = calls.filter(~pl.col("phase").str.starts_with("survey:")).drop("latency_s")
    assert acting.equals(load_run(plain).llm_calls.drop("latency_s"))
    answers = load_run(surveyed).survey
    asked = [item["id"] for item in survey["items"] if item.get("only_with") is None]
    assert answers.height == 3 * 10 * len(asked) and "trust_leader" not in answers["item"].to_list()
    assert (answers["source"] == "llm").all() and answers["answer"].is_null().equals(answers["fallback"])
    linked = answers.join(calls, left_on=["round", "llm_call", "citizen"], right_on=["round", "phase", "citizen"])
    assert linked.height == answers.height and linked["fallback"].equals(linked["fallback_right"])
    assert answers["fallback"].any()  # the stand-in's deliberate garbage answers reach the survey too


def test_survey_fallbacks_neither_mark_the_run_invalid_nor_stop_it_and_are_reported_apart(tmp_path: Path) -> None:
    """The stand-in fails up to half of a survey item's answers in a round, a tenth of an acting phase's: at a
    stop threshold of 0.3 only the survey would stop the run, and only its fallbacks would make it invalid."""
    settings = ["llm.fallback_threshold=0.3"]
    survey = load_scenario(SCENARIOS / "persona_validity_llm.yaml").schedule[-1].params.model_dump(mode="json")
    plain = record_llm_run(load_scenario(scenario_file(tmp_path, "persona_validity_llm", settings, None)),
                           tmp_path / "a")
    surveyed = record_llm_run(load_scenario(scenario_file(tmp_path, "persona_validity_llm", settings, survey)),
                              tmp_path / "b")
    run = load_run(surveyed)
    validity = run.manifest["validity"]
    assert run.manifest["status"] == "completed" and validity["valid"] is True
    survey_calls = run.llm_calls.filter(pl.col("phase").str.starts_with("survey:"))
    assert validity["survey_asked"] == survey_calls.height > 0
    assert validity["survey_fallbacks"] == survey_calls["fallback"].sum() > 0
    assert validity | {"survey_asked": 0, "survey_fallbacks": 0} == load_run(plain).manifest["validity"]
    info = CliRunner().invoke(main, ["info", str(surveyed)])
    assert (f"fallbacks  {validity['fallbacks']} of {validity['asked']} LLM answers  (valid); survey: "
            f"{validity['survey_fallbacks']} of {validity['survey_asked']}, not judged") in info.output, info.output


def test_an_item_id_of_an_earlier_survey_phase_is_a_clear_error_naming_the_field(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, "govsim_fishery", ["rounds=4"], {"items": [LIKERT]})
    data = yaml.safe_load(path.read_text())
    data["schedule"].append({"phase": "survey", "params": {"items": [{**LIKERT, "id": "b"}, LIKERT]}})
    path.write_text(yaml.safe_dump(data))
    place = len(data["schedule"]) - 1
    with pytest.raises(ScenarioError, match=rf"schedule\[{place}\]\.params\.items\[1\]\.id: id 'a' is already an "
                                            rf"item of the survey at schedule\[{place - 1}\]"):
        load_scenario(path)


@pytest.mark.parametrize(("items", "params", "where", "message"), [
    ([{**LIKERT, "labels": ["a", "b", "c"]}], {}, None, r"items\[0\]\.likert: .*give 7 labels .* got 3"),
    ([{"id": "n", "kind": "number", "question": "q", "min": 5, "max": 5}], {}, None,
     r"items\[0\]\.number: .*min 5 must be below max 5"),
    ([{"id": "c", "kind": "choice", "question": "q", "options": ["a", "b"], "heuristic": {"column": "wealth"}}], {},
     None, r"items\[0\]\.choice: .*not from a column"),
    ([{**LIKERT, "heuristic": {"by_policy": {"bogus": 3}}}], {}, None,
     r"items\[0\]\.likert\.heuristic: .*unknown heuristic policies \['bogus'\]"),
    ([{**LIKERT, "heuristic": {"by_policy": {"greedy": 9}}}], {}, None, r"items\[0\]\.likert: .*from 1 to 7"),
    ([{**LIKERT, "only_with": "nothing"}], {}, None, r"items\[0\]\.only_with: no phase provides 'nothing'"),
    ([{**LIKERT, "question": "take {bogus}"}], {}, None, r"items\[0\]\.question: cannot fill 'bogus'"),
    ([{**LIKERT, "question": "take {unit.upper}"}], {}, None,
     r"items\[0\]\.question: cannot fill 'unit\.upper'; braces may hold only a bare \['unit'"),
    ([{**LIKERT, "question": "take {unit[0]}"}], {}, None, r"items\[0\]\.question: cannot fill 'unit\[0\]'"),
    ([{**LIKERT, "question": "take {unit!r}"}], {}, None, r"items\[0\]\.question: cannot fill 'unit!r'"),
    ([{**LIKERT, "question": "take {rounds:>9}"}], {}, None, r"items\[0\]\.question: cannot fill 'rounds:>9'"),
    ([{**LIKERT, "question": "take {}"}], {}, None, r"items\[0\]\.question: cannot fill ''"),
    ([{**LIKERT, "question": "take {unit"}], {}, None, r"items\[0\]\.question: cannot read its braces"),
    ([LIKERT], {"every": 13}, None, r"params\.every: every 13 rounds asks nothing in a run of 12 rounds"),
    ([LIKERT], {"rounds": [99]}, None, r"params\.rounds: round 99 is after the last round \(12\)"),
    ([LIKERT, LIKERT], {}, None, r"ids \['a'\] are used more than once"),
    ([LIKERT], {}, 0, r"schedule\[0\]\.phase: a survey must come after every phase that is not a survey"),
    ([{**LIKERT, "heuristic": {"column": "nope"}}], {}, None,
     r"schedule\[2\]\.params\.items\[0\]\.heuristic\.column: no citizen state column 'nope'"),
])
def test_invalid_items_are_clear_errors_naming_the_field(tmp_path: Path, items: list[dict[str, Any]],
                                                         params: dict[str, Any], where: int | None,
                                                         message: str) -> None:
    path = scenario_file(tmp_path, "govsim_fishery", [], {"items": items, **params}, where)
    with pytest.raises(ScenarioError, match=message):
        Society(load_scenario(path))


# ---- persona validity ---------------------------------------------------------------------------------------

ITEMS = [{"id": "e1", "kind": "likert", "trait": "extraversion", "points": 7},
         {"id": "e2", "kind": "likert", "trait": "extraversion", "points": 7, "reversed": True}]


def hand_made(e1: list[int], e2: list[int]) -> dict[str, Any]:
    """Four LLM citizens: extraversion 0.2 .. 0.8, every other trait 0.5; their answers to e1 and e2 (reversed),
    plus a failed answer and a heuristic row that must both be left out; takes and punishments."""
    personas = pl.DataFrame({"citizen": [0, 1, 2, 3], **{t: [0.5] * 4 for t in BIG_FIVE},
                             "extraversion": [0.2, 0.4, 0.6, 0.8]})
    rows = [(c, "e1", float(a), "llm", False) for c, a in enumerate(e1)]
    rows += [(c, "e2", float(a), "llm", False) for c, a in enumerate(e2)]
    rows += [(0, "e1", None, "llm", True), (0, "e2", 7.0, "heuristic", False)]
    survey = pl.DataFrame(rows, schema=["citizen", "item", "answer", "source", "fallback"], orient="row")
    citizens = pl.DataFrame({"round": [1] * 4 + [2] * 4, "citizen": [0, 1, 2, 3] * 2,
                             "take": [5.0, 10, 15, 20, 0, 0, 0, 0]})
    events = pl.DataFrame({"round": [1, 1, 1, 1], "kind": ["punish", "punish", "sanction", "vote"],
                           "actor": [3, 3, 2, 0], "target": [0, 1, 0, 1]})
    return dict(personas=personas, survey=survey, items=ITEMS, citizens=citizens, events=events)


def test_persona_validity_is_the_hand_computed_pearson_r_and_moves_with_the_answers() -> None:
    table = persona_validity_of(**hand_made(e1=[2, 3, 5, 7], e2=[6, 5, 4, 1]))
    extraversion = table.filter(pl.col("trait") == "extraversion").row(0, named=True)
    # surveyed scores: (e1 - 1) / 6 and 1 - (e2 - 1) / 6, averaged: 1/6, 2/6, 7/12, 1 against 0.2, 0.4, 0.6, 0.8;
    # deviations x: -.3 -.1 .1 .3 (sum x^2 = 0.2), y: -17/48 -9/48 3/48 23/48 (sum y^2 = 908/2304),
    # sum xy = (5.1 + 0.9 + 0.3 + 6.9) / 48 = 0.275, r = 0.275 / sqrt(0.2 * 908 / 2304)
    assert extraversion["surveyed"] == pytest.approx(0.275 / np.sqrt(0.2 * 908 / 2304))
    assert extraversion["citizens"] == 4
    assert extraversion["take_share"] == pytest.approx(1.0)  # 0.1, 0.2, 0.3, 0.4; the round without takes left out
    assert extraversion["punishments"] == pytest.approx(pearson(np.array([.2, .4, .6, .8]), np.array([0, 0, 1, 2])))
    assert np.isnan(table.filter(pl.col("trait") == "agreeableness")["surveyed"].item())  # nobody answered it
    assert np.isnan(table.filter(pl.col("trait") == "openness")["take_share"].item())  # assigned 0.5 to everyone
    moved = persona_validity_of(**hand_made(e1=[7, 3, 5, 2], e2=[1, 5, 4, 6]))
    assert moved.filter(pl.col("trait") == "extraversion")["surveyed"].item() < 0 < extraversion["surveyed"]


def test_votes_for_the_winner_leave_out_abstentions() -> None:
    made = hand_made(e1=[2, 3, 5, 7], e2=[6, 5, 4, 1])
    ballots = pl.DataFrame({"round": [1] * 9, "kind": ["election"] + ["ballot"] * 8,
                            "actor": [2, 0, 0, 1, 1, 2, 2, 3, 3], "target": [-1, 2, -1, 2, 3, 2, -1, 0, 3]},
                           schema=made["events"].schema)
    table = persona_validity_of(**made | {"events": pl.concat([made["events"], ballots])})
    # cast ballots for the winner (citizen 2): 0: 1 of 1, 1: 1 of 2, 2: 1 of 1, 3: 0 of 2
    assert table.filter(pl.col("trait") == "extraversion")["votes_for_winner"].item() == pytest.approx(
        pearson(np.array([.2, .4, .6, .8]), np.array([1, .5, 1, 0])))


def test_pearson_is_nan_below_three_citizens_and_without_variance() -> None:
    assert np.isnan(pearson(np.array([0.1, 0.9]), np.array([1.0, 2.0])))
    assert np.isnan(pearson(np.array([0.1, 0.5, 0.9]), np.array([3.0, 3.0, 3.0])))
    x = np.linspace(0.05, 0.95, 10)
    for constant in (1 / 6, 1 / 3, 2 / 3):  # their mean is not exactly the value: centring leaves rounding noise
        assert np.isnan(pearson(x, np.full(10, constant)))
        assert np.isnan(pearson(np.full(10, constant), x))
    assert pearson(np.array([0.1, 0.5, 0.9]), np.array([3.0, 2.0, 1.0])) == pytest.approx(-1.0)


def test_society_info_shows_persona_validity_for_a_surveyed_run(tmp_path: Path) -> None:
    run = record_llm_run(load_scenario(SCENARIOS / "persona_validity_llm.yaml", ["llm.fallback_threshold=1.0"]),
                         tmp_path / "run")
    table = persona_validity(run)
    assert table is not None and table["trait"].to_list() == list(BIG_FIVE)
    assert {"surveyed", "take_share", "punishments"} <= set(table.columns)
    shown = CliRunner().invoke(main, ["info", str(run)])
    assert shown.exit_code == 0 and "persona validity (Pearson r" in shown.output
    for trait in BIG_FIVE:
        assert f"  {trait} " in shown.output
