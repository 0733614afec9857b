"""LLM citizens in the norms phases, with a scripted model: reflection, norm punishment, rules, LLM scenarios."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from norms.learning import NormDecision, better_paid_neighbours
from norms.punishment import FALLBACK_RULE, LLM_CHOICE, eligible_targets
from society import load_scenario
from society.core.model import Society
from society.phases.decisions import PunishDecision
from society.sanctioning import chosen_targets
from tests.norms import references as ref

from .conftest import Ask, ScriptedLLM, norm_scenario

POLICIES = [
    {"policy": "llm", "fraction": 0.3},
    {"policy": "sustainable", "fraction": 0.2},
    {"policy": "learner", "fraction": 0.3, "initial_ratio": [0.8, 2.0]},
    {"policy": "greedy", "fraction": 0.2, "factor": 2},
]
LLM_SCENARIOS = sorted(Path("scenarios").glob("norms_*_llm.yaml"))


def llm_society(schedule: list, script) -> Society:
    """40 citizens, 12 of them LLM citizens answered by `script`, playing `schedule`."""
    society = Society(norm_scenario(population={"size": 40, "policies": POLICIES}, schedule=schedule))
    society.llm = ScriptedLLM(society.llm.members, society.num_citizens, script)
    return society


def mentioned(observation: str) -> list[int]:
    return [int(c) for c in re.findall(r"^- citizen (\d+)", observation, flags=re.MULTILINE)]


# ---- reflection ------------------------------------------------------------------------------------------------


def test_better_paid_neighbours_are_distinct_best_first_and_capped() -> None:
    indptr = np.array([0, 4, 5, 6, 7, 8], np.int64)
    indices = np.array([1, 2, 2, 3, 0, 0, 0, 0], np.int64)  # 0 - 1, 2 (twice), 3
    payoff = np.array([2.0, 5.0, 3.0, 1.0, 9.0])
    np.testing.assert_array_equal(better_paid_neighbours(indptr, indices, payoff, 0, 8), [1, 2])
    np.testing.assert_array_equal(better_paid_neighbours(indptr, indices, payoff, 0, 1), [1])
    assert better_paid_neighbours(indptr, indices, payoff, 1, 8).size == 0


def reflecting_society(script) -> tuple[Society, np.ndarray, np.ndarray]:
    """A society about to reflect: random takes and payoffs set; returns it, the payoffs and the norms before."""
    society = llm_society([{"phase": "social_learning", "params": {"max_norm": 2.5}}], script)
    rng = np.random.default_rng(7)
    state = society.state
    state["ratio"] = rng.uniform(0.5, 2.5, society.num_citizens)
    state["wealth"] = np.round(rng.uniform(0, 10, society.num_citizens), 1)
    return society, state["wealth"].copy(), state["personal_norm"].copy()


def test_llm_citizens_with_a_better_paid_neighbour_reflect_and_their_answers_set_their_norms() -> None:
    def script(ask: Ask) -> NormDecision | None:
        return None if ask.citizen % 3 == 0 else NormDecision(personal_norm=9.0 if ask.citizen % 2 else 0.4)

    society, payoff, before = reflecting_society(script)
    society.phases[0].run()
    llm, graph, state = society.llm, society.graph, society.state
    expected = [c for c in llm.members if better_paid_neighbours(graph.indptr, graph.indices, payoff, c, 99).size]
    assert [a.citizen for a in llm.asked] == expected and 0 < len(expected) < llm.members.size
    for ask in llm.asked:
        assert ask.phase == "social_learning"
        assert ask.schema == {"personal_norm": {"type": "number", "minimum": 0, "maximum": 2.5}}
        shown = mentioned(ask.observation)
        assert shown and all(payoff[j] > payoff[ask.citizen] for j in shown)
        assert f"at most {before[ask.citizen]:.2f} times" in ask.observation
    norm = state["personal_norm"]
    for c in llm.members:
        answer = script(Ask("", int(c), "", None)) if c in expected else None
        want = before[c] if answer is None else min(answer.personal_norm, 2.5)
        assert norm[c] == pytest.approx(want)
    events = society.round_events().filter(kind="reflection")
    answered = [c for c in expected if c % 3 != 0]
    assert events["actor"].to_list() == answered
    details = [json.loads(d) for d in events["detail"]]
    assert [d["norm_after"] for d in details] == [pytest.approx(norm[c], abs=1e-4) for c in answered]
    assert society.phases[0].metrics()["llm_reflections"] == len(expected)
    assert society.phases[0].metrics()["llm_norm_revisions"] == sum(abs(norm[c] - before[c]) > 1e-9 for c in answered)
    remembered = llm.memory.render(int(llm.position[answered[0]]))
    assert f'Your own norm, decided after reflecting: "each citizen should take at most {norm[answered[0]]:.2f}' in remembered


def test_heuristic_learners_still_learn_beside_llm_citizens() -> None:
    society, _, before = reflecting_society(None)
    society.phases[0].run()
    learners = society.group_members[2]
    assert np.any(society.state["personal_norm"][learners] != before[learners])
    np.testing.assert_array_equal(society.state["strategy"][learners], society.state["personal_norm"][learners])
    llm = society.llm.members
    np.testing.assert_array_equal(society.state["personal_norm"][llm], before[llm])  # every answer failed


# ---- norm punishment -------------------------------------------------------------------------------------------


def test_eligible_targets_exceed_the_punishers_norm_worst_first() -> None:
    indptr = np.array([0, 4, 4, 4, 4], np.int64)
    indices = np.array([1, 2, 3, 0], np.int64)
    norm = np.array([1.0, 5.0, 5.0, 5.0])
    ratio = np.array([3.0, 1.05, 1.5, 2.0])
    np.testing.assert_array_equal(eligible_targets(indptr, indices, 0, norm, ratio, 0.1), [3, 2])
    np.testing.assert_array_equal(eligible_targets(indptr, indices, 0, norm, ratio, 0.0), [3, 2, 1])
    assert chosen_targets([2, 9, 2, 3, 1], np.array([3, 2]), 5) == [2, 3]
    assert chosen_targets([2, 3], np.array([3, 2]), 1) == [2]


def punishing_society(script, **params) -> Society:
    society = llm_society(
        [{"phase": "norm_punish", "params": {"tolerance": 0.1, "punishers": ["llm", "sustainable"], **params}}],
        script,
    )
    society.state["ratio"] = np.random.default_rng(3).uniform(0.3, 2.5, society.num_citizens)
    return society


def test_llm_punishers_choose_only_among_neighbours_above_their_norm() -> None:
    def script(ask: Ask) -> PunishDecision:
        enum = ask.schema["punish"]["items"]["enum"]
        return PunishDecision(punish=[*enum, *enum, ask.citizen, 10_000])  # repeats and ineligible names

    society = punishing_society(script, max_targets=2)
    society.phases[0].run()
    state, graph, llm = society.state, society.graph, society.llm
    events = society.round_events()
    chosen = events.filter(detail=LLM_CHOICE)
    assert chosen.height > 0
    for ask in llm.asked:
        eligible = eligible_targets(graph.indptr, graph.indices, ask.citizen, state["personal_norm"], state["ratio"], 0.1)
        assert ask.schema["punish"]["items"]["enum"] == eligible.tolist() and ask.schema["punish"]["maxItems"] == 2
        assert eligible.size and mentioned(ask.observation) == eligible.tolist()
        targets = chosen.filter(actor=ask.citizen)["target"].to_list()
        assert targets == eligible[:2].tolist()
    assert set(chosen["actor"].to_list()) <= set(llm.members.tolist())
    heuristic = events.filter(pl.col("detail").is_null())
    assert heuristic.height > 0 and set(heuristic["actor"].to_list()) <= set(society.group_members[1].tolist())
    assert society.phases[0].metrics()["llm_norm_punishments"] == chosen.height


@pytest.mark.parametrize("fallback", ["nobody", "norm_rule"])
def test_failed_llm_answers_fall_back_to_the_named_rule(fallback: str) -> None:
    society = punishing_society(None, llm_fallback=fallback)
    society.phases[0].run()
    events = society.round_events()
    assert events.filter(detail=LLM_CHOICE).height == 0
    fell_back = events.filter(detail=FALLBACK_RULE)
    if fallback == "nobody":
        assert fell_back.height == 0
        return
    state, graph = society.state, society.graph
    asked = np.zeros(society.num_citizens, dtype=bool)
    asked[[a.citizen for a in society.llm.asked]] = True
    want = ref.norm_punishments_reference(graph.indptr, graph.indices, asked, state["personal_norm"],
                                          state["ratio"], 0.1, 1.0, 0, np.random.default_rng(0))
    assert fell_back.height > 0
    np.testing.assert_array_equal(fell_back["actor"].to_numpy(), want[0])
    np.testing.assert_array_equal(fell_back["target"].to_numpy(), want[1])


# ---- rules and scenarios ---------------------------------------------------------------------------------------


def test_every_norms_phase_has_a_rule_line_with_its_parameters() -> None:
    schedule = [
        {"phase": "communicate", "params": {"mode": "meeting"}}, "harvest", "regrow",
        {"phase": "norm_punish", "params": {"cost": 2, "impact": 7, "tolerance": 0.2}},
        "social_learning", "norm_beliefs",
        {"phase": "public_goods", "params": {"group_size": 3, "punishment": True, "cost": 1, "impact": 4}},
    ]
    society = Society(norm_scenario(population={"size": 12, "policies": POLICIES}, schedule=schedule))
    rules = {phase.name: phase.rule() for phase in society.phases}
    assert all(rules.values())
    assert "village meeting" in rules["communicate"]
    assert "costs the punisher 2" in rules["norm_punish"] and "takes 7" in rules["norm_punish"]
    assert "20%" in rules["norm_punish"]
    assert "groups of 3" in rules["public_goods"] and "removes 4" in rules["public_goods"]
    system = society.llm.rules()
    assert all(rule in system for rule in rules.values())


def test_learners_change_their_take_only_through_norms_phases() -> None:
    society = Society(norm_scenario(schedule=["harvest", "regrow"], rounds=4))
    learners = society.group_members[1]
    first = society.state["strategy"][learners].copy()
    while society.running:
        society.step()
    np.testing.assert_array_equal(society.state["strategy"][learners], first)


@pytest.mark.parametrize("path", LLM_SCENARIOS, ids=lambda p: p.stem)
def test_llm_scenarios_load_small_with_llm_citizens_in_the_norms_phases(path: Path) -> None:
    scenario = load_scenario(path)
    society = Society(scenario)
    assert scenario.population.size <= 12 and society.llm.members.size >= 3
    phases = {phase.name: phase for phase in society.phases}
    assert {"communicate", "harvest", "norm_punish", "social_learning", "norm_beliefs"} <= set(phases)
    np.testing.assert_array_equal(phases["norm_punish"].llm_punishers, society.llm.members)
    np.testing.assert_array_equal(phases["social_learning"].reflecting, society.llm.members)


def test_llm_grid_carries_altruism_and_selfishness_by_persona() -> None:
    altruistic = load_scenario("scenarios/norms_rich_altruistic_llm.yaml").population.policies[0].persona
    selfish = load_scenario("scenarios/norms_scarce_selfish_llm.yaml").population.policies[0].persona
    assert altruistic.traits["agreeableness"].mean > 0.7 and selfish.traits["agreeableness"].mean < 0.3
    assert "fairness" in altruistic.values and "wealth" in selfish.values
    assert selfish.hidden_agenda_probability > altruistic.hidden_agenda_probability
    scarce = load_scenario("scenarios/norms_scarce_altruistic_llm.yaml").commons
    rich = load_scenario("scenarios/norms_rich_altruistic_llm.yaml").commons
    assert scarce.initial_stock * 4 <= rich.initial_stock
    meeting = load_scenario("scenarios/norms_govsim_meeting_llm.yaml")
    params = {entry.phase: entry.params for entry in meeting.schedule}
    assert params["harvest"].universalization and params["communicate"].universalization
