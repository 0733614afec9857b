"""SQLite cache of LLM answers: makes runs replayable without relying on sampling seeds."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any

KEY_VERSION = "society-llm-cache-v1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    request TEXT NOT NULL,
    text TEXT NOT NULL,
    finish_reason TEXT,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    latency_s REAL NOT NULL,
    created_at REAL NOT NULL
)
"""


class CacheMode(StrEnum):
    """How the cache behaves: record answers, replay only recorded ones, or do nothing."""

    RECORD = "record"
    REPLAY = "replay"
    OFF = "off"


class CacheMiss(LookupError):
    """A replay-mode lookup found no recorded answer."""


class CacheFileError(ValueError):
    """The cache file is not a response cache (damaged, or something else); one line naming it."""


_COLUMNS = ["key", "model", "request", "text", "finish_reason", "prompt_tokens", "completion_tokens", "latency_s",
            "created_at"]


@dataclass(frozen=True)
class CachedAnswer:
    """One recorded answer and its accounting."""

    text: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    latency_s: float


def canonical_json(value: Any) -> str:
    """Serialize ``value`` deterministically (sorted keys, no whitespace)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_payload(model: str, messages: Sequence[Mapping[str, Any]],
                    schema: Mapping[str, Any] | None, sampling: Mapping[str, Any],
                    seed: int | None, sample_index: int) -> dict[str, Any]:
    """Return everything that identifies one sampled answer, as plain JSON data."""
    return {
        "model": model,
        "messages": [dict(m) for m in messages],
        "schema": dict(schema) if schema is not None else None,
        "sampling": dict(sampling),
        "seed": seed,
        "sample_index": sample_index,
    }


def request_key(payload: Mapping[str, Any]) -> str:
    """Return the stable SHA-256 key of a ``request_payload``."""
    return hashlib.sha256(f"{KEY_VERSION}\n{canonical_json(payload)}".encode()).hexdigest()


class ResponseCache:
    """Answers keyed by ``request_key``, stored in one SQLite file (WAL, single writer)."""

    def __init__(self, path: str | Path, mode: CacheMode | str = CacheMode.RECORD) -> None:
        """Open (creating if needed) the cache at ``path`` in ``mode``."""
        self.path = Path(path)
        self.mode = CacheMode(mode)
        self._conn: sqlite3.Connection | None = None
        if self.mode is CacheMode.OFF:
            return
        if self.mode is CacheMode.REPLAY and not self.path.is_file():
            raise CacheMiss(f"replay cache {self.path} does not exist; record a run first")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path)
        try:
            self._conn.execute("PRAGMA trusted_schema=OFF")
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(_SCHEMA)
            self._conn.commit()
            self._check()
        except (sqlite3.DatabaseError, CacheFileError) as error:
            self.close()
            if isinstance(error, CacheFileError):
                raise
            raise CacheFileError(f"{self.path}: not a readable LLM response cache ({error})") from None

    def _check(self) -> None:
        """Refuse a file whose `answers` table is not ours, or that carries triggers or views."""
        assert self._conn is not None
        columns = [row[1] for row in self._conn.execute("PRAGMA table_info(answers)")]
        if columns != _COLUMNS:
            raise CacheFileError(f"{self.path}: not an LLM response cache (its answers table has {columns})")
        extra = self._conn.execute("SELECT type, name FROM sqlite_master WHERE type IN ('trigger', 'view')").fetchall()
        if extra:
            raise CacheFileError(f"{self.path}: not an LLM response cache (it holds {extra[0][0]} {extra[0][1]!r})")

    def get(self, key: str, payload: Mapping[str, Any] | None = None) -> CachedAnswer | None:
        """Return the answer for ``key``; None on a miss, or CacheMiss in replay mode."""
        if self._conn is None:
            return None
        try:
            row = self._conn.execute(
                "SELECT text, finish_reason, prompt_tokens, completion_tokens, latency_s "
                "FROM answers WHERE key = ?", (key,)).fetchone()
        except sqlite3.DatabaseError as error:
            raise CacheFileError(f"{self.path}: the LLM response cache is damaged ({error})") from None
        if row is not None:
            return _answer(self.path, row)
        if self.mode is CacheMode.REPLAY:
            raise CacheMiss(_miss_message(self.path, key, payload))
        return None

    def put_many(self, entries: Iterable[tuple[str, Mapping[str, Any], CachedAnswer]]) -> None:
        """Record ``(key, payload, answer)`` entries in one transaction (record mode only)."""
        if self._conn is None or self.mode is not CacheMode.RECORD:
            return
        now = time.time()
        rows = [(key, str(payload.get("model", "")), canonical_json(payload), a.text,
                 a.finish_reason, a.prompt_tokens, a.completion_tokens, a.latency_s, now)
                for key, payload, a in entries]
        with self._conn:
            self._conn.executemany(
                "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def put(self, key: str, payload: Mapping[str, Any], answer: CachedAnswer) -> None:
        """Record one answer (record mode only)."""
        self.put_many([(key, payload, answer)])

    def __len__(self) -> int:
        """Return the number of recorded answers."""
        if self._conn is None:
            return 0
        return int(self._conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0])

    def close(self) -> None:
        """Close the database connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> ResponseCache:
        """Return the open cache."""
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Close the cache."""
        self.close()


def _answer(path: Path, row: tuple[Any, ...]) -> CachedAnswer:
    """A recorded row as an answer, its types checked."""
    text, finish_reason, prompt_tokens, completion_tokens, latency_s = row
    if (not isinstance(text, str) or not isinstance(finish_reason, str | None)
            or not all(isinstance(n, int) for n in (prompt_tokens, completion_tokens))
            or not isinstance(latency_s, float | int)):
        raise CacheFileError(f"{path}: a recorded answer has values of the wrong types; the cache is damaged")
    return CachedAnswer(*row)


def _miss_message(path: Path, key: str, payload: Mapping[str, Any] | None) -> str:
    """Describe a replay miss so the user can see which request was not recorded."""
    detail = ""
    if payload is not None:
        messages = payload.get("messages") or [{}]
        last = str(messages[-1].get("content", ""))[:120]
        detail = (f" (model {payload.get('model')!r}, sample {payload.get('sample_index')}, "
                  f"seed {payload.get('seed')}, last message {last!r})")
    return (f"replay cache {path} has no answer for request {key[:16]}{detail}; "
            "the run diverged from the recorded one, or record it first with mode='record'")
