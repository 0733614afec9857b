"""Client transport behaviour against a local HTTP server: retries, isolation, dedupe, cache."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import web

from llm_backend.cache import CacheMiss, ResponseCache
from llm_backend.client import (
    BatchClient,
    BatchSummary,
    ChatRequest,
    ClientConfig,
    Sampling,
    complete_batch,
)
from llm_backend.recovery import complete_batch_with_recovery

if TYPE_CHECKING:
    from tests.llm_backend.conftest import FakeOpenAI

Factory = Callable[..., "FakeOpenAI"]


def ask(text: str, **kwargs: Any) -> ChatRequest:
    """Return a one-message request."""
    return ChatRequest(messages=[{"role": "user", "content": text}], **kwargs)


def config(*urls: str, **kwargs: Any) -> ClientConfig:
    """Return a fast-retrying client config for ``urls``."""
    options: dict[str, Any] = {"model": "m", "max_retries": 2, "backoff_base_s": 0.01,
                               "backoff_max_s": 0.05, "request_timeout_s": 5.0}
    options.update(kwargs)
    return ClientConfig(base_urls=urls, **options)


def dead_url() -> str:
    """Return a base URL on a localhost port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_503_then_200_is_retried(fake_server: Factory) -> None:
    server = fake_server(lambda body, call: web.Response(status=503) if call == 1 else None)
    [result] = complete_batch([ask("hi")], config(server.base_url))
    assert result.ok and result.attempts == 2
    assert json.loads(result.text or "")["echo"] == "hi"
    assert result.prompt_tokens == 11 and result.completion_tokens == 5
    assert result.latency_s > 0


def test_persistent_500_gives_failure_record(fake_server: Factory) -> None:
    server = fake_server(lambda body, call: web.Response(status=500, text="boom"))
    [result] = complete_batch([ask("hi")], config(server.base_url, max_retries=2))
    assert not result.ok and result.error_kind == "http" and result.attempts == 3
    assert "HTTP 500" in (result.error or "") and "boom" in (result.error or "")
    assert len(server.bodies) == 3


def test_400_is_not_retried(fake_server: Factory) -> None:
    server = fake_server(lambda body, call: web.Response(status=400, text="bad schema"))
    [result] = complete_batch([ask("hi")], config(server.base_url))
    assert not result.ok and result.error_kind == "http" and result.attempts == 1


def test_timeout_then_success(fake_server: Factory) -> None:
    async def slow_first(body: dict[str, Any], call: int) -> None:
        if call == 1:
            await asyncio.sleep(2.0)

    server = fake_server(slow_first)
    [result] = complete_batch([ask("hi")], config(server.base_url, request_timeout_s=0.5))
    assert result.ok and result.attempts == 2


def test_always_slow_gives_timeout_record(fake_server: Factory) -> None:
    async def slow(body: dict[str, Any], call: int) -> None:
        await asyncio.sleep(2.0)

    server = fake_server(slow)
    [result] = complete_batch([ask("hi")], config(server.base_url, request_timeout_s=0.3,
                                                  max_retries=1))
    assert not result.ok and result.error_kind == "timeout" and result.attempts == 2


def test_dead_port_gives_connection_records_not_exceptions() -> None:
    results = complete_batch([ask("a"), ask("b")], config(dead_url()))
    assert [r.ok for r in results] == [False, False]
    assert {r.error_kind for r in results} == {"connection"}
    assert all(r.attempts == 3 for r in results)


def test_failures_are_isolated_per_request(fake_server: Factory) -> None:
    def fail_bad(body: dict[str, Any], call: int) -> web.Response | None:
        return web.Response(status=400) if body["messages"][-1]["content"] == "bad" else None

    server = fake_server(fail_bad)
    results = complete_batch([ask("ok1"), ask("bad"), ask("ok2")], config(server.base_url))
    assert [r.ok for r in results] == [True, False, True]
    assert [r.index for r in results] == [0, 1, 2]
    assert json.loads(results[2].text or "")["echo"] == "ok2"


def test_identical_requests_sent_once_with_n(fake_server: Factory) -> None:
    server = fake_server()
    results = complete_batch([ask("same"), ask("other"), ask("same"), ask("same")],
                             config(server.base_url))
    assert sorted(b["n"] for b in server.bodies) == [1, 3]
    same = [results[i] for i in (0, 2, 3)]
    assert [r.sample_index for r in same] == [0, 1, 2]
    assert [json.loads(r.text or "")["choice"] for r in same] == [0, 1, 2]
    assert len({r.key for r in same}) == 3
    # Usage of the n=3 request (11 prompt, 15 completion) is split so totals add up.
    assert sum(r.prompt_tokens for r in same) == 11
    assert sum(r.completion_tokens for r in same) == 15
    summary = BatchSummary.of(results)
    assert (summary.requests, summary.ok, summary.prompt_tokens) == (4, 4, 22)


def test_repeated_explicit_sample_index_rejected(fake_server: Factory) -> None:
    server = fake_server()
    with pytest.raises(ValueError, match="repeats the sample_index"):
        complete_batch([ask("x"), ask("x", sample_index=0)], config(server.base_url))


def test_request_body_fields(fake_server: Factory) -> None:
    server = fake_server()
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    sampling = Sampling(temperature=0.2, max_tokens=17, stop=("\n",))
    complete_batch([ask("x", schema=schema, schema_name="decision", sampling=sampling, seed=5)],
                   config(server.base_url))
    complete_batch([ask("x", seed=5)], config(server.base_url, send_seed=True))
    unseeded, seeded = server.bodies
    assert unseeded["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "decision", "schema": schema, "strict": True}}
    assert unseeded["temperature"] == 0.2 and unseeded["max_completion_tokens"] == 17
    assert unseeded["stop"] == ["\n"] and unseeded["model"] == "m"
    assert "seed" not in unseeded and seeded["seed"] == 5


def test_batch_deadline_fails_unfinished_requests(fake_server: Factory) -> None:
    async def slow_b(body: dict[str, Any], call: int) -> None:
        if body["messages"][-1]["content"] == "b":
            await asyncio.sleep(5.0)

    server = fake_server(slow_b)
    began = time.monotonic()
    results = complete_batch([ask("a"), ask("b")],
                             config(server.base_url, batch_deadline_s=0.5, request_timeout_s=10))
    assert time.monotonic() - began < 3.0
    assert results[0].ok
    assert not results[1].ok and results[1].error_kind == "deadline"


def test_concurrency_is_bounded(fake_server: Factory) -> None:
    active = 0
    peak = 0

    async def track(body: dict[str, Any], call: int) -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.05)
        active -= 1

    server = fake_server(track)
    results = complete_batch([ask(str(i)) for i in range(12)],
                             config(server.base_url, max_concurrency=3))
    assert all(r.ok for r in results) and peak == 3


def test_spreads_over_urls_and_avoids_dead_one(fake_server: Factory) -> None:
    a, b = fake_server(), fake_server()
    results = complete_batch([ask(str(i)) for i in range(8)],
                             config(a.base_url, b.base_url, max_concurrency=8))
    assert all(r.ok for r in results) and a.bodies and b.bodies
    results = complete_batch([ask(str(i)) for i in range(6)], config(dead_url(), a.base_url))
    assert all(r.ok for r in results)
    assert {r.base_url for r in results} == {a.base_url}


def test_cache_record_then_hits_then_replay_miss(fake_server: Factory, tmp_path: Path) -> None:
    server = fake_server()
    path = tmp_path / "answers.sqlite"
    batch = [ask("p"), ask("p"), ask("q")]
    with ResponseCache(path) as cache:
        first = complete_batch(batch, config(server.base_url), cache)
        sent = len(server.bodies)
        again = complete_batch(batch, config(server.base_url), cache)
    assert len(server.bodies) == sent
    assert all(r.cached for r in again)
    assert [r.text for r in again] == [r.text for r in first]
    assert [r.completion_tokens for r in again] == [r.completion_tokens for r in first]
    with ResponseCache(path, "replay") as cache:
        assert [r.text for r in complete_batch(batch, config(dead_url()), cache)] == \
            [r.text for r in first]
        with pytest.raises(CacheMiss, match="no answer for request"):
            complete_batch([ask("never recorded")], config(dead_url()), cache)


def test_failures_are_not_cached(fake_server: Factory, tmp_path: Path) -> None:
    with ResponseCache(tmp_path / "answers.sqlite") as cache:
        complete_batch([ask("x")], config(dead_url()), cache)
        assert len(cache) == 0


def test_complete_batch_refuses_running_loop(fake_server: Factory) -> None:
    server = fake_server()

    async def inside() -> None:
        with pytest.raises(RuntimeError, match="inside an event loop"):
            complete_batch([ask("x")], config(server.base_url))
        async with BatchClient(config(server.base_url)) as client:
            [result] = await client.complete([ask("x")])
        assert result.ok

    asyncio.run(inside())


class FakeRestartable:
    """A 'server' whose restart() brings a FakeOpenAI back on the same port."""

    def __init__(self, http: FakeOpenAI) -> None:
        """Wrap a stopped or running FakeOpenAI."""
        self.http = http
        self.up = False
        self.restarts = 0

    def is_alive(self) -> bool:
        """Return whether it is serving."""
        return self.up

    def healthy(self) -> bool:
        """Return whether it is serving."""
        return self.up

    def restart(self) -> None:
        """Start serving again on the same port."""
        self.http.start(self.http.port or 0)
        self.up = True
        self.restarts += 1


def test_recovery_restarts_dead_server_and_resends_failed(fake_server: Factory,
                                                          tmp_path: Path) -> None:
    http = fake_server()
    http.stop()  # the "server died"
    server = FakeRestartable(http)
    batch = [ask("p"), ask("p"), ask("q")]
    with ResponseCache(tmp_path / "answers.sqlite") as cache:
        results = complete_batch_with_recovery(batch, config(http.base_url), server, cache)
        assert server.restarts == 1
        assert all(r.ok for r in results) and [r.index for r in results] == [0, 1, 2]
        assert [r.sample_index for r in results] == [0, 1, 0]
        replayed = complete_batch(batch, config(dead_url()), cache)
    assert [r.text for r in replayed] == [r.text for r in results]
