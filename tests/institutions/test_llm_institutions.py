"""LLM citizens in institutions against the real vLLM CPU server with SmolLM2: ballots under every voting rule,
capped campaign statements, and an LLM leader whose forbidden actions the charter blocks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

import institutions.leaders
from institutions.ballots import answered_ballots, ballot_decision, ballot_form
from institutions.decisions import LeaderDecision, campaign_decision
from institutions.politicians import POLITICIAN_KINDS
from institutions.polity import Polity
from institutions.voting import RULES
from llm_backend.schemas import parse_answer
from llm_backend.server import ManagedServer
from society import Society, load_run, load_scenario
from society.llm.backend import connect
from society.llm.memory import MEMORY_CLOSE, MEMORY_OPEN, quote

pytestmark = pytest.mark.vllm

SCENARIOS = Path(__file__).parents[2] / "scenarios"
STATEMENT_CHARS = 160


def llm_scenario(server: ManagedServer, name: str, *overrides: str) -> Any:
    server_settings = ["llm.backend=server", f'llm.base_urls=["{server.base_url}"]']
    return load_scenario(SCENARIOS / f"institutions_{name}_llm.yaml", [*server_settings, *overrides])


@pytest.fixture(scope="module")
def every_rule(vllm_server: ManagedServer) -> list[tuple[Society, pl.DataFrame, pl.DataFrame]]:
    """Twelve citizens (seven LLM citizens) holding an election every round, under each voting rule in turn."""
    scenario = llm_scenario(
        vllm_server, "charter", "population.size=12", f"rounds={len(RULES)}", "schedule.5.params.every=1",
        "schedule.5.params.first=1", "schedule.5.params.term_limit=null", "llm.fallback_threshold=1",
    )
    society = Society(scenario)
    rounds = []
    with connect(scenario.llm, None) as connection:
        society.llm.connection = connection
        for rule in RULES:
            society.slot(Polity).rule = rule
            society.step()
            rounds.append((society, society.round_events(), society.llm.round_calls()))
    return rounds


@pytest.mark.parametrize("rule", RULES)
def test_llm_citizens_cast_valid_ballots_under_every_rule(every_rule: list, rule: str) -> None:
    society, events, calls = every_rule[RULES.index(rule)]
    election = json.loads(events.filter(kind="election")["detail"][0])
    assert election["rule"] == rule
    candidates = tuple(sorted(int(c) for c in election["kinds"]))  # the final tally of a runoff holds fewer
    form = ballot_form(rule)
    decision = ballot_decision(form, candidates)
    asked = calls.filter(phase="elections_ballot")
    members = society.llm.members.tolist()
    assert sorted(asked["citizen"].to_list()) == members
    ballots = events.filter(kind="ballot")
    cast = dict(zip(ballots["actor"].to_list(), (json.loads(d) for d in ballots["detail"])))
    answered = 0
    for citizen, answer, fallback in asked.select("citizen", "answer", "fallback").iter_rows():
        ballot = cast[citizen]
        assert len(set(ballot)) == len(ballot) and set(ballot) <= set(candidates)
        if form == "approval":
            assert ballot
        else:
            assert sorted(ballot) == list(candidates), "a ranked ballot is a full ranking"
        parsed = parse_answer(decision, answer)[0]
        assert (parsed is None) == fallback
        if parsed is not None:
            answered += 1
            default = np.full((1, len(candidates)), -1)
            row = answered_ballots([parsed], default if form == "approval" else np.array([ballot]), form)[0]
            assert [c for c in row.tolist() if c >= 0] == ballot
    assert answered > 0, f"no LLM answer under {rule} was a valid ballot"


def test_campaign_statements_are_capped_recorded_and_heard(every_rule: list) -> None:
    written = 0
    for number, (society, events, calls) in enumerate(every_rule, start=1):
        campaign = events.filter(kind="campaign")
        statements = dict(zip(campaign["actor"].to_list(), campaign["detail"].to_list()))
        decision = campaign_decision(STATEMENT_CHARS)
        for citizen, answer, fallback in calls.filter(phase="elections_campaign").select(
                "citizen", "answer", "fallback").iter_rows():
            assert POLITICIAN_KINDS[society.state["politician"][citizen]] == "llm"
            assert len(statements[citizen]) <= STATEMENT_CHARS
            if not fallback:
                written += 1
                assert statements[citizen] == parse_answer(decision, answer)[0].statement
                if number > 1:  # memory holds notes from the second round on
                    ballot_prompts = calls.filter(pl.col("citizen") != citizen, phase="elections_ballot")["prompt"]
                    user = json.loads(ballot_prompts[0])[1]["content"]
                    memory = user.split(MEMORY_OPEN, 1)[1].split(MEMORY_CLOSE)
                    assert len(memory) == 2
                    note = quote(f"Campaign statement of candidate {citizen}: {statements[citizen]}")
                    assert f"Message heard: {note}" in memory[0]
    assert written > 0, "no LLM candidate wrote its own statement"


def test_an_llm_leaders_forbidden_actions_are_blocked_and_recorded(
    vllm_server: ManagedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The leader's schema is narrowed further here to forbidden actions only (at least one), so the small model
    must try one; the charter must block each and record it."""
    forbidden = {"postpone_election", "lift_term_limit", "extend_term_limit", "divert_revenue", "change_voting_rule"}
    narrow = institutions.leaders.leader_schema

    def only_forbidden(*args: Any) -> dict[str, Any]:
        schema = narrow(*args)
        actions = schema["actions"]
        actions["items"]["anyOf"] = [o for o in actions["items"]["anyOf"]
                                     if o["properties"]["action"].get("const") in forbidden]
        actions["minItems"] = 1
        return schema

    monkeypatch.setattr(institutions.leaders, "leader_schema", only_forbidden)
    # the scenario's seed (3) first; the grammar does not always hold minItems, so the model may answer no action
    for seed in (3, 4, 5):
        scenario = llm_scenario(vllm_server, "charter", "rounds=2", "schedule.5.params.first=3", f"seed={seed}")
        society = Society(scenario)
        leader = int(np.flatnonzero(society.state["politician"] == POLITICIAN_KINDS.index("llm"))[0])
        polity = society.slot(Polity)
        with connect(scenario.llm, None) as connection:
            society.llm.connection = connection
            society.step()
            polity.leader, polity.leader_since, polity.consecutive_terms = leader, 2, 1
            society.step()
        call = society.llm.round_calls().filter(phase="leader")
        assert call["citizen"].to_list() == [leader] and not call["fallback"][0], call["error"][0]
        answer = LeaderDecision.model_validate_json(call["answer"][0])
        tried = [a.action for a in answer.actions]
        if tried:
            break
    assert tried and set(tried) <= forbidden
    events = society.round_events()
    attempts = [json.loads(d)["action"] for d in events.filter(kind="leader_action", actor=leader)["detail"]]
    assert attempts == ["set_policy", *tried]
    blocked = [json.loads(d) for d in events.filter(kind="blocked", actor=leader)["detail"]]
    assert [b for b in blocked if b["action"] != "set_policy"] == [{"action": a, "rule": f"forbid:{a}"} for a in tried]
    row = society.round_row
    assert row["ppi"] > 0 and row["diverted"] == 0 and row["entrenchment_successes"] == 0
    assert society.slot(Polity).next_election == 3 and society.slot(Polity).term_limit == 1 and society.slot(Polity).rule == "plurality"


def test_the_shipped_llm_scenario_runs_from_the_command_line(vllm_server: ManagedServer, tmp_path: Path) -> None:
    out = tmp_path / "mediated"
    command = [sys.executable, "-m", "society", "run", str(SCENARIOS / "institutions_mediated_llm.yaml"), "--out",
               str(out), "--quiet", "--set", "rounds=4", "--set", "llm.backend=server",
               "--set", f'llm.base_urls=["{vllm_server.base_url}"]']
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    run = load_run(out)
    kinds = set(run.events["kind"].to_list())
    assert {"candidacy", "campaign", "ballot", "election", "deliberation", "leader_action"} <= kinds
    assert set(run.llm_calls["phase"].to_list()) >= {"harvest", "elections_ballot"}
    assert run.rounds.filter(pl.col("election"))["round"].to_list() == [2, 4]
    assert run.rounds["leader"].drop_nulls().len() == 3
