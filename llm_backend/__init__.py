"""LLM backend: local vLLM server management, batched chat client, response cache.

Knows nothing about the simulation. Callers outside the backend go through ``llm_backend.facade``
(opening a model for a run or a sweep, and the types that cross). Public names are importable from
the package and are loaded lazily, so ``import llm_backend`` does not pull in aiohttp, torch or vLLM.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BatchClient": "client", "BatchSummary": "client", "ChatRequest": "client",
    "ClientConfig": "client", "Result": "client", "Sampling": "client",
    "complete_batch": "client",
    "Connection": "connection", "UnreachableServerError": "connection",
    "BackendSpec": "facade", "LOCAL_MODEL_NAME": "facade", "client_config": "facade",
    "local_server": "facade", "local_server_config": "facade", "open_connection": "facade", "serve_local": "facade",
    "CacheMiss": "cache", "CacheMode": "cache", "CachedAnswer": "cache",
    "ResponseCache": "cache", "request_key": "cache", "request_payload": "cache",
    "complete_batch_with_recovery": "recovery", "complete_with_recovery": "recovery",
    "transport_failures": "recovery", "TRANSPORT_ERRORS": "recovery",
    "json_schema": "schemas", "parse_answer": "schemas",
    "ManagedServer": "server", "ServerConfig": "server", "ServerError": "server",
    "VllmNotInstalledError": "server", "free_port": "server", "serve_forever": "server",
    "WeightsError": "weights", "default_model_dir": "weights", "ensure_model_dir": "weights",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import the submodule that defines ``name`` on first access."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'llm_backend' has no attribute {name!r}")
    return getattr(importlib.import_module(f"llm_backend.{_EXPORTS[name]}"), name)
