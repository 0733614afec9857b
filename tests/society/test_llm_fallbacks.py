"""The fallback threshold: when failed LLM answers stop a run (a scripted connection, since guided decoding
never lets the real server answer invalid JSON on demand)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from llm_backend.client import ChatRequest, Result
from society import Society, load_scenario
from society.llm.asking import FallbackRateExceeded
from society.phases.decisions import HarvestDecision

SCENARIO = Path(__file__).parents[2] / "scenarios" / "govsim_fishery_llm.yaml"


class Scripted:
    """Answers each request with the next of `answers`: JSON text, or an error kind for a failure."""

    model = "scripted"

    def __init__(self, answers: list[str]) -> None:
        self.answers = answers

    def complete(self, requests: Sequence[ChatRequest]) -> list[Result]:
        results = []
        for index, answer in enumerate(self.answers[: len(requests)]):
            failed = answer in ("connection", "timeout")
            results.append(Result(index=index, ok=not failed, text=None if failed else answer, finish_reason="stop",
                                  prompt_tokens=10, completion_tokens=3, latency_s=0.1, attempts=1, cached=False,
                                  sample_index=0, key=str(index), error="refused" if failed else None,
                                  error_kind=answer if failed else None))
        return results


def ask(answers: list[str]) -> list[HarvestDecision | None]:
    society = Society(load_scenario(SCENARIO, ["population.size=6"]))
    society.llm.connection = Scripted(answers)
    citizens = society.llm.members[: len(answers)]
    return society.llm.ask("harvest", citizens, ["How much?"] * len(answers), HarvestDecision)


GOOD, BAD = '{"amount": 3, "reason": "fine"}', '{"amount": -1}'


def test_valid_answers_parse_and_invalid_ones_fall_back() -> None:
    decisions = ask([GOOD, BAD, GOOD])
    assert decisions[0].amount == 3 and decisions[1] is None and decisions[2].amount == 3


def test_half_failed_is_not_over_the_threshold() -> None:
    assert sum(d is None for d in ask([GOOD, GOOD, GOOD, BAD, BAD, BAD])) == 3


def test_most_failed_stops_the_run() -> None:
    with pytest.raises(FallbackRateExceeded, match=r"4 of 6 LLM answers .* first problem: invalid answer"):
        ask([GOOD, BAD, BAD, GOOD, BAD, BAD])


def test_one_invalid_answer_of_a_lone_citizen_is_only_a_fallback() -> None:
    assert ask([BAD]) == [None]


def test_a_lone_citizen_whose_server_is_down_stops_the_run() -> None:
    with pytest.raises(FallbackRateExceeded, match="refused"):
        ask(["connection"])


def test_fallbacks_are_recorded_per_phase() -> None:
    society = Society(load_scenario(SCENARIO, ["population.size=6"]))
    society.llm.connection = Scripted([GOOD, BAD, GOOD])
    society.llm.ask("harvest", society.llm.members[:3], ["q"] * 3, HarvestDecision)
    calls = society.llm.round_calls()
    assert calls["fallback"].to_list() == [False, True, False]
    assert society.llm.round_metrics()["llm_fallback_rate_harvest"] == pytest.approx(1 / 3)
    assert np.array_equal(calls["citizen"].to_numpy(), society.llm.members[:3])


def test_citizens_of_an_empty_patch_are_not_asked() -> None:
    society = Society(load_scenario(SCENARIO, ["population.size=6"]))
    scripted = Scripted([GOOD] * 6)
    asked: list[int] = []
    original = scripted.complete
    scripted.complete = lambda requests: asked.append(len(requests)) or original(requests)  # type: ignore[method-assign]
    society.llm.connection = scripted
    society.commons.stock[:] = 0.0
    harvest = society.phases[0]
    _, requests = harvest.decide(harvest.observe())
    assert asked == [] and not requests.any()
