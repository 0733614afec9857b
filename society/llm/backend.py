"""Society's link to a model: a scenario's `llm` section as the backend's spec, and opened through its façade."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

from llm_backend.facade import BackendSpec, open_connection
from society.scenario.schema import LLMPolicy, LLMSettings

if TYPE_CHECKING:
    from llm_backend.facade import Connection


def backend_spec(settings: LLMSettings) -> BackendSpec:
    """What the backend needs to know of a scenario's `llm` section."""
    return BackendSpec(
        backend=settings.backend,
        base_urls=tuple(settings.base_urls),
        model=settings.model,
        concurrency=settings.concurrency,
        request_timeout_s=settings.request_timeout_s,
        phase_deadline_s=settings.phase_deadline_s,
        seeded=settings.seeded,
        cache_mode=settings.cache,
    )


def connect(
    settings: LLMSettings, cache_path: Path | None = None, model: str | None = None, log_path: Path | None = None
) -> AbstractContextManager[Connection]:
    """What a scenario's `llm` section names, open for a run: a replay cache, named servers, or a local server.

    `model` is the served model name a replay's cache was recorded under (answers are keyed by it).
    """
    return open_connection(backend_spec(settings), cache_path, model, log_path)


def group_settings(settings: LLMSettings, group: LLMPolicy) -> LLMSettings:
    """The `llm` section as one LLM group sees it: with its own model and servers where it names them."""
    changes = {name: value for name, value in (("model", group.model), ("base_urls", group.base_urls))
               if value is not None}
    return settings.model_copy(update=changes)
