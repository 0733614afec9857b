"""Async batched client for OpenAI-compatible chat completions (vLLM), with a sync wrapper.

Each request in a batch yields exactly one ``Result``; transport problems become failure
records, never exceptions. Identical requests in a batch are sent once with ``n`` samples.
Structured output uses the OpenAI ``response_format={"type": "json_schema", ...}`` field,
which vLLM 0.32 maps onto its ``structured_outputs.json`` (the old ``guided_json`` extra
field is silently ignored by vLLM 0.32).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

import aiohttp

from llm_backend.cache import (
    CachedAnswer,
    ResponseCache,
    canonical_json,
    request_key,
    request_payload,
)

ErrorKind = Literal["connection", "timeout", "http", "bad_response", "deadline", "internal"]
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Sampling:
    """Sampling parameters sent with a request (and part of its cache key)."""

    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 128
    stop: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """Return the parameters as plain JSON data."""
        return {"temperature": self.temperature, "top_p": self.top_p,
                "max_tokens": self.max_tokens, "stop": list(self.stop)}


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion wanted by a caller.

    ``sample_index`` tells identical requests apart; when None it becomes the number of
    identical requests earlier in the same batch (0, 1, 2, ...).
    """

    messages: Sequence[Mapping[str, str]]
    schema: Mapping[str, Any] | None = None
    schema_name: str = "answer"
    sampling: Sampling = Sampling()
    seed: int | None = None
    sample_index: int | None = None


@dataclass(frozen=True)
class Result:
    """The outcome of one ChatRequest: an answer, or a failure record."""

    index: int
    ok: bool
    text: str | None
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    attempts: int
    cached: bool
    sample_index: int
    key: str
    base_url: str | None = None
    error: str | None = None
    error_kind: ErrorKind | None = None


@dataclass(frozen=True)
class ClientConfig:
    """Where and how to send requests."""

    base_urls: tuple[str, ...]
    model: str
    max_concurrency: int = 64
    request_timeout_s: float = 120.0
    max_retries: int = 3
    backoff_base_s: float = 0.5
    backoff_max_s: float = 8.0
    batch_deadline_s: float | None = None
    # Off by default: vLLM CPU 0.32's engine died under load with per-request seeds
    # ("CPU Generator does not use offset"). The response cache makes runs replayable.
    send_seed: bool = False
    api_key: str | None = None

    def __post_init__(self) -> None:
        """Reject configurations that cannot send anything."""
        if not self.base_urls:
            raise ValueError("ClientConfig needs at least one base URL")
        if self.max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")


@dataclass(frozen=True)
class BatchSummary:
    """Totals over a batch's results."""

    requests: int
    ok: int
    failed: int
    cached: int
    prompt_tokens: int
    completion_tokens: int
    mean_latency_s: float

    @classmethod
    def of(cls, results: Sequence[Result]) -> BatchSummary:
        """Summarize ``results``."""
        sent = [r for r in results if r.ok and not r.cached]
        return cls(
            requests=len(results),
            ok=sum(r.ok for r in results),
            failed=sum(not r.ok for r in results),
            cached=sum(r.cached for r in results),
            prompt_tokens=sum(r.prompt_tokens for r in results),
            completion_tokens=sum(r.completion_tokens for r in results),
            mean_latency_s=sum(r.latency_s for r in sent) / len(sent) if sent else 0.0,
        )


@dataclass
class PendingItem:
    """A request resolved to its position, sample index, cache payload and key."""

    index: int
    request: ChatRequest
    sample_index: int
    payload: dict[str, Any]
    key: str


@dataclass
class PendingGroup:
    """Identical uncached items sent as one HTTP request with ``n = len(items)``."""

    items: list[PendingItem]
    attempts: int = 0
    started: float | None = None
    last_error: tuple[ErrorKind, str] | None = None
    base_url: str | None = None


def split_evenly(total: int, parts: int) -> list[int]:
    """Split ``total`` into ``parts`` integers that add up to it (remainder first)."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def resolve_items(requests: Sequence[ChatRequest], model: str) -> list[PendingItem]:
    """Give each request its sample index and cache key; reject duplicate keys."""
    seen: dict[str, int] = {}
    keys: set[str] = set()
    items = []
    for index, req in enumerate(requests):
        sampling = req.sampling.as_dict()
        identity = canonical_json(request_payload(model, req.messages, req.schema,
                                                  sampling, req.seed, 0))
        rank = seen.get(identity, 0)
        seen[identity] = rank + 1
        sample_index = req.sample_index if req.sample_index is not None else rank
        payload = request_payload(model, req.messages, req.schema, sampling, req.seed,
                                  sample_index)
        key = request_key(payload)
        if key in keys:
            raise ValueError(f"request {index} repeats the sample_index {sample_index} of an "
                             "identical request in this batch")
        keys.add(key)
        items.append(PendingItem(index, req, sample_index, payload, key))
    return items


def lookup(items: Sequence[PendingItem], cache: ResponseCache | None) -> tuple[dict[int, Result], list[list[PendingItem]]]:
    """Cached answers by request index, and the uncached items grouped by identical request (sent with ``n``)."""
    results: dict[int, Result] = {}
    groups: dict[str, list[PendingItem]] = {}
    for item in items:
        hit = cache.get(item.key, item.payload) if cache is not None else None
        if hit is not None:
            results[item.index] = from_cache(item, hit)
        else:
            groups.setdefault(canonical_json({**item.payload, "sample_index": None}), []).append(item)
    return results, list(groups.values())


def record(cache: ResponseCache | None, items: Sequence[PendingItem], results: Mapping[int, Result]) -> None:
    """Put every new successful answer into the cache."""
    if cache is None:
        return
    by_index = {item.index: item for item in items}
    cache.put_many((by_index[r.index].key, by_index[r.index].payload, _to_cached(r))
                   for r in results.values() if r.ok and not r.cached)


def request_body(config: ClientConfig, request: ChatRequest, n: int) -> dict[str, Any]:
    """Return the JSON body of a chat completion request asking for ``n`` samples."""
    sampling = request.sampling
    body: dict[str, Any] = {
        "model": config.model,
        "messages": [dict(m) for m in request.messages],
        "n": n,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "max_completion_tokens": sampling.max_tokens,
    }
    if sampling.stop:
        body["stop"] = list(sampling.stop)
    if request.schema is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": request.schema_name, "schema": dict(request.schema),
                            "strict": True},
        }
    if config.send_seed and request.seed is not None:
        body["seed"] = request.seed
    return body


class BatchClient:
    """Sends batches of ChatRequests; use as ``async with BatchClient(config) as client``."""

    def __init__(self, config: ClientConfig, cache: ResponseCache | None = None) -> None:
        """Prepare a client for ``config``, optionally backed by a response cache."""
        self.config = config
        self.cache = cache
        self._session: aiohttp.ClientSession | None = None
        self._semaphore = asyncio.Semaphore(config.max_concurrency)
        self._inflight = {url.rstrip("/"): 0 for url in config.base_urls}
        self._turn = itertools.count()

    async def __aenter__(self) -> BatchClient:
        """Open the HTTP session."""
        headers = {"Authorization": f"Bearer {self.config.api_key}"} if self.config.api_key else {}
        connector = aiohttp.TCPConnector(limit=self.config.max_concurrency)
        self._session = aiohttp.ClientSession(connector=connector, headers=headers)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def complete(self, requests: Sequence[ChatRequest]) -> list[Result]:
        """Return one Result per request, in order; failures are records, not exceptions."""
        if self._session is None:
            raise RuntimeError("use `async with BatchClient(...) as client` before complete()")
        items = resolve_items(requests, self.config.model)
        results, pending = lookup(items, self.cache)
        for group_results in await self._run_groups([PendingGroup(group) for group in pending]):
            for result in group_results:
                results[result.index] = result
        record(self.cache, items, results)
        return [results[i] for i in range(len(items))]

    async def _run_groups(self, groups: list[PendingGroup]) -> list[list[Result]]:
        """Send all groups concurrently, failing whatever is unfinished at the deadline."""
        if not groups:
            return []
        tasks = [asyncio.ensure_future(self._send_group(g)) for g in groups]
        _, pending = await asyncio.wait(tasks, timeout=self.config.batch_deadline_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        out = []
        for group, task in zip(groups, tasks, strict=True):
            if task in pending:
                detail = f"; last error: {group.last_error[1]}" if group.last_error else ""
                out.append(failure_results(group, "deadline",
                                     f"batch deadline of {self.config.batch_deadline_s}s "
                                     f"passed{detail}"))
            elif (exc := task.exception()) is not None:
                out.append(failure_results(group, "internal", f"{type(exc).__name__}: {exc}"))
            else:
                out.append(task.result())
        return out

    def _pick_url(self, avoid: str | None) -> str:
        """Return the base URL with the fewest requests in flight (round-robin on ties)."""
        urls = list(self._inflight)
        if avoid is not None and len(urls) > 1:
            urls.remove(avoid)
        start = next(self._turn) % len(urls)
        rotated = urls[start:] + urls[:start]
        return min(rotated, key=self._inflight.__getitem__)

    async def _send_group(self, group: PendingGroup) -> list[Result]:
        """Send one group, retrying transient failures with exponential backoff."""
        config = self.config
        body = request_body(config, group.items[0].request, len(group.items))
        failed_url: str | None = None
        while True:
            async with self._semaphore:
                group.attempts += 1
                if group.started is None:
                    group.started = time.monotonic()
                url = self._pick_url(failed_url)
                group.base_url = url
                self._inflight[url] += 1
                try:
                    outcome = await self._post(url, body)
                finally:
                    self._inflight[url] -= 1
            if isinstance(outcome, dict):
                return _parse(group, outcome)
            kind, message, retryable = outcome
            group.last_error = (kind, message)
            if not retryable or group.attempts > config.max_retries:
                return failure_results(group, kind, message)
            failed_url = url
            delay = min(config.backoff_max_s, config.backoff_base_s * 2 ** (group.attempts - 1))
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))

    async def _post(self, url: str, body: dict[str, Any]
                    ) -> dict[str, Any] | tuple[ErrorKind, str, bool]:
        """POST one request; return the decoded JSON or ``(kind, message, retryable)``."""
        assert self._session is not None
        timeout = aiohttp.ClientTimeout(total=self.config.request_timeout_s)
        try:
            async with self._session.post(f"{url}/chat/completions", json=body,
                                          timeout=timeout) as resp:
                text = await resp.text()
                status = resp.status
        except TimeoutError:
            return "timeout", f"no answer from {url} within {self.config.request_timeout_s}s", True
        except aiohttp.ClientError as exc:
            return "connection", f"{url}: {type(exc).__name__}: {exc}", True
        if status != 200:
            return "http", f"{url} answered HTTP {status}: {text[:500]}", status in _RETRY_STATUSES
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return "bad_response", f"{url} answered non-JSON: {text[:200]!r}", False
        if not isinstance(data, dict):
            return "bad_response", f"{url} answered {type(data).__name__}, not an object", False
        return data


def _parse(group: PendingGroup, data: Mapping[str, Any]) -> list[Result]:
    """Turn a chat completion response into one Result per item of ``group``."""
    n = len(group.items)
    choices = sorted(data.get("choices") or [], key=lambda c: c.get("index", 0))
    if len(choices) != n:
        return failure_results(group, "bad_response", f"expected {n} choices, got {len(choices)}")
    usage = data.get("usage") or {}
    prompt = split_evenly(int(usage.get("prompt_tokens") or 0), n)
    completion = split_evenly(int(usage.get("completion_tokens") or 0), n)
    latency = time.monotonic() - (group.started or time.monotonic())
    results = []
    for i, (item, choice) in enumerate(zip(group.items, choices, strict=True)):
        text = (choice.get("message") or {}).get("content")
        if not isinstance(text, str):
            return failure_results(group, "bad_response", f"choice {i} has no message content")
        results.append(Result(
            index=item.index, ok=True, text=text, finish_reason=choice.get("finish_reason"),
            prompt_tokens=prompt[i], completion_tokens=completion[i], latency_s=latency,
            attempts=group.attempts, cached=False, sample_index=item.sample_index,
            key=item.key, base_url=group.base_url))
    return results


def failure_results(group: PendingGroup, kind: ErrorKind, message: str) -> list[Result]:
    """Return a failure record for every item of ``group``."""
    latency = time.monotonic() - group.started if group.started is not None else 0.0
    return [Result(index=item.index, ok=False, text=None, finish_reason=None,
                   prompt_tokens=0, completion_tokens=0, latency_s=latency,
                   attempts=group.attempts, cached=False, sample_index=item.sample_index,
                   key=item.key, base_url=group.base_url, error=message, error_kind=kind)
            for item in group.items]


def from_cache(item: PendingItem, hit: CachedAnswer) -> Result:
    """Return the Result for a cache hit (its original tokens and latency)."""
    return Result(index=item.index, ok=True, text=hit.text, finish_reason=hit.finish_reason,
                  prompt_tokens=hit.prompt_tokens, completion_tokens=hit.completion_tokens,
                  latency_s=hit.latency_s, attempts=0, cached=True,
                  sample_index=item.sample_index, key=item.key)


def _to_cached(result: Result) -> CachedAnswer:
    """Return the cache record of a successful Result."""
    assert result.text is not None
    return CachedAnswer(result.text, result.finish_reason, result.prompt_tokens,
                        result.completion_tokens, result.latency_s)


def complete_batch(requests: Sequence[ChatRequest], config: ClientConfig,
                   cache: ResponseCache | None = None) -> list[Result]:
    """Run a batch from synchronous code (no running event loop) and return its Results."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("complete_batch() cannot run inside an event loop; "
                           "use `async with BatchClient(config) as c: await c.complete(...)`")

    async def run() -> list[Result]:
        """Open a client, send the batch, close the client."""
        async with BatchClient(config, cache) as client:
            return await client.complete(requests)

    return asyncio.run(run())
