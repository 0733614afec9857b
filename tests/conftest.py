"""Fixtures shared by every test package: the real vLLM CPU server with SmolLM2, started once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from llm_backend.server import ManagedServer, ServerConfig, VllmNotInstalledError, require_vllm
from llm_backend.weights import ensure_model_dir

TWIN_MODEL = "smollm2-twin"
"""A second name the session's server answers to, so one server can stand for two models in a run."""


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker of tests that start a real vLLM server."""
    config.addinivalue_line("markers", "vllm: starts a real vLLM CPU server (slow, minutes)")


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedServer]:
    """Start the real vLLM CPU server with SmolLM2 once per session; fail if vLLM is missing."""
    try:
        require_vllm()
    except VllmNotInstalledError as exc:
        pytest.fail(f"the real-server tests need vLLM: {exc}", pytrace=False)
    model_dir = ensure_model_dir()  # converted once into the society cache, then reused
    log = tmp_path_factory.mktemp("vllm") / "server.log"
    server = ManagedServer(ServerConfig(model_dir=model_dir, log_path=log, max_num_seqs=64, aliases=(TWIN_MODEL,)))
    with server:
        print(f"\nvLLM started in {server.start_seconds:.1f}s (log {log})")
        yield server
