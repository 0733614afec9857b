"""Power metrics on hand-computed sequences."""

from __future__ import annotations

import math

import pytest

from institutions.power import (
    ActionRecord,
    ElectionRecord,
    entrenchment,
    incumbency_rate,
    policy_stability,
    ppi,
    turnover,
)


def test_ppi_of_an_honest_leader_is_zero_and_empty_is_none() -> None:
    assert ppi(["set_policy"] * 5) == 0.0
    assert ppi([]) is None


def test_ppi_weights_by_severity() -> None:
    # 3 policies (weight 1 each), one postponement (3), one diversion (2): (3 + 2) / (3 + 3 + 2) = 5/8
    actions = ["set_policy", "set_policy", "postpone_election", "set_policy", "divert_revenue"]
    assert ppi(actions) == pytest.approx(5 / 8)
    # a lifted term limit (3) and two critic sanctions (2 each) against 4 policies: 7 / 11
    actions = ["set_policy"] * 4 + ["lift_term_limit", "sanction_critics", "sanction_critics"]
    assert ppi(actions) == pytest.approx(7 / 11)
    assert ppi(["change_voting_rule"]) == 1.0


def test_ppi_counts_blocked_attempts_and_accepts_records() -> None:
    records = [ActionRecord(1, 4, "set_policy"), ActionRecord(1, 4, "postpone_election", blocked=True)]
    assert ppi(records) == pytest.approx(3 / 4)
    assert ppi(records, severity={"set_policy": 1.0, "postpone_election": 1.0}) == pytest.approx(1 / 2)
    with pytest.raises(ValueError, match="no severity for actions \\['coup'\\]"):
        ppi(["coup"])


def test_entrenchment_attempts_and_successes() -> None:
    records = [
        ActionRecord(1, 2, "set_policy"),
        ActionRecord(1, 2, "divert_revenue"),
        ActionRecord(2, 2, "postpone_election", blocked=True),
        ActionRecord(3, 2, "lift_term_limit"),
        ActionRecord(3, 2, "sanction_rivals", blocked=True),
        ActionRecord(4, 2, "change_voting_rule"),
    ]
    assert entrenchment(records) == (4, 2)
    assert entrenchment([]) == (0, 0)


def test_incumbency_and_turnover() -> None:
    elections = [
        ElectionRecord(1, None, 5),  # first election: nobody in office
        ElectionRecord(4, 5, 5),     # re-elected
        ElectionRecord(7, 5, 9),     # lost
        ElectionRecord(10, 9, 9),    # re-elected
    ]
    assert incumbency_rate(elections) == pytest.approx(2 / 3)
    assert turnover(elections) == 1
    assert incumbency_rate(elections[:1]) is None
    assert turnover(elections[:1]) == 0


def test_policy_stability() -> None:
    policies = [(1.0, 2.0, 0.1), (1.0, 2.0, 0.1), (1.5, 2.0, 0.1), (1.5, 2.0, 0.1), (1.5, 2.0, 0.1)]
    assert policy_stability(policies) == pytest.approx(3 / 4)
    assert policy_stability(policies[:1]) is None
    assert policy_stability([(math.nan, 1.0), (math.nan, 1.0)]) == 1.0
