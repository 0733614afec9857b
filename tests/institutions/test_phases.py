"""Institution phases in small societies: charters, entrenchment, sanctions, monitoring, elections, resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from institutions.decisions import (
    ChangeVotingRule,
    DivertRevenue,
    ExtendTermLimit,
    LeaderDecision,
    LiftTermLimit,
    PolicyDecision,
    PostponeElection,
    SanctionCitizens,
)
from institutions.leaders import LeaderPhase
from institutions.polity import Polity
from institutions.power import POWER_ACTIONS
from institutions.voting import RULES
from society import Society, load_run, load_scenario
from society.core.runner import RunInterrupted, resume_run, run_scenario
from society.scenario.files import ScenarioError

SCENARIOS = Path(__file__).parents[2] / "scenarios"
SMALL = ["population.size=30", "rounds=12"]
FORBID_ALL = "schedule.4.params.forbid=[" + ", ".join(POWER_ACTIONS) + "]"


def scenario(name: str, *overrides: str):
    return load_scenario(SCENARIOS / f"institutions_{name}.yaml", [*SMALL, *overrides])


def tables(path: Path) -> dict[str, pl.DataFrame]:
    run = load_run(path)
    return {"rounds": run.rounds, "citizens": run.citizens, "events": run.events}


def leader_phase(society: Society) -> LeaderPhase:
    return next(p for p in society.phases if isinstance(p, LeaderPhase))


EVERY_ACTION = LeaderDecision(
    policy=PolicyDecision(quota=1.0, fine=2.0, tax=0.5, redistribution=0.1),
    actions=[
        PostponeElection(rounds=4),
        ExtendTermLimit(terms=1),
        LiftTermLimit(),
        ChangeVotingRule(rule="borda"),
        SanctionCitizens(action="sanction_critics", targets=[1, 2], amount=3.0),
        SanctionCitizens(action="sanction_rivals", targets=[3], amount=3.0),
        DivertRevenue(share=0.5, to="self"),
    ],
)


def play_every_action(scenario_name: str, *overrides: str) -> tuple[Society, pl.DataFrame]:
    society = Society(scenario(scenario_name, *overrides))
    society.step()
    society.steps += 1
    society._events = []
    polity = society.slot(Polity)
    polity.leader, polity.treasury = 0, 100.0
    leader_phase(society).apply(EVERY_ACTION)
    return society, society.round_events()


def test_without_a_charter_every_power_action_is_enacted() -> None:
    society, events = play_every_action("none")
    polity = society.slot(Polity)
    assert "blocked" not in events["kind"].to_list()
    assert polity.term_limit is None
    assert polity.rule == "borda"
    assert polity.next_election == 5 + 4
    sanctions = events.filter(pl.col("kind") == "sanction", pl.col("phase") == "leader")
    assert sorted(sanctions["target"].to_list()) == [1, 2, 3]
    assert leader_phase(society).metrics()["diverted"] > 0
    assert leader_phase(society).metrics()["tax"] == 0.5 and leader_phase(society).metrics()["redistribution"] == 0.1


def test_a_charter_blocks_each_forbidden_action_and_records_it() -> None:
    society, events = play_every_action("charter", FORBID_ALL, "schedule.4.params.jury_for_sanctions=false")
    polity = society.slot(Polity)
    blocked = [json.loads(d) for d in events.filter(pl.col("kind") == "blocked")["detail"]]
    rules = {(b["action"], b["rule"]) for b in blocked}
    assert {(a, f"forbid:{a}") for a in POWER_ACTIONS} <= rules
    assert ("set_policy", "max_tax") in rules and ("set_policy", "min_redistribution") in rules
    assert polity.term_limit == 2 and polity.rule == "plurality" and polity.next_election == 5
    assert events.filter(pl.col("kind") == "sanction", pl.col("phase") == "leader").height == 0
    assert leader_phase(society).metrics()["diverted"] == 0
    assert polity.policy.tax == 0.2 and polity.policy.redistribution == 0.8
    attempts = [json.loads(d)["action"] for d in events.filter(pl.col("kind") == "leader_action")["detail"]]
    assert set(POWER_ACTIONS) <= set(attempts)
    assert leader_phase(society).metrics()["entrenchment_attempts"] >= 6 and leader_phase(society).metrics()["entrenchment_successes"] == 0
    assert leader_phase(society).metrics()["ppi"] == pytest.approx((2 + 2 + 3 + 2 + 2 + 2 + 3) / (1 + 16))


def test_a_jury_acquits_the_compliant_and_convicts_the_violators() -> None:
    society = Society(scenario("charter"))
    society.step()
    society._events = []
    polity, state = society.slot(Polity), society.state
    polity.leader = 0
    state["reputation"][:] = 1.0
    state["reputation"][[5, 6]] = 0.0
    wealth = state["wealth"].copy()
    decision = LeaderDecision(
        policy=PolicyDecision(quota=1.0, fine=2.0, tax=0.1, redistribution=1.0),
        actions=[SanctionCitizens(action="sanction_critics", targets=[3, 4, 5, 6], amount=3.0)],
    )
    leader_phase(society).apply(decision)
    events = society.round_events()
    acquitted = events.filter(pl.col("kind") == "blocked")
    assert sorted(acquitted["target"].to_list()) == [3, 4]
    assert {json.loads(d)["rule"] for d in acquitted["detail"]} == {"jury"}
    convicted = events.filter(pl.col("kind") == "sanction", pl.col("phase") == "leader")
    assert sorted(convicted["target"].to_list()) == [5, 6]
    transfer = state["transfer"]
    np.testing.assert_allclose((state["wealth"] - wealth + state["tax_paid"] - transfer)[[5, 6]], -3.0)


def tenure_of_entrencher(name: str, seed: int, *overrides: str) -> int:
    """Rounds in which the entrencher held office, with one honest rival and a one-term limit."""
    settings = [
        f"seed={seed}", "rounds=24", "schedule.5.params.every=3", "schedule.5.params.term_limit=1",
        "schedule.5.params.politicians=[{kind: entrencher}, {kind: honest}]",
    ]
    if name == "none":
        settings = [s.replace("schedule.5", "schedule.4") for s in settings]
    society = Society(scenario(name, *settings, *overrides))
    entrencher = int(np.flatnonzero(society.state["politician"] == 2)[0])
    held = 0
    while society.running:
        society.step()
        held += society.slot(Polity).leader == entrencher
    return held


def test_an_entrencher_without_a_charter_stays_in_power_longer() -> None:
    seeds = range(3)
    free = [tenure_of_entrencher("none", seed) for seed in seeds]
    bound = [tenure_of_entrencher("charter", seed, FORBID_ALL) for seed in seeds]
    assert all(f >= b for f, b in zip(free, bound, strict=True)), (free, bound)
    assert sum(free) > sum(bound), (free, bound)
    assert max(free) >= 12


def test_graduated_fines_escalate_and_fill_the_treasury() -> None:
    society = Society(load_scenario(
        SCENARIOS / "institutions_none.yaml",
        [*SMALL, "schedule=[harvest, regrow, {phase: sanctions, params: {fine: 1, max_multiplier: 8}}]",
         "population.policies=[{policy: greedy, fraction: 1, factor: 2}]", "commons.initial_stock=600"],
    ))
    fines = []
    for _ in range(5):
        society.step()
        events = society.round_events().filter(pl.col("kind") == "fine")
        fines.append(events.filter(pl.col("target") == 0)["impact"].to_list())
    assert fines == [[1.0], [2.0], [4.0], [8.0], [8.0]]
    assert society.slot(Polity).treasury == pytest.approx(30 * (1 + 2 + 4 + 8 + 8))
    assert society.round_row["fine_revenue"] == pytest.approx(30 * 8)


def test_monitoring_limits_what_sanctions_see() -> None:
    base = [*SMALL, "population.policies=[{policy: greedy, fraction: 1, factor: 2}]"]
    unseen = Society(load_scenario(SCENARIOS / "institutions_none.yaml", [*base, "schedule.2.params.probability=0"]))
    unseen.step()
    assert unseen.round_row["violations"] == 30 and unseen.round_row["detected_violations"] == 0
    neighbours = Society(load_scenario(
        SCENARIOS / "institutions_none.yaml", [*base, "schedule.2.params={mode: neighbours, probability: 1}"]
    ))
    neighbours.step()
    np.testing.assert_array_equal(neighbours.state["detected"], neighbours.graph.degrees > 0)


def test_third_parties_have_no_tie_to_the_violator() -> None:
    society = Society(scenario("none", "schedule.3.params.third_party.witnesses=6"))
    edges = set(zip(*map(np.ndarray.tolist, society.graph.edges())))
    acts = 0
    for _ in range(4):
        society.step()
        events = society.round_events().filter(pl.col("phase") == "sanctions", pl.col("kind") == "sanction")
        for punisher, target in zip(events["actor"].to_list(), events["target"].to_list()):
            assert punisher != target and (min(punisher, target), max(punisher, target)) not in edges
            assert society.state["violating"][target]
        acts += events.height
    assert acts > 0


@pytest.mark.parametrize("rule", RULES)
def test_elections_cast_ballots_in_the_form_each_rule_needs(rule: str) -> None:
    society = Society(scenario("none", f"schedule.4.params.rule={rule}", "rounds=1"))
    society.step()
    events = society.round_events()
    candidates = set(events.filter(pl.col("kind") == "candidacy")["actor"].to_list())
    ballots = [json.loads(d) for d in events.filter(pl.col("kind") == "ballot")["detail"]]
    assert len(ballots) == 30
    for ballot in ballots:
        assert len(set(ballot)) == len(ballot) and set(ballot) <= candidates and ballot
        if rule != "approval":
            assert set(ballot) == candidates
    election = json.loads(events.filter(pl.col("kind") == "election")["detail"][0])
    assert election["rule"] == rule and election["winner"] in candidates
    assert society.round_row["leader"] == election["winner"]
    assert sum(election["shares"].values()) == pytest.approx(1.0)


def test_shipped_scenarios_fill_the_contract_columns(tmp_path: Path) -> None:
    columns = {"leader", "ppi", "ppi_cumulative", "incumbency_rate", "turnover", "entrenchment_attempts",
               "entrenchment_successes", "policy_stability", "quota", "fine", "tax"}
    for name in ("none", "charter", "mediated"):
        run = load_run(run_scenario(scenario(name, "rounds=6"), tmp_path / name))
        assert columns <= set(run.rounds.columns)
        kinds = set(run.events["kind"].to_list())
        assert {"candidacy", "campaign", "ballot", "election", "leader_action", "fine"} <= kinds
        if name == "mediated":
            assert "deliberation" in kinds


def test_resumed_run_equals_uninterrupted(tmp_path: Path, monkeypatch) -> None:
    chosen = scenario("mediated", "output.checkpoint_every=3")
    reference = tables(run_scenario(chosen, tmp_path / "whole"))
    original_step = Society.step

    def crash_in_round_7(self: Society) -> None:
        original_step(self)
        if self.round == 7:
            raise KeyboardInterrupt

    monkeypatch.setattr(Society, "step", crash_in_round_7)
    with pytest.raises(RunInterrupted):
        run_scenario(chosen, tmp_path / "broken")
    monkeypatch.undo()
    resume_run(tmp_path / "broken")
    resumed = tables(tmp_path / "broken")
    for name in reference:
        assert_frame_equal(reference[name], resumed[name])


@pytest.mark.parametrize(
    ("override", "field", "message"),
    [
        ("schedule.4.params.rule=range", "schedule[4].params.rule", "plurality"),
        ("schedule.4.params.politicians=[{kind: tyrant}]", "schedule[4].params.politicians[0].kind", "honest"),
        ("schedule.3.params.escalation=0.5", "schedule[3].params.escalation", "greater than or equal to 1"),
        ("schedule.2.params.mode=satellite", "schedule[2].params.mode", "random"),
    ],
)
def test_bad_parameters_name_the_field(override: str, field: str, message: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(SCENARIOS / "institutions_none.yaml", [override])
    problem = caught.value.problems[0]
    assert problem.field == field and message in problem.message


def test_more_politicians_than_citizens_is_a_scenario_error() -> None:
    with pytest.raises(ScenarioError, match="4 politicians exceed population.size 3"):
        Society(scenario("none", "population.size=3", "graph={kind: complete}"))


def test_an_entrencher_at_its_term_limit_polls_as_if_its_lift_took_effect() -> None:
    """The lone politician leads at its term limit the round before an election: once it lifts the limit it
    wins any election, so it neither postpones nor changes the rule, and it is re-elected."""
    settings = ["schedule.4.params.term_limit=1", "schedule.4.params.politicians=[{kind: entrencher}]"]
    society = Society(scenario("none", *settings))
    society.step()  # round 1: the first election; the entrencher, the only candidate, wins its first term
    polity = society.slot(Polity)
    entrencher = int(np.flatnonzero(society.state["politician"] >= 0)[0])
    assert polity.leader == entrencher and polity.consecutive_terms == 1
    polity.next_election = society.round + 1  # the leader decides as in the round before an election
    decision = leader_phase(society).decide(None)
    kinds = [action.action for action in decision.actions]
    assert "lift_term_limit" in kinds
    assert "postpone_election" not in kinds and "change_voting_rule" not in kinds, kinds
    leader_phase(society).apply(decision)
    society.step()  # round 2: the election is held, and the entrencher may stand again
    assert [record.round for record in polity.elections] == [1, 2]
    assert polity.leader == entrencher and polity.consecutive_terms == 2
