"""Recording an LLM run without a model: `SchemaAnswers` answers, its answers go into the run's response cache.

The run folder it writes can be replayed (`society run SCENARIO --replay RUN`) like one recorded from a server.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from llm_backend.cache import CachedAnswer, ResponseCache
from llm_backend.client import ChatRequest, Result, resolve_items
from society.core import runner
from society.scenario.schema import Scenario
from tests.shipped_tables import SchemaAnswers


class RecordingSchemaAnswers:
    """`SchemaAnswers` behind a response cache in record mode, keyed as a server connection keys them."""

    model = SchemaAnswers.model

    def __init__(self, cache: ResponseCache) -> None:
        self.cache = cache

    def complete(self, requests: Sequence[ChatRequest]) -> list[Result]:
        items = resolve_items(requests, self.model)
        results = [replace(result, key=item.key, sample_index=item.sample_index)
                   for item, result in zip(items, SchemaAnswers().complete(requests), strict=True)]
        self.cache.put_many(
            (item.key, item.payload, CachedAnswer(r.text or "", r.finish_reason, r.prompt_tokens,
                                                  r.completion_tokens, r.latency_s))
            for item, r in zip(items, results, strict=True)
        )
        return results


@contextlib.contextmanager
def _recording(settings: Any, cache_path: Path | None = None, model: str | None = None,
               log_path: Path | None = None) -> Iterator[RecordingSchemaAnswers]:
    assert cache_path is not None
    with ResponseCache(cache_path, "record") as cache:
        yield RecordingSchemaAnswers(cache)


def record_llm_run(scenario: Scenario, out: Path) -> Path:
    """Play an LLM scenario into `out`, answered by `SchemaAnswers` and recorded in its response cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runner, "connect", _recording)
        return runner.run_scenario(scenario, out)
