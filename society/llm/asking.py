"""Asking the model: one batched call per phase, validated answers, a record of every call, the fallback stop."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from llm_backend import facade as backend
from society.llm.prompts import narrowed
from society.phases.decisions import Decision, with_reason
from society.scenario.schema import LLMSettings

if TYPE_CHECKING:
    from llm_backend.facade import Connection, Result

THRESHOLD_MIN_ASKED = 5  # a smaller batch stops the run on fallbacks only when the server did not answer
SURVEY_CALL = "survey:"  # a survey item's call label is this and its id; its fallbacks never stop the run


def is_survey_call(phase: str) -> bool:
    """Whether a call label is a survey item's: recorded in `llm_calls` only, never counted in the rounds table's
    llm_* columns (the world's, which judge the run) nor stopping the run on fallbacks."""
    return phase.startswith(SURVEY_CALL)


CALL_SCHEMA: dict[str, pl.DataType] = {
    "round": pl.Int32,
    "phase": pl.Utf8,
    "citizen": pl.Int64,
    "prompt_hash": pl.Utf8,
    "prompt": pl.Utf8,
    "answer": pl.Utf8,
    "prompt_tokens": pl.Int64,
    "completion_tokens": pl.Int64,
    "latency_s": pl.Float64,
    "cached": pl.Boolean,
    "fallback": pl.Boolean,
    "error": pl.Utf8,
}

Messages = tuple[dict[str, str], dict[str, str]]


class FallbackRateExceeded(RuntimeError):
    """Too many of a phase's LLM answers were missing or invalid; the run stops (and can be resumed).

    Judged per phase and round, over at least `THRESHOLD_MIN_ASKED` citizens; a smaller batch (a leader alone)
    stops the run only when its failures are the server not answering. A survey item's calls never stop it.
    """


def request_seed(run_seed: int, round_number: int, phase: str, citizen: int) -> int:
    """A request's seed, from (run seed, round, phase, citizen)."""
    words = [run_seed, round_number, citizen, *phase.encode()]
    return int(np.random.SeedSequence(words).generate_state(1)[0])


@dataclass(frozen=True)
class Cohorts:
    """How citizens with equal prompts share requests: at most `max_samples` answers sampled per cohort, handed
    to its members by draws from `rng`."""

    max_samples: int
    rng: np.random.Generator

    def plan(self, messages: Sequence[Messages], schemas: Sequence[Mapping[str, Any]]) -> CohortPlan:
        """Group citizens whose messages and schema are equal; draw which sample each member gets."""
        keys = [json.dumps([pair, schema], sort_keys=True) for pair, schema in zip(messages, schemas)]
        numbers: dict[str, int] = {}
        cohort = np.array([numbers.setdefault(key, len(numbers)) for key in keys], dtype=np.int64)
        sizes = np.bincount(cohort, minlength=len(numbers))
        samples = np.minimum(sizes, self.max_samples)
        sample = np.empty(cohort.size, dtype=np.int64)
        members_of = np.split(np.argsort(cohort, kind="stable"), np.cumsum(sizes)[:-1])
        for number, members in enumerate(members_of):  # each sample goes to members in turn, in a seeded order
            sample[members[self.rng.permutation(members.size)]] = np.arange(members.size) % samples[number]
        first_member = np.array([members[0] for members in members_of], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(samples)[:-1]])
        return CohortPlan(cohort, sizes, first_member, samples, offsets[cohort] + sample)


@dataclass(frozen=True)
class CohortPlan:
    """Who shares which request: each citizen's cohort and the request (one per sample) whose answer it gets."""

    cohort: np.ndarray
    sizes: np.ndarray
    first_member: np.ndarray
    per_cohort: np.ndarray
    request_of: np.ndarray

    @property
    def requests(self) -> list[int]:
        """The citizen whose prompt each request sends (a cohort's first member, once per sample)."""
        return np.repeat(self.first_member, self.per_cohort).tolist()

    @property
    def samples(self) -> list[int]:
        """Each request's sample index within its cohort."""
        return np.concatenate([np.arange(n) for n in self.per_cohort]).tolist() if self.per_cohort.size else []

    @property
    def first_draws(self) -> np.ndarray:
        """Which citizens are the first to draw their request's answer (its tokens are counted on them)."""
        first = np.zeros(self.request_of.size, dtype=bool)
        first[np.unique(self.request_of, return_index=True)[1]] = True
        return first

    def spread(self, per_request: list[Any]) -> list[Any]:
        """One entry per citizen: the entry of the request it drew."""
        return [per_request[k] for k in self.request_of.tolist()]


class Asker:
    """Sends a phase's prompts as one batch and parses the answers; keeps the round's call records and counts."""

    def __init__(self, settings: LLMSettings, run_seed: int) -> None:
        self.settings = settings
        self.run_seed = run_seed
        self._calls: list[pl.DataFrame] = []
        self._counts: dict[str, list[int]] = {}
        self._tokens = np.zeros(3, dtype=np.int64)  # prompt, completion, cached answers
        self._sent = 0

    def ask(
        self,
        connection: Connection,
        round_number: int,
        phase: str,
        citizens: np.ndarray,
        prompts: Sequence[tuple[str, str]],
        decision: type[Decision],
        schemas: Sequence[Mapping[str, Any]] | None = None,
        cohorts: Cohorts | None = None,
        model: str | None = None,
    ) -> list[Decision | None]:
        """One decision per citizen (None where the answer failed) for its (system, user) prompt.

        `schemas` narrows the JSON schema per citizen; the answer is still validated against `decision`. With
        `cohorts`, citizens whose prompts and schemas are equal share one request sampled up to
        `cohorts.max_samples` times, and each gets one of its answers by a seeded draw. `model` names the model
        in the call records (when the run seats several). Raises FallbackRateExceeded when too many answers failed.
        """
        reason = self.settings.reason
        answer_type = with_reason(decision, reason.max_chars) if reason.enabled else decision
        schema = backend.json_schema(answer_type)
        sampling = backend.Sampling(
            temperature=self.settings.temperature,
            max_tokens=self.settings.max_tokens + (reason.max_chars // 2 if reason.enabled else 0),
        )
        messages = [({"role": "system", "content": system}, {"role": "user", "content": user})
                    for system, user in prompts]
        narrowing = [schema if schemas is None else narrowed(schema, schemas[k]) for k in range(len(messages))]
        plan = None if cohorts is None else cohorts.plan(messages, narrowing)
        asked = range(len(messages)) if plan is None else plan.requests
        requests = [
            backend.ChatRequest(
                messages=messages[k],
                schema=narrowing[k],
                schema_name=decision.__name__,
                sampling=sampling,
                seed=request_seed(self.run_seed, round_number, phase, int(citizens[k])) if self.settings.seeded
                else None,
                sample_index=None if plan is None else sample,
            )
            for k, sample in zip(asked, plan.samples if plan is not None else [None] * len(messages))
        ]
        results = connection.complete(requests)
        if not is_survey_call(phase):
            self._sent += len(requests)
        parsed = [backend.parse_answer(answer_type, r.text)[0] if r.ok else None for r in results]
        if plan is None:
            self._record(round_number, phase, citizens, messages, results, parsed, None, model)
            return parsed
        results, decisions = plan.spread(results), plan.spread(parsed)
        self._record(round_number, phase, citizens, messages, results, decisions, plan, model)
        return decisions

    def _record(
        self,
        round_number: int,
        phase: str,
        citizens: np.ndarray,
        messages: list[Messages],
        results: list[Result],
        decisions: list[Decision | None],
        plan: CohortPlan | None = None,
        model: str | None = None,
    ) -> None:
        """Keep the batch's call records and (but a survey's) counts; stop the run when too many answers failed (not
        a survey's).

        With cohorts, each member's row holds its cohort's prompt and the answer it drew; a request's tokens
        are counted on the first member that drew it, so the columns still add up to what was spent.
        """
        fallback = np.array([d is None for d in decisions])
        prompts = [json.dumps(pair, ensure_ascii=False) for pair in messages]
        spent = np.ones(citizens.size, dtype=bool) if plan is None else plan.first_draws
        frame = pl.DataFrame(
            {
                "round": np.full(citizens.size, round_number, dtype=np.int32),
                "phase": [phase] * citizens.size,
                "citizen": citizens.astype(np.int64),
                "prompt_hash": [hashlib.sha256(p.encode()).hexdigest()[:16] for p in prompts],
                "prompt": prompts,
                "answer": [r.text for r in results],
                "prompt_tokens": [r.prompt_tokens if first else 0 for r, first in zip(results, spent)],
                "completion_tokens": [r.completion_tokens if first else 0 for r, first in zip(results, spent)],
                "latency_s": [r.latency_s for r in results],
                "cached": [r.cached for r in results],
                "fallback": fallback,
                "error": [r.error for r in results],
            },
            schema=CALL_SCHEMA,
        )
        if plan is not None:
            frame = frame.with_columns(
                cohort=pl.Series(plan.cohort, dtype=pl.Int64),
                cohort_size=pl.Series(plan.sizes[plan.cohort], dtype=pl.Int64),
                cohort_sample=pl.Series(np.asarray(plan.samples, dtype=np.int64)[plan.request_of], dtype=pl.Int64),
            )
        if model is not None:
            frame = frame.with_columns(model=pl.lit(model, pl.Utf8))
        self._calls.append(frame)
        if is_survey_call(phase):
            return
        counts = self._counts.setdefault(phase, [0, 0])
        counts[0] += citizens.size
        counts[1] += int(fallback.sum())
        self._tokens += [frame["prompt_tokens"].sum(), frame["completion_tokens"].sum(),
                         sum(r.cached for r, first in zip(results, spent) if first)]
        share = fallback.mean()
        threshold = self.settings.fallback_threshold
        unanswered = all(r.error_kind in backend.TRANSPORT_ERRORS for r, d in zip(results, decisions) if d is None)
        if share > threshold and (citizens.size >= THRESHOLD_MIN_ASKED or unanswered):
            first = next((r.error or f"invalid answer {r.text!r}" for r, d in zip(results, decisions) if d is None), "")
            raise FallbackRateExceeded(
                f"round {round_number}, phase {phase!r}: {int(fallback.sum())} of {citizens.size} LLM answers "
                f"were missing or invalid ({share:.0%} > llm.fallback_threshold {threshold:g}); "
                f"first problem: {first}"
            )

    def begin_round(self) -> None:
        """Forget the previous round's call records and counts."""
        self._calls = []
        self._counts = {}
        self._tokens[:] = 0
        self._sent = 0

    def round_metrics(self) -> dict[str, Any]:
        """This round's LLM columns of the `rounds` table: requests sent (one per citizen asked, or per cohort
        sample), fallbacks per phase, tokens; a survey's calls are left out (they are in `llm_calls`)."""
        row: dict[str, Any] = {
            "llm_requests": self._sent,
            "llm_fallbacks": sum(failed for _, failed in self._counts.values()),
            "llm_prompt_tokens": int(self._tokens[0]),
            "llm_completion_tokens": int(self._tokens[1]),
            "llm_cached": int(self._tokens[2]),
        }
        for phase, (asked, failed) in self._counts.items():
            row[f"llm_fallback_rate_{phase}"] = failed / asked if asked else 0.0
        return row

    def round_calls(self) -> pl.DataFrame:
        """Every call of the round just played, one row per citizen asked."""
        return pl.concat(self._calls, how="diagonal") if self._calls else pl.DataFrame(schema=CALL_SCHEMA)
