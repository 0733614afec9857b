"""Real vLLM CPU server with SmolLM2: structured batches, accounting, crash and restart."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from llm_backend.client import (
    BatchClient,
    BatchSummary,
    ChatRequest,
    ClientConfig,
    Result,
    Sampling,
)
from llm_backend.recovery import TRANSPORT_ERRORS, complete_batch_with_recovery
from llm_backend.schemas import json_schema, parse_answer
from llm_backend.server import ManagedServer

pytestmark = pytest.mark.vllm


class Decision(BaseModel):
    """A tiny structured answer."""

    action: Literal["fish", "rest"]
    amount: int = Field(ge=0, le=10)


def decision_requests(count: int) -> list[ChatRequest]:
    """Return ``count`` different JSON-schema requests."""
    schema = json_schema(Decision)
    return [
        ChatRequest(
            messages=[
                {"role": "system", "content": f"You are fisher number {i} in a small village."},
                {"role": "user", "content": f"The lake holds {40 + 7 * i} fish. Do you fish "
                                            "or rest, and how many fish (0-10) do you take? "
                                            "Answer in JSON."},
            ],
            schema=schema, schema_name="decision", sampling=Sampling(max_tokens=48))
        for i in range(count)
    ]


def client_config(server: ManagedServer, max_retries: int = 3,
                  backoff_base_s: float = 0.5) -> ClientConfig:
    """Return a client config for the managed server."""
    return ClientConfig(base_urls=(server.base_url,), model=server.model, max_concurrency=16,
                        request_timeout_s=120.0, max_retries=max_retries,
                        backoff_base_s=backoff_base_s)


def test_structured_batch_parses_and_counts_tokens(vllm_server: ManagedServer) -> None:
    # Two extra copies of request 0: the three identical requests go out once with n=3.
    requests = decision_requests(14) + decision_requests(1) * 2
    results = asyncio.run(_complete(client_config(vllm_server), requests))
    failures = [r.error for r in results if not r.ok]
    assert not failures, failures
    parsed = [parse_answer(Decision, r.text) for r in results]
    assert all(ok for _, ok in parsed), [r.text for r in results]
    assert [r.sample_index for r in results[14:]] == [1, 2]  # 0 is request 0 (identical)
    assert all(r.prompt_tokens > 0 and r.completion_tokens > 0 for r in results)
    summary = BatchSummary.of(results)
    assert summary.ok == 16 and summary.mean_latency_s > 0


def test_killed_server_gives_failure_records_then_restart(vllm_server: ManagedServer) -> None:
    config = client_config(vllm_server, max_retries=1, backoff_base_s=0.2)
    port, pid = vllm_server.port, vllm_server.pid
    assert pid is not None

    async def kill_mid_batch() -> list[Result]:
        async with BatchClient(config) as client:
            batch = asyncio.ensure_future(client.complete(decision_requests(48)))  # three waves of 16: seconds
            await asyncio.sleep(0.5)
            os.kill(pid, signal.SIGKILL)
            return await batch

    results = asyncio.run(kill_mid_batch())
    assert len(results) == 48
    failed = [r for r in results if not r.ok]
    assert failed, "the kill came too late: every request had finished"
    assert all(r.error_kind in TRANSPORT_ERRORS for r in failed), [r.error for r in failed]
    assert not vllm_server.is_alive()

    # Recovery notices the dead server, restarts it on the same port and resends.
    again = complete_batch_with_recovery(decision_requests(16), config, vllm_server)
    assert vllm_server.is_alive() and vllm_server.healthy() and vllm_server.port == port
    print(f"\nvLLM restarted in {vllm_server.start_seconds:.1f}s")
    assert all(r.ok for r in again), [r.error for r in again if not r.ok]
    assert all(parse_answer(Decision, r.text)[1] for r in again)


async def _complete(config: ClientConfig, requests: list[ChatRequest]) -> list[Result]:
    """Send one batch with a fresh client."""
    async with BatchClient(config) as client:
        return await client.complete(requests)
