"""A model for a whole run: named servers, a managed local server, or answers replayed from a cache."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from llm_backend.cache import ResponseCache
from llm_backend.client import ChatRequest, ClientConfig, Result, complete_batch, from_cache, resolve_items
from llm_backend.recovery import Restartable, complete_batch_with_recovery


class Connection(Protocol):
    """Answers batches of chat requests for one model."""

    model: str

    def complete(self, requests: Sequence[ChatRequest]) -> list[Result]:
        """One Result per request, in order; failures are records, not exceptions."""


class UnreachableServerError(ConnectionError):
    """A named server does not answer, or does not serve the model asked for."""


def served_models(base_url: str, timeout_s: float = 10.0) -> list[str]:
    """The model names an OpenAI-compatible server lists at `GET {base_url}/models`."""
    try:
        with urllib.request.urlopen(f"{base_url}/models", timeout=timeout_s) as response:
            listing = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise UnreachableServerError(f"cannot reach the LLM server at {base_url} ({reason})") from None
    try:
        return [str(entry["id"]) for entry in listing["data"]]
    except (KeyError, TypeError):
        raise UnreachableServerError(f"{base_url}/models did not answer an OpenAI model list") from None


def checked_model(base_urls: Sequence[str], model: str | None) -> str:
    """The model to ask every server for: `model`, or the one the first server serves; each server must serve it."""
    for url in base_urls:
        models = served_models(url)
        if model is None:
            if not models:
                raise UnreachableServerError(f"the LLM server at {url} serves no model")
            model = models[0]
        if model not in models:
            raise UnreachableServerError(f"the LLM server at {url} does not serve {model!r} (it serves {models})")
    if model is None:
        raise UnreachableServerError("no LLM server URL given")
    return model


@dataclass
class ServerConnection:
    """Servers reached by the batched client; a managed server found dead is restarted and the batch resent."""

    config: ClientConfig
    cache: ResponseCache | None = None
    server: Restartable | None = None

    @property
    def model(self) -> str:
        return self.config.model

    def complete(self, requests: Sequence[ChatRequest]) -> list[Result]:
        """Send a batch (restarting a managed server that died during it)."""
        if self.server is None:
            return complete_batch(requests, self.config, self.cache)
        return complete_batch_with_recovery(requests, self.config, self.server, self.cache)


@dataclass
class ReplayConnection:
    """Answers only from a recorded cache: no server is asked, and a miss raises `CacheMiss`."""

    model: str
    cache: ResponseCache

    def complete(self, requests: Sequence[ChatRequest]) -> list[Result]:
        """The recorded answer of every request."""
        return [from_cache(item, self.cache.get(item.key, item.payload)) for item in resolve_items(requests, self.model)]
