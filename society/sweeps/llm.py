"""LLM-backed sweeps: one model server for every run, and one concurrency cap across the runs in flight."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable, Iterator
from pathlib import Path

from llm_backend import facade as backend
from society.llm.backend import backend_spec
from society.scenario.schema import Scenario


class SweepLLMError(Exception):
    """The cells' `llm` sections cannot share one server (or the executor cannot reach it)."""


def asks_model(scenario: Scenario) -> bool:
    """Whether the run will send requests to a model (it has LLM citizens and does not replay a cache)."""
    return scenario.has_llm_citizens and scenario.llm.cache != "replay"


def needs_local_server(scenarios: Iterable[Scenario]) -> bool:
    """Whether any run asks the embedded local server (the sweep then starts one for all of them)."""
    return any(asks_model(s) and s.llm.backend == "local" for s in scenarios)


def share(scenario: Scenario, runs_at_once: int, base_url: str | None, model: str | None) -> Scenario:
    """The scenario as one of `runs_at_once` runs sharing its servers.

    Its `llm.concurrency` (the cap for the servers) is split evenly between the runs in flight, and a run
    that names the local backend is sent to the sweep's shared server at `base_url`, serving `model`.
    """
    if not asks_model(scenario):
        return scenario
    changes: dict[str, object] = {"concurrency": max(1, scenario.llm.concurrency // runs_at_once)}
    if scenario.llm.backend == "local":
        if base_url is None:
            raise SweepLLMError("runs name llm.backend local but the sweep started no server")
        changes |= {"backend": "server", "base_urls": [base_url], "model": model}
    return scenario.model_copy(update={"llm": scenario.llm.model_copy(update=changes)})


@contextlib.contextmanager
def local_server(scenarios: list[Scenario], port: int, log_path: Path) -> Iterator[tuple[str, str] | None]:
    """Start one managed vLLM server for the runs naming the local backend; yields its (base URL, model name).

    Yields None when no run needs it. Every such run must name the same `llm.model` (one server, one model);
    the server batches up to the largest `llm.concurrency` among them.
    """
    settings = [s.llm for s in scenarios if asks_model(s) and s.llm.backend == "local"]
    if not settings:
        yield None
        return
    models = sorted({str(s.model) for s in settings})
    if len(models) > 1:
        raise SweepLLMError(f"runs on the local backend name different llm.model values {models}; one server "
                            "serves one model (start servers yourself and name them with llm.backend: server)")
    spec = dataclasses.replace(backend_spec(settings[0]), concurrency=max(s.concurrency for s in settings))
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(backend.local_server(spec, log_path, port))
        except (backend.ServerError, backend.WeightsError) as error:
            unstarted = isinstance(error, (backend.VllmNotInstalledError, backend.WeightsError))  # nothing logged
            log = "" if unstarted else f" (log: {log_path})"
            raise SweepLLMError(f"cannot start the sweep's LLM server: {error}{log}") from None
        yield server.base_url, server.model
