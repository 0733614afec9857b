"""What a phase declares to the scenario and the model: typed params, build checks, slots and schedule order."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from institutions.elections import ElectionsPhase
from institutions.leaders import LeaderPhase
from institutions.polity import InstitutionPhase, Polity
from norms.state import NormColumns, ensure_norm_columns
from society import Scenario, ScenarioError, Society, load_scenario
from society.phases import registered_phases
from society.scenario.files import scenario_to_yaml

ROOT = Path(__file__).parents[2]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
MALFORMED = Path(__file__).parent / "malformed"
BUILD_REJECTED = [
    "politicians_exceed_population",
    "llm_politicians_without_llm_citizens",
    "heuristic_politicians_on_llm_citizens",
    "harvest_without_commons",
    "sanctions_before_monitoring",
    "leader_without_elections",
    "leader_before_elections",
    "constitution_after_elections",
    "communicate_after_harvest",
    "norm_beliefs_before_invest",
]


def small(schedule: list, **changes: object) -> Scenario:
    data = {
        "name": "small", "rounds": 6, "seed": 2,
        "population": {"size": 12, "policies": [{"policy": "sustainable", "fraction": 0.5},
                                                {"policy": "greedy", "fraction": 0.5}]},
        "commons": {"capacity": 300, "regrowth": {"kind": "logistic", "rate": 0.5}, "on_collapse": "continue"},
        "schedule": schedule,
    }
    return Scenario.model_validate(data | changes)


# ---- typed params ---------------------------------------------------------------------------------------------


def test_loaded_params_are_each_phases_typed_model_and_the_society_uses_them() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "institutions_charter.yaml", ["schedule.5.params.every=3"])
    phases = registered_phases()
    assert [type(entry.params) for entry in scenario.schedule] == [phases[e.phase].Params for e in scenario.schedule]
    assert scenario.schedule[5].params.every == 3
    society = Society(scenario)
    assert all(phase.params is entry.params for phase, entry in zip(society.phases, scenario.schedule, strict=True))


def test_code_built_entries_as_names_or_mappings_get_typed_params() -> None:
    scenario = small(["harvest", "regrow", {"phase": "punish", "params": {"cost": 2}}])
    harvest, regrow, punish = (entry.params for entry in scenario.schedule)
    assert harvest.reputation_memory == 0.8 and punish.cost == 2 and punish.impact == 3
    assert regrow.model_dump() == {}
    assert small(["harvest", {"phase": "punish", "params": punish}]).schedule[1].params is punish


def test_a_bad_param_in_code_is_a_validation_error_at_its_field() -> None:
    with pytest.raises(ValidationError) as caught:
        small(["harvest", {"phase": "punish", "params": {"cost": -1, "costt": 1}}])
    assert {error["loc"] for error in caught.value.errors()} == {
        ("schedule", 1, "params", "cost"), ("schedule", 1, "params", "costt")
    }


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_resolved_scenario_yaml_reloads_equal(path: Path, tmp_path: Path) -> None:
    scenario = load_scenario(path)
    kept = tmp_path / "scenario.yaml"
    kept.write_text(scenario_to_yaml(scenario))
    assert load_scenario(kept) == scenario
    assert yaml.safe_load(kept.read_text())["schedule"][0]["params"] == scenario.schedule[0].params.model_dump(
        mode="json"
    )


# ---- build checks run at validation ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", BUILD_REJECTED)
def test_what_validate_rejects_society_rejects_with_the_same_field_and_message(name: str) -> None:
    path = MALFORMED / f"{name}.yaml"
    with pytest.raises(ScenarioError) as loaded:
        load_scenario(path)
    assert all(p.file == str(path) and p.field.startswith("schedule[") for p in loaded.value.problems)
    data = yaml.safe_load(path.read_text())
    with pytest.raises(ScenarioError) as built:
        Society(Scenario.model_validate(data))
    found = [(problem.field, problem.message) for problem in built.value.problems]
    assert found == [(problem.field, problem.message) for problem in loaded.value.problems]


def test_politicians_that_fit_exactly_are_seated() -> None:
    scenario = small([{"phase": "elections", "params": {"politicians": [{"kind": "honest", "count": 12}]}}])
    assert (Society(scenario).state["politician"] >= 0).all()


# ---- declared order -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "schedule",
    [
        ["harvest", "sanctions"],
        ["monitoring", "harvest", "sanctions", "regrow"],
        ["communicate", "invest", "norm_punish", "social_learning", "norm_beliefs"],
        ["norm_punish"],
    ],
)
def test_schedules_in_a_working_order_build(schedule: list) -> None:
    assert [phase.name for phase in Society(small(schedule)).phases] == schedule


def test_every_declared_need_is_something_a_phase_provides() -> None:
    phases = registered_phases().values()
    provided = {what for phase in phases for what in phase.provides}
    needed = {what for phase in phases for what in (*phase.requires, *phase.reads, *phase.precedes)}
    assert needed and needed <= provided


def test_the_leader_finds_the_elections_it_requires_through_the_providers() -> None:
    society = Society(load_scenario(ROOT / "scenarios" / "institutions_none.yaml"))
    elections = society.providers["elections"]
    leader = next(phase for phase in society.phases if isinstance(phase, LeaderPhase))
    assert isinstance(elections, ElectionsPhase) and leader._elections() is elections


# ---- slots ----------------------------------------------------------------------------------------------------


def test_a_slot_is_made_once_and_shared() -> None:
    society = Society(small(["harvest"]))
    made: list[int] = []
    first = society.slot(list, lambda: made.append(1) or ["shared"])
    assert society.slot(list, lambda: made.append(2) or ["other"]) is first and made == [1]


def test_norms_phases_share_one_norm_columns_slot() -> None:
    society = Society(small(["communicate", "harvest", "norm_punish", "norm_beliefs"]))
    columns = society.slots[NormColumns]
    assert isinstance(columns, NormColumns) and ensure_norm_columns(society) is columns
    assert all(name in society.state for name in NormColumns.names)


def test_the_polity_is_a_slot_kept_in_the_society_checkpoint_and_restored() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "institutions_none.yaml", ["rounds=12"])
    society = Society(scenario)
    polity = society.slot(Polity)
    assert all(phase.polity is polity for phase in society.phases if isinstance(phase, InstitutionPhase))
    assert "polity" not in vars(society)
    for _ in range(5):
        society.step()
    checkpoint = society.checkpoint()
    assert checkpoint["slots"]["institutions.polity.Polity"] == polity.state_dict()
    assert polity.elections, "an election was held, so a restore that lost the polity would show"
    for _ in range(5):
        society.step()
    resumed = Society(scenario)
    resumed.restore(checkpoint)
    for _ in range(5):
        resumed.step()
    assert resumed.slot(Polity).state_dict() == polity.state_dict()


def test_a_checkpoint_without_the_polity_slot_is_refused_by_name() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "institutions_none.yaml")
    checkpoint = Society(scenario).checkpoint()
    del checkpoint["slots"]["institutions.polity.Polity"]
    with pytest.raises(ValueError, match=r"checkpoint lacks slots: \['institutions.polity.Polity'\]"):
        Society(scenario).restore(checkpoint)
