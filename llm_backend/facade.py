"""The one door into the backend: open a model for a run or a sweep, and the types that cross the door.

Callers describe the model with plain values (`BackendSpec`); this module knows nothing of who asks. Names
defined in heavier modules (the client pulls in aiohttp, the engine vLLM) load on first use, so importing the
façade stays cheap.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from llm_backend.schemas import json_schema, parse_answer

if TYPE_CHECKING:
    from llm_backend.cache import CacheFileError, CacheMiss
    from llm_backend.client import ChatRequest, ClientConfig, Result, Sampling
    from llm_backend.connection import Connection, UnreachableServerError
    from llm_backend.recovery import TRANSPORT_ERRORS
    from llm_backend.server import ManagedServer, ServerConfig, ServerError, VllmNotInstalledError, free_port
    from llm_backend.weights import WeightsError

LOCAL_MODEL_NAME = "smollm2-135m-instruct"

_LAZY = {
    "CacheFileError": "cache", "CacheMiss": "cache",
    "ChatRequest": "client", "ClientConfig": "client", "Result": "client", "Sampling": "client",
    "Connection": "connection", "UnreachableServerError": "connection",
    "TRANSPORT_ERRORS": "recovery",
    "ManagedServer": "server", "ServerConfig": "server", "ServerError": "server",
    "VllmNotInstalledError": "server", "free_port": "server",
    "WeightsError": "weights",
}

__all__ = sorted([*_LAZY, "LOCAL_MODEL_NAME", "BackendSpec", "client_config", "hardware_config", "json_schema",
                  "loaded_errors", "local_server", "local_server_config", "open_connection", "parse_answer", "serve_local"])


def __getattr__(name: str) -> Any:
    """Import the backend module that defines `name` on first access."""
    if name not in _LAZY:
        raise AttributeError(f"module 'llm_backend.facade' has no attribute {name!r}")
    return getattr(importlib.import_module(f"llm_backend.{_LAZY[name]}"), name)


def loaded_errors(*names: str) -> tuple[type[BaseException], ...]:
    """The named error classes whose modules this process has already imported, without importing the others.

    An error can only be raised by a module that was imported, so `except (*loaded_errors("CacheMiss"),)` catches
    the backend's errors while a run that never talked to a model imports none of it (nor aiohttp, nor sqlite3).
    """
    modules = [(sys.modules.get(f"llm_backend.{_LAZY[name]}"), name) for name in names]
    return tuple(getattr(module, name) for module, name in modules if module is not None)


@dataclass(frozen=True)
class BackendSpec:
    """Which model to open and how to talk to it.

    `backend`: `local` starts the embedded vLLM server, `server` uses running OpenAI-compatible servers at
    `base_urls`, `engine` loads vLLM in this process. `model` is the served model name (server) or a model
    directory (local, engine; None: the converted SmolLM2). `cache_mode` applies when a cache file is given.
    """

    backend: Literal["local", "server", "engine"] = "local"
    base_urls: tuple[str, ...] = ()
    model: str | None = None
    concurrency: int = 256
    request_timeout_s: float = 300.0
    phase_deadline_s: float | None = None
    seeded: bool = False
    cache_mode: Literal["record", "replay", "off"] = "record"


def client_config(spec: BackendSpec, base_urls: Sequence[str], model: str) -> ClientConfig:
    """The batched client's settings for `spec`, sending to `base_urls` and asking for `model`."""
    from llm_backend.client import ClientConfig

    return ClientConfig(
        base_urls=tuple(base_urls),
        model=model,
        max_concurrency=spec.concurrency,
        request_timeout_s=spec.request_timeout_s,
        batch_deadline_s=spec.phase_deadline_s,
        send_seed=spec.seeded,
    )


def local_server_config(spec: BackendSpec, log_path: Path | None = None, port: int | None = None) -> ServerConfig:
    """The embedded model for `spec`: SmolLM2 (converted once) or `spec.model`'s directory, served on the GPUs
    this machine's CUDA sees, else on the CPU.

    Raises VllmNotInstalledError or WeightsError before anything slow starts.
    """
    from llm_backend.server import require_vllm, visible_gpus
    from llm_backend.weights import ensure_model_dir

    require_vllm()
    model_dir = ensure_model_dir(Path(spec.model) if spec.model else None)
    name = model_dir.name if spec.model else LOCAL_MODEL_NAME
    return hardware_config(model_dir, name, visible_gpus(), spec.concurrency, port, log_path)


def hardware_config(
    model_dir: Path, served_model_name: str, gpus: int, concurrency: int, port: int | None = None,
    log_path: Path | None = None,
) -> ServerConfig:
    """The server's settings for this hardware: `gpu_config` on `gpus` GPUs (batch as large as the client's
    concurrency), else the CPU defaults (batch at most 256, measured best on 2 cores)."""
    from llm_backend.server import ServerConfig, gpu_config

    common = {"served_model_name": served_model_name, "port": port, "log_path": log_path}
    if gpus:
        return gpu_config(model_dir, gpus, max_num_seqs=concurrency, **common)
    return ServerConfig(model_dir=model_dir, max_num_seqs=min(256, concurrency), **common)


@contextlib.contextmanager
def open_connection(
    spec: BackendSpec, cache_path: Path | None = None, recorded_model: str | None = None,
    log_path: Path | None = None,
) -> Iterator[Connection]:
    """The model `spec` names, open until the block ends: a replay cache, named servers, vLLM in this process,
    or a managed local server (`local_server`: started here, stopped at the end).

    With `cache_path`, answers are recorded to (or, in replay mode, only read from) that cache; without it the
    cache is off. `recorded_model` is the model name a replayed cache was recorded under (answers are keyed
    by it).
    """
    from llm_backend.cache import ResponseCache
    from llm_backend.connection import ReplayConnection, ServerConnection, checked_model

    mode = spec.cache_mode if cache_path is not None else "off"
    with contextlib.ExitStack() as stack:
        cache = stack.enter_context(ResponseCache(cache_path, mode)) if cache_path is not None else None
        if mode == "replay":
            assert cache is not None
            yield ReplayConnection(recorded_model or spec.model or LOCAL_MODEL_NAME, cache)
        elif spec.backend == "server":
            served = checked_model(spec.base_urls, spec.model)
            yield ServerConnection(client_config(spec, spec.base_urls, served), cache)
        elif spec.backend == "engine":
            from llm_backend.engine import InProcessEngine

            yield stack.enter_context(InProcessEngine(local_server_config(spec, log_path), cache,
                                                      send_seed=spec.seeded))
        else:
            server = stack.enter_context(local_server(spec, log_path))
            yield ServerConnection(client_config(spec, [server.base_url], server.model), cache, server)


@contextlib.contextmanager
def local_server(spec: BackendSpec, log_path: Path | None = None, port: int | None = None) -> Iterator[ManagedServer]:
    """The embedded model (`local_server_config`) served by a managed vLLM server, healthy until the block ends.

    Raises ServerError (VllmNotInstalledError when vLLM is missing) or WeightsError when it cannot start.
    """
    from llm_backend.server import ManagedServer

    with ManagedServer(local_server_config(spec, log_path, port)) as server:
        yield server


def serve_local(model_dir: Path | None = None, port: int | None = None, concurrency: int = 256) -> None:
    """Run the local server in the foreground, restarting it if it dies (`model_dir` None: converted SmolLM2), on
    the GPUs CUDA sees, else on the CPU."""
    from llm_backend.server import serve_forever, visible_gpus
    from llm_backend.weights import ensure_model_dir

    directory = ensure_model_dir(model_dir)
    name = directory.name if model_dir else LOCAL_MODEL_NAME
    serve_forever(hardware_config(directory, name, visible_gpus(), concurrency, port))
