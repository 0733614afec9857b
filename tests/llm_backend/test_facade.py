"""The façade: opening a model from plain values, and importing it (or society) without the heavy modules."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from llm_backend import facade
from llm_backend.cache import CachedAnswer, ResponseCache
from llm_backend.client import ChatRequest, resolve_items

REQUEST = ChatRequest(messages=[{"role": "user", "content": "How many fish?"}], schema={"type": "object"})


def record(path: Path, model: str, text: str) -> None:
    """A cache file holding `text` as `model`'s answer to REQUEST."""
    (item,) = resolve_items([REQUEST], model)
    with ResponseCache(path, "record") as cache:
        cache.put(item.key, item.payload, CachedAnswer(text, "stop", 5, 2, 0.1))


def test_replay_answers_from_the_cache_under_the_recorded_model(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    record(path, "recorded-model", '{"amount": 2}')
    spec = facade.BackendSpec(backend="server", base_urls=("http://127.0.0.1:9/v1",), cache_mode="replay")
    with facade.open_connection(spec, path, recorded_model="recorded-model") as connection:
        assert connection.model == "recorded-model"
        (result,) = connection.complete([REQUEST])
    assert result.ok and result.cached and result.text == '{"amount": 2}'


def test_replay_without_a_recorded_model_keys_answers_by_the_local_model_and_misses_raise(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    record(path, "another-model", '{"amount": 2}')
    with facade.open_connection(facade.BackendSpec(cache_mode="replay"), path) as connection:
        assert connection.model == facade.LOCAL_MODEL_NAME
        with pytest.raises(facade.CacheMiss):
            connection.complete([REQUEST])


def test_an_unreachable_server_is_reported_before_anything_is_sent() -> None:
    spec = facade.BackendSpec(backend="server", base_urls=("http://127.0.0.1:9/v1",), cache_mode="replay")
    with pytest.raises(facade.UnreachableServerError, match="cannot reach"):
        with facade.open_connection(spec):  # without a cache file the cache is off, so the server is asked
            pass


def test_client_settings_come_from_the_spec() -> None:
    spec = facade.BackendSpec(concurrency=7, request_timeout_s=9.0, phase_deadline_s=30.0, seeded=True)
    config = facade.client_config(spec, ["http://a/v1", "http://b/v1"], "m")
    assert (config.base_urls, config.model, config.max_concurrency) == (("http://a/v1", "http://b/v1"), "m", 7)
    assert (config.request_timeout_s, config.batch_deadline_s, config.send_seed) == (9.0, 30.0, True)


def test_importing_society_or_the_facade_loads_no_http_client_torch_or_vllm() -> None:
    code = ("import sys, llm_backend.facade, society, society.cli, society.core.runner, society.sweeps; "
            "print(sorted(m for m in ('aiohttp', 'torch', 'vllm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
