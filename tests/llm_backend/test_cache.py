"""Response cache: record, replay, miss, off, key stability."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from llm_backend.cache import (
    CachedAnswer,
    CacheMiss,
    CacheMode,
    ResponseCache,
    request_key,
    request_payload,
)

MESSAGES = [{"role": "system", "content": "You fish."}, {"role": "user", "content": "How many?"}]
SCHEMA = {"type": "object", "properties": {"amount": {"type": "integer"}}, "required": ["amount"]}
SAMPLING = {"temperature": 0.7, "top_p": 1.0, "max_tokens": 32, "stop": []}
ANSWER = CachedAnswer('{"amount": 3}', "stop", 40, 6, 0.25)


def payload(**changes: Any) -> dict[str, Any]:
    """Return a request payload with some fields changed."""
    args: dict[str, Any] = {"model": "m", "messages": MESSAGES, "schema": SCHEMA,
                            "sampling": SAMPLING, "seed": 7, "sample_index": 0}
    args.update(changes)
    return request_payload(**args)


def test_key_is_stable_across_dict_order_and_pinned() -> None:
    reordered = request_payload(
        "m", [{"content": m["content"], "role": m["role"]} for m in MESSAGES],
        dict(reversed(list(SCHEMA.items()))), dict(reversed(list(SAMPLING.items()))), 7, 0)
    assert request_key(reordered) == request_key(payload())
    # Pinned: changing the key derivation silently would orphan every recorded cache.
    assert request_key(payload()) == (
        "1fbc249fa1f06e3d16317068c791271d0dab68582bb4df053b620441796c9a87")


@pytest.mark.parametrize("change", [
    {"model": "other"},
    {"messages": MESSAGES[:1]},
    {"schema": None},
    {"sampling": {**SAMPLING, "temperature": 0.0}},
    {"seed": None},
    {"seed": 8},
    {"sample_index": 1},
])
def test_key_changes_with_each_field(change: dict[str, Any]) -> None:
    assert request_key(payload(**change)) != request_key(payload())


def test_record_then_reopen_and_replay(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    key = request_key(payload())
    with ResponseCache(path) as cache:
        assert cache.mode is CacheMode.RECORD
        assert cache.get(key) is None
        cache.put(key, payload(), ANSWER)
        assert cache.get(key) == ANSWER
        assert len(cache) == 1
    with ResponseCache(path, "replay") as cache:
        assert cache.get(key) == ANSWER
        cache.put(request_key(payload(seed=1)), payload(seed=1), ANSWER)  # ignored in replay
        assert len(cache) == 1
    row = sqlite3.connect(path).execute("SELECT model, request, text FROM answers").fetchone()
    assert row[0] == "m" and "How many?" in row[1] and row[2] == ANSWER.text


def test_replay_miss_raises_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    ResponseCache(path).close()
    with ResponseCache(path, CacheMode.REPLAY) as cache:
        with pytest.raises(CacheMiss, match=r"no answer for request .*sample 0, seed 7.*How many"):
            cache.get(request_key(payload()), payload())


def test_replay_of_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(CacheMiss, match="does not exist"):
        ResponseCache(tmp_path / "absent.sqlite", "replay")


def test_off_mode_stores_nothing(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    with ResponseCache(path, "off") as cache:
        key = request_key(payload())
        cache.put(key, payload(), ANSWER)
        assert cache.get(key) is None
        assert len(cache) == 0
    assert not path.exists()


def test_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    ResponseCache(path).close()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_bad_mode_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        ResponseCache(tmp_path / "c.sqlite", "sometimes")
