"""Fixtures for llm_backend tests: a scriptable local HTTP server (the real vLLM server is in tests/conftest.py)."""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiohttp import web

Behaviour = Callable[[dict[str, Any], int], Any]  # a response, None, or an awaitable of one


def completion(body: dict[str, Any], call: int) -> web.Response:
    """Answer like an OpenAI server: ``n`` choices echoing the last message, fixed usage."""
    n = int(body.get("n", 1))
    last = body["messages"][-1]["content"]
    choices = [{"index": i, "finish_reason": "stop",
                "message": {"role": "assistant",
                            "content": json.dumps({"echo": last, "choice": i, "call": call})}}
               for i in range(n)]
    usage = {"prompt_tokens": 11, "completion_tokens": 5 * n, "total_tokens": 11 + 5 * n}
    return web.json_response({"id": f"c{call}", "object": "chat.completion",
                              "choices": choices, "usage": usage})


class FakeOpenAI:
    """A local HTTP server speaking just enough of ``/v1/chat/completions`` to test transport.

    Not a stand-in for vLLM: ``behaviour(body, call)`` may return a response (e.g. a 503),
    sleep, or return None for the default answer. Runs in its own thread and event loop.
    """

    def __init__(self, behaviour: Behaviour | None = None) -> None:
        """Prepare the server; ``start()`` binds it."""
        self.behaviour = behaviour
        self.bodies: list[dict[str, Any]] = []
        self.port: int | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        """Return the OpenAI-style base URL."""
        return f"http://127.0.0.1:{self.port}/v1"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        """Record the body, then apply the behaviour or the default answer."""
        body = await request.json()
        self.bodies.append(body)
        call = len(self.bodies)
        if self.behaviour is not None:
            answer = self.behaviour(body, call)
            if inspect.isawaitable(answer):
                answer = await answer
            if answer is not None:
                return answer
        return completion(body, call)

    async def _start(self, port: int) -> int:
        """Bind the app to 127.0.0.1:port and return the bound port."""
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port, reuse_address=True)
        await site.start()
        return int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    def start(self, port: int = 0) -> FakeOpenAI:
        """Start serving (on a free port unless given) and return self."""
        if not self._thread.is_alive():
            self._thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._start(port), self._loop).result(10)
        return self

    def stop(self) -> None:
        """Stop serving; the port becomes free (connections are refused)."""
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._runner = None

    def close(self) -> None:
        """Stop serving and end the thread."""
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@pytest.fixture
def fake_server() -> Iterator[Callable[..., FakeOpenAI]]:
    """Return a factory of started FakeOpenAI servers, all closed after the test."""
    servers: list[FakeOpenAI] = []

    def make(behaviour: Behaviour | None = None) -> FakeOpenAI:
        """Start a FakeOpenAI with ``behaviour``."""
        server = FakeOpenAI(behaviour).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()
