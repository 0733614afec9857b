"""LLM citizens in the public goods game: asked for contributions in one batch, with the scenario's named fallback."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from llm_backend.client import ChatRequest, Result
from society import Society, load_scenario

SCENARIO = Path(__file__).parents[2] / "scenarios" / "norms_public_goods.yaml"
MIXED = ["population.policies=[{policy: llm, fraction: 0.5}, {policy: conditional, fraction: 0.5}]",
         "rounds=2"]


class Contributions:
    """A scripted model connection: every citizen answers `amount` (None: an invalid answer)."""

    model = "scripted"

    def __init__(self, amount: float | None) -> None:
        self.amount = amount
        self.batches: list[list[ChatRequest]] = []

    def complete(self, requests: Sequence[ChatRequest]) -> list[Result]:
        self.batches.append(list(requests))
        text = json.dumps({"amount": self.amount}) if self.amount is not None else "no idea"
        return [Result(index=i, ok=True, text=text, finish_reason="stop", prompt_tokens=1, completion_tokens=1,
                       latency_s=0.0, attempts=1, cached=False, sample_index=0, key=str(i))
                for i in range(len(requests))]


def test_llm_citizens_contribute_what_they_answer_in_one_batch() -> None:
    society = Society(load_scenario(SCENARIO, MIXED))
    society.llm.connection = connection = Contributions(12.0)
    society.step()
    members = society.llm.members
    assert len(connection.batches) == 1 and len(connection.batches[0]) == members.size == 12
    assert np.all(society.state["contribution"][members] == 12.0)
    society.step()
    second = connection.batches[1][0].messages[1]["content"]
    assert "Last round you gave 12.0" in second and "20 tokens" in second


def failing(fallback: str | None) -> tuple[Society, Contributions]:
    """The mixed game with the fallback stop lifted and `fallback` named (None: the default)."""
    named = [] if fallback is None else [f"schedule.0.params.fallback={fallback}"]
    society = Society(load_scenario(SCENARIO, [*MIXED, "llm.fallback_threshold=1.0", *named]))
    society.llm.connection = connection = Contributions(None)
    return society, connection


@pytest.mark.parametrize("fallback", [None, "nothing", "repeat_last"])
def test_an_invalid_first_answer_gives_nothing_never_a_share_of_the_endowment(fallback: str | None) -> None:
    society, _ = failing(fallback)
    society.step()
    members = society.llm.members
    assert np.all(society.state["contribution"][members] == 0.0)
    assert society.round_row["llm_fallback_rate_public_goods"] == 1.0
    assert society.phases[0].params.fallback == (fallback or "nothing")


@pytest.mark.parametrize(("fallback", "given"), [("nothing", 0.0), ("repeat_last", 12.0)])
def test_a_later_invalid_answer_gives_what_the_named_fallback_says(fallback: str, given: float) -> None:
    society, connection = failing(fallback)
    connection.amount = 12.0
    society.step()
    connection.amount = None
    society.step()
    members = society.llm.members
    assert np.all(society.state["contribution"][members] == given)
    flagged = society.round_citizens()["fallback"].to_numpy()
    assert np.array_equal(np.flatnonzero(flagged), members)
    calls = society.llm.round_calls()
    assert calls.height == members.size and calls["fallback"].all()


def test_llm_citizens_remember_what_they_gave_and_what_punishment_cost_them() -> None:
    society = Society(load_scenario(SCENARIO, MIXED))
    society.llm.connection = connection = Contributions(12.0)
    society.step()
    state, members = society.state, society.llm.members
    expected = {}
    for citizen in members:
        others = state["others_contribution"][citizen]
        line = f"Round 1: you gave 12.0; the others in your group gave {others:.1f} on average."
        if state["punish_received"][citizen] > 0:
            line += f" Neighbours' punishment cost you {state['punish_received'][citizen]:.1f}."
        if state["punish_paid"][citizen] > 0:
            line += f" You spent {state['punish_paid'][citizen]:.1f} punishing."
        expected[int(citizen)] = line
    assert any("punish" in line for line in expected.values())  # the stage played, so someone paid or suffered
    society.step()
    for request, citizen in zip(connection.batches[1], members):
        prompt = request.messages[1]["content"]
        assert f"<memory>\n{expected[int(citizen)]}\n</memory>" in prompt
        assert "you asked" not in prompt
