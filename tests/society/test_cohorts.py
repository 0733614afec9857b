"""Cohorts: citizens whose coarsened prompts are equal share one request; members draw its samples, seeded."""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from llm_backend.cache import ResponseCache
from llm_backend.client import lookup, record, resolve_items
from llm_backend.facade import ChatRequest, Result
from society import Society, load_run, load_scenario
from society.core import runner
from society.core.runner import RunInterrupted, resume_run, run_scenario
from society.llm.asking import Cohorts
from society.llm.prompts import coarsened
from society.rundir.layout import LLM_CACHE
from tests.llm_recording import record_llm_run
from tests.shipped_tables import SCENARIOS, SchemaAnswers


class SampledAnswers:
    """A harvest amount per request, drawn from its messages and its sample index; counts requests."""

    model = "sampled"

    def __init__(self) -> None:
        self.requests = 0

    def complete(self, requests: Sequence[ChatRequest]) -> list[Result]:
        self.requests += len(requests)
        results = []
        for k, request in enumerate(requests):
            text = json.dumps([dict(m) for m in request.messages], sort_keys=True) + f"#{request.sample_index}"
            rng = random.Random(hashlib.sha256(text.encode()).hexdigest())
            answer = json.dumps({"amount": round(rng.uniform(0, 20), 1)})
            results.append(Result(index=k, ok=True, text=answer, finish_reason="stop", prompt_tokens=100,
                                  completion_tokens=5, latency_s=0.0, attempts=1, cached=False,
                                  sample_index=request.sample_index or 0, key=str(k)))
        return results


def village(cohorts: bool, seed: int = 7, rounds: int = 3) -> tuple[Society, SampledAnswers]:
    society = Society(load_scenario(SCENARIOS / "village_llm.yaml", [
        "population.size=150", f"rounds={rounds}", f"seed={seed}", "commons.on_collapse=continue",
        f"llm.cohorts.enabled={str(cohorts).lower()}", "llm.cohorts.digits=1", "llm.cohorts.max_samples=4",
        "population.policies.0.persona={roles: {woodcutter: 1.0}}", "schedule=[harvest, regrow]",
    ]))
    connection = SampledAnswers()
    society.llm.connection = connection
    return society, connection


def harvest_calls(society: Society) -> pl.DataFrame:
    return society.llm.round_calls().filter(pl.col("phase") == "harvest")


def test_coarsening_drops_the_citizens_number_and_rounds_decimals_keeping_their_format() -> None:
    text = "You are citizen 1234, a fisher.\nRound 3 of 12: citizen 57 took 153.27 of 1000.5; you 3.14159; 20.0."
    assert coarsened(text, 2) == (
        "You are a fisher.\nRound 3 of 12: citizen 57 took 150.00 of 1000.0; you 3.10000; 20.0."
    )
    assert coarsened("0.0451 and 99.96", 2) == "0.0450 and 100.00"


def test_equal_keys_share_a_request_and_samples_go_round_in_a_seeded_order() -> None:
    a = ({"role": "system", "content": "rules"}, {"role": "user", "content": "A"})
    b = ({"role": "system", "content": "rules"}, {"role": "user", "content": "B"})
    messages, schemas = [a, b, a, a, a, a, b], [{}] * 7
    plan = Cohorts(3, np.random.default_rng(0)).plan(messages, schemas)
    np.testing.assert_array_equal(plan.cohort, [0, 1, 0, 0, 0, 0, 1])
    assert plan.requests == [0, 0, 0, 1, 1] and plan.samples == [0, 1, 2, 0, 1]
    drawn = plan.request_of[plan.cohort == 0]
    assert sorted(np.bincount(drawn, minlength=3).tolist()) == [1, 2, 2]  # five members over three samples, in turn
    again = Cohorts(3, np.random.default_rng(0)).plan(messages, schemas)
    np.testing.assert_array_equal(plan.request_of, again.request_of)
    narrowed = Cohorts(3, np.random.default_rng(0)).plan(messages, [{}, {}, {"x": 1}, {}, {}, {}, {}])
    assert narrowed.cohort[2] != narrowed.cohort[0]  # a different schema is a different request


def test_a_cohort_run_sends_fewer_requests_and_each_decision_is_traceable() -> None:
    society, connection = village(cohorts=True)
    society.step()
    calls = harvest_calls(society)
    assert calls.height == society.llm.members.size
    cohorts = calls.group_by("cohort").agg(pl.col("prompt").n_unique(), pl.len(), pl.col("cohort_size").first(),
                                            pl.col("cohort_sample").max())
    assert (cohorts["prompt"] == 1).all() and (cohorts["len"] == cohorts["cohort_size"]).all()
    assert calls["prompt"].n_unique() == cohorts.height  # different prompts never share a request
    assert cohorts.height < calls.height  # some citizens shared
    assert connection.requests == int(np.minimum(cohorts["len"].to_numpy(), 4).sum())  # up to 4 samples a cohort
    assert "You are citizen" not in calls["prompt"][0]
    spent = calls["prompt_tokens"].sum()
    assert spent == 100 * int(np.minimum(cohorts["len"].to_numpy(), 4).sum())  # tokens counted once per request


def test_a_cohort_run_is_reproducible_and_keeps_its_spread() -> None:
    first, _ = village(cohorts=True)
    second, _ = village(cohorts=True)
    for society in (first, second):
        society.step()
    assert harvest_calls(first).equals(harvest_calls(second))
    big = harvest_calls(first).filter(pl.col("cohort_size") >= 4)
    assert big.height and big.group_by("cohort").agg(pl.col("answer").n_unique())["answer"].max() > 1


def test_without_cohorts_every_citizen_is_its_own_request() -> None:
    society, connection = village(cohorts=False)
    society.step()
    calls = harvest_calls(society)
    assert "cohort" not in calls.columns and calls["prompt"].n_unique() == calls.height
    assert "You are citizen" in calls["prompt"][0]


def test_a_recorded_cohort_run_replays_exactly_from_its_cache(tmp_path: Path) -> None:
    """Every cohort request (each of its samples) is found again in the cache, and members draw the same ones."""
    scenario = load_scenario(SCENARIOS / "village_llm.yaml", [
        "population.size=60", "rounds=3", "commons.on_collapse=continue", "llm.cohorts.enabled=true",
        "llm.cohorts.digits=1", "llm.cohorts.max_samples=3", "llm.activation.probability=0.5",
        "population.policies.0.persona={roles: {woodcutter: 1.0}}",
    ])
    recorded = record_llm_run(scenario, tmp_path / "recorded")
    replayed = run_scenario(scenario, tmp_path / "replayed", replay=recorded)
    first, again = load_run(recorded), load_run(replayed)
    volatile = ["latency_s", "cached"]
    assert first.llm_calls.height and (first.llm_calls["cohort_size"] > 1).any()
    assert_frame_equal(first.llm_calls.drop(volatile), again.llm_calls.drop(volatile))
    assert again.llm_calls["cached"].all()
    assert_frame_equal(first.rounds.drop("llm_cached"), again.rounds.drop("llm_cached"))  # a replay is all cached
    for table in ("citizens", "events"):
        assert_frame_equal(getattr(first, table), getattr(again, table))


def test_llm_requests_counts_the_requests_sent() -> None:
    society, connection = village(cohorts=True)
    society.step()
    cohorts = harvest_calls(society)["cohort"].n_unique()
    assert society.round_row["llm_requests"] == connection.requests >= cohorts
    alone, connection = village(cohorts=False)
    alone.step()
    assert alone.round_row["llm_requests"] == connection.requests == alone.llm.members.size > cohorts


class GreedyThenFirstPlace:
    """Every third prompt asks for the whole patch, the rest for a little; every punisher punishes its first."""

    model = "places"

    def __init__(self) -> None:
        self.requests: list[ChatRequest] = []

    def complete(self, requests: Sequence[ChatRequest]) -> list[Result]:
        self.requests += requests
        results = []
        for k, request in enumerate(requests):
            if "punish" in request.schema["properties"]:
                answer = {"punish": [1]}
            else:
                greedy = int(hashlib.sha256(request.messages[1]["content"].encode()).hexdigest(), 16) % 3 == 0
                answer = {"amount": 5000 if greedy else 1}
            results.append(Result(index=k, ok=True, text=json.dumps(answer), finish_reason="stop", prompt_tokens=1,
                                  completion_tokens=1, latency_s=0.0, attempts=1, cached=False,
                                  sample_index=request.sample_index or 0, key=str(k)))
        return results


def test_under_cohorts_punishers_name_offenders_by_place_and_the_first_place_is_the_worst() -> None:
    society = Society(load_scenario(SCENARIOS / "village_llm.yaml", [
        "population.size=120", "rounds=2", "llm.cohorts.enabled=true", "llm.fallback_threshold=1",
        "schedule=[harvest, {phase: punish, params: {threshold: 1.5, max_targets: 3}}]",
    ]))
    connection = GreedyThenFirstPlace()
    society.llm.connection = connection
    society.step()
    punish = [r for r in connection.requests if "punish" in r.schema["properties"]]
    assert punish and all("- neighbour 1 took" in r.messages[1]["content"] for r in punish)
    assert not any("- citizen" in r.messages[1]["content"] for r in punish)
    assert all(r.schema["properties"]["punish"]["items"]["enum"][0] == 1 for r in punish)
    events = society.round_events().filter(pl.col("kind") == "punish")
    state, graph = society.state, society.graph
    excess = state["take"] - 1.5 * state["fair_share"]
    assert events.height
    for actor, target in zip(events["actor"].to_list(), events["target"].to_list()):
        neighbours = graph.indices[graph.indptr[actor]:graph.indptr[actor + 1]]
        assert target in neighbours.tolist() and excess[target] == excess[neighbours].max()


class CachedModel:
    """A model behind the client's own cache layer (`lookup`, then `record`): only requests the cache does not hold
    reach the model, each answered from its schema, its messages and its sample index, and cached as it is answered.

    `sent` and `found` collect the cache keys sent to the model and those found in the cache. With `stop_at`, the
    batch whose first prompt contains it is stopped (Ctrl-C) after half of its requests were answered and cached
    (the real client records a batch as it ends; recording each request as it is answered is the harder case for
    a resume, which then finds part of a phase in the cache).
    """

    model = "cached-schema-answers"

    def __init__(self, cache: ResponseCache, sent: list[str], found: list[str], stop_at: str | None = None) -> None:
        self.cache, self.sent, self.found, self.stop_at = cache, sent, found, stop_at

    def complete(self, requests: Sequence[ChatRequest]) -> list[Result]:
        items = resolve_items(requests, self.model)
        results, pending = lookup(items, self.cache)
        self.found.extend(items[index].key for index in results)
        stopping = self.stop_at is not None and self.stop_at in requests[0].messages[-1]["content"]
        for number, group in enumerate(pending):
            if stopping and number == len(pending) // 2:
                raise KeyboardInterrupt
            for item in group:
                self.sent.append(item.key)
                marked = replace(item.request, messages=[*item.request.messages, {"role": "user",
                                                                                   "content": f"#{item.sample_index}"}])
                answer = SchemaAnswers().complete([marked])[0]
                results[item.index] = replace(answer, index=item.index, key=item.key, sample_index=item.sample_index)
            record(self.cache, group, {item.index: results[item.index] for item in group})
        return [results[index] for index in range(len(items))]


def cached_model(sent: list[str], found: list[str], stop_at: str | None = None) -> Any:
    """A stand-in for `runner.connect`: the run's response cache in front of a `CachedModel`."""

    @contextlib.contextmanager
    def connect(settings: Any, cache_path: Path | None = None, model: str | None = None,
                log_path: Path | None = None) -> Iterator[CachedModel]:
        assert cache_path is not None
        with ResponseCache(cache_path, "record") as cache:
            yield CachedModel(cache, sent, found, stop_at)

    return connect


def cached_keys(run: Path) -> set[str]:
    """The keys of every answer in a run's response cache."""
    with contextlib.closing(sqlite3.connect(run / LLM_CACHE)) as connection:
        return {key for (key,) in connection.execute("SELECT key FROM answers")}


def test_a_cohort_run_stopped_mid_phase_resumes_asking_no_cached_request_again(tmp_path: Path) -> None:
    """Stopped in round 3's harvest after half its cohorts were answered and cached, the run resumes from its round
    2 checkpoint: it finds every answer it had in the cache, sends the model only what it never answered, and ends
    with the tables of a run never stopped."""
    scenario = load_scenario(SCENARIOS / "village_llm.yaml", [
        "population.size=60", "rounds=5", "commons.on_collapse=continue", "llm.cohorts.enabled=true",
        "llm.cohorts.digits=1", "llm.cohorts.max_samples=3", "llm.activation.probability=0.5",
        "population.policies.0.persona={roles: {woodcutter: 1.0}}",
    ])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runner, "connect", cached_model([], []))
        whole = run_scenario(scenario, tmp_path / "whole")
        sent_before: list[str] = []
        patch.setattr(runner, "connect", cached_model(sent_before, [], stop_at="Round 3 of 5. The"))
        with pytest.raises(RunInterrupted) as stopped:
            run_scenario(scenario, tmp_path / "stopped")
        cut = stopped.value.run_dir
        cached = cached_keys(cut)
        assert len(cached) == len(sent_before)  # every request answered before the stop was cached
        sent, found = [], []
        patch.setattr(runner, "connect", cached_model(sent, found))
        resumed = resume_run(cut)
    assert load_run(resumed).manifest["status"] == "completed"
    assert not set(sent) & cached  # nothing the cache held was asked again
    third_round_cached = set(found) & cached
    assert third_round_cached  # round 3 was played again, its cached answers found
    assert len(sent) == len(set(sent))
    first, again = load_run(whole), load_run(resumed)
    assert (first.llm_calls["cohort_size"] > 1).any()
    assert (again.llm_calls.filter(pl.col("round") == 3)["cached"]).any()
    volatile = ["latency_s", "cached"]
    assert_frame_equal(first.llm_calls.drop(volatile), again.llm_calls.drop(volatile))
    assert_frame_equal(first.rounds.drop("llm_cached"), again.rounds.drop("llm_cached"))
    for table in ("citizens", "events"):
        assert_frame_equal(getattr(first, table), getattr(again, table))
