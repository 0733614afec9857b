"""Notice a dead or unhealthy server, restart it, and retry the requests that failed."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Protocol

from llm_backend.cache import ResponseCache
from llm_backend.client import BatchClient, ChatRequest, ClientConfig, Result, complete_batch

TRANSPORT_ERRORS = frozenset({"connection", "timeout", "deadline"})


class Restartable(Protocol):
    """What recovery needs from a server (ManagedServer satisfies it)."""

    def is_alive(self) -> bool:
        """Return whether the server process runs."""

    def healthy(self) -> bool:
        """Return whether the server answers its health check."""

    def restart(self) -> None:
        """Restart the server, blocking until it is healthy."""


def transport_failures(results: Sequence[Result]) -> list[Result]:
    """Return the results that failed for transport reasons (server down, timeouts)."""
    return [r for r in results if not r.ok and r.error_kind in TRANSPORT_ERRORS]


def _retry_requests(requests: Sequence[ChatRequest], failed: Sequence[Result]
                    ) -> list[ChatRequest]:
    """Return the failed requests pinned to their sample index, so cache keys stay equal."""
    return [dataclasses.replace(requests[r.index], sample_index=r.sample_index) for r in failed]


def _merge(results: list[Result], failed: Sequence[Result], again: Sequence[Result]) -> None:
    """Put retried results back at their original positions."""
    for old, new in zip(failed, again, strict=True):
        results[old.index] = dataclasses.replace(new, index=old.index)


def _needs_restart(server: Restartable, results: Sequence[Result]) -> list[Result]:
    """Return transport failures if the server is down, else an empty list."""
    failed = transport_failures(results)
    if failed and (not server.is_alive() or not server.healthy()):
        return failed
    return []


async def complete_with_recovery(client: BatchClient, server: Restartable,
                                 requests: Sequence[ChatRequest],
                                 max_restarts: int = 2) -> list[Result]:
    """Send a batch; while the server is found down, restart it and resend what failed."""
    results = await client.complete(requests)
    for _ in range(max_restarts):
        failed = _needs_restart(server, results)
        if not failed:
            break
        await asyncio.to_thread(server.restart)
        _merge(results, failed, await client.complete(_retry_requests(requests, failed)))
    return results


def complete_batch_with_recovery(requests: Sequence[ChatRequest], config: ClientConfig,
                                 server: Restartable, cache: ResponseCache | None = None,
                                 max_restarts: int = 2) -> list[Result]:
    """Run ``complete_with_recovery``'s logic synchronously, for callers without a loop."""
    results = complete_batch(requests, config, cache)
    for _ in range(max_restarts):
        failed = _needs_restart(server, results)
        if not failed:
            break
        server.restart()
        _merge(results, failed, complete_batch(_retry_requests(requests, failed), config, cache))
    return results
