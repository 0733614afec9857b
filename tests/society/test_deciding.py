"""The deciding path: rule, then one batched question, then the named fallback for exactly the failed answers."""

from __future__ import annotations

import numpy as np
import pytest

from society import Scenario, Society
from society.phases.deciding import Fallback, GroupTally, Question
from society.phases.decisions import HarvestDecision
from tests.shipped_tables import SchemaAnswers


def mixed_society(llm_share: float = 0.5) -> Society:
    policies = [{"policy": "sustainable", "fraction": 1 - llm_share}]
    if llm_share:
        policies.append({"policy": "llm", "fraction": llm_share})
    scenario = Scenario.model_validate({
        "name": "mixed", "seed": 2, "rounds": 2,
        "population": {"size": 40, "policies": policies},
        "graph": {"kind": "ring", "k": 2},
        "schedule": ["invest"],
    })
    society = Society(scenario)
    if society.llm is not None:
        society.llm.connection = SchemaAnswers()
    return society


class Probe:
    name = "probe"


def question(society: Society, citizens: np.ndarray) -> Question:
    return Question(citizens, [f"How much, citizen {c}?" for c in citizens], HarvestDecision)


def test_rule_then_one_batch_then_the_fallback_for_exactly_the_failed() -> None:
    society = mixed_society()
    path, order = society.deciding, []
    llm = path.llm_citizens
    asked_before = society.llm.round_metrics()["llm_requests"]

    def rule() -> np.ndarray:
        order.append("rule")
        return np.zeros(society.num_citizens)

    def fallback(failed: np.ndarray) -> np.ndarray:
        order.append(("fallback", failed.tolist()))
        return np.full(failed.size, -1.0)

    decided = path.decide(Probe(), rule=rule, question=question(society, llm), fallback=Fallback("minus_one", fallback))
    assert order[0] == "rule" and len(order) == 2
    assert order[1] == ("fallback", decided.failed.tolist())
    np.testing.assert_array_equal(decided.asked, llm)
    calls = society.llm.round_calls()
    assert calls.height == llm.size and set(calls["phase"]) == {"probe"}
    assert society.llm.round_metrics()["llm_requests"] == asked_before + llm.size
    np.testing.assert_array_equal(np.sort(decided.failed), np.sort(calls.filter("fallback")["citizen"].to_numpy()))
    values = decided.values(lambda answer: answer.amount)
    assert (values[~decided.answered] == -1.0).all() and (values[decided.answered] >= 0).all()
    group = int(society.state["group"][llm[0]])
    assert decided.tally == {group: GroupTally(llm.size, llm.size - decided.failed.size, decided.failed.size)}
    assert decided.fallback_name == "minus_one"


def test_without_llm_citizens_only_the_rule_runs() -> None:
    society = mixed_society(llm_share=0.0)
    path = society.deciding
    assert path.llm_citizens.size == 0
    decided = path.decide(Probe(), rule=lambda: "ruled", question=None,
                          fallback=Fallback("never", lambda failed: pytest.fail("no fallback without answers")))
    assert decided.rule == "ruled" and decided.asked.size == 0 and decided.tally == {}


def test_the_rule_decides_for_everyone_but_the_llm_citizens() -> None:
    society = mixed_society()
    path = society.deciding
    everyone = np.ones(society.num_citizens, dtype=bool)
    by_rule = path.by_rule(everyone)
    assert not by_rule[path.llm_citizens].any() and by_rule.sum() == society.num_citizens - path.llm_citizens.size
    assert everyone.all()  # the caller's mask is left as it was
    some = np.zeros(society.num_citizens, dtype=bool)
    some[path.llm_citizens[:3]] = True
    np.testing.assert_array_equal(path.asked_among(some), path.llm_citizens[:3])
