"""Which file each value of a merged scenario came from, so that problems name it and never echo values from
files the user did not name (a scenario reached through `extends:`, a grid's base scenario)."""

from __future__ import annotations

import math
import re
from typing import Any

Key = tuple[str, ...]
"""Where a value sits in a scenario mapping: its keys, list indices as strings (`('schedule', '2', 'params')`)."""

HIDDEN = "(value not shown)"


def leaf_keys(data: Any, prefix: Key = ()) -> list[Key]:
    """The key of every value in `data` that is not a mapping (a list is one value: `extends:` replaces it whole)."""
    if not isinstance(data, dict):
        return [prefix]
    return [key for name, value in data.items() for key in leaf_keys(value, (*prefix, str(name)))]


def _covers(a: Key, b: Key) -> bool:
    """Whether one of the keys is the other or under it."""
    n = min(len(a), len(b))
    return a[:n] == b[:n]


class Origins:
    """The values of a scenario mapping that came from files the user did not name: their keys and files."""

    def __init__(self, hidden: dict[Key, str] | None = None) -> None:
        self.hidden = dict(hidden or {})

    def beneath(self, data: dict[str, Any], file: str | None) -> Origins:
        """These origins with `data` merged on top (as `deep_merge` does); `data` is from `file`, or shown if None."""
        leaves = leaf_keys(data)
        kept = {key: f for key, f in self.hidden.items() if not any(_covers(key, leaf) for leaf in leaves)}
        if file is not None:
            kept |= {leaf: file for leaf in leaves}
        return Origins(kept)

    def overridden(self, keys: list[Key]) -> Origins:
        """These origins after `--set` overrides (shown values) at `keys`; a list an override enters stays hidden."""
        return Origins({key: f for key, f in self.hidden.items() if not any(key[: len(o)] == o for o in keys)})

    def file_hiding(self, key: Key) -> str | None:
        """The file (not named by the user) whose value at `key`, or above or under it, must not be shown."""
        files = sorted(f for k, f in self.hidden.items() if _covers(k, key))
        return files[0] if files else None


def field_key(field: str) -> Key:
    """A field path as printed (`schedule[2].params.cost`) as a key."""
    return tuple(re.findall(r"[^.\[\]]+", field)) if field != "(top level)" else ()


def value_at(data: Any, key: Key) -> Any:
    """The value at `key` in `data` (None where there is none)."""
    for part in key:
        if isinstance(data, dict):
            data = next((v for k, v in data.items() if str(k) == part), None)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


def _spellings(value: Any) -> set[str]:
    """How a scalar may be written into a message (as is, repr'd, or `:g`-formatted)."""
    if isinstance(value, str):
        return {value, repr(value)[1:-1]} - {""}
    if isinstance(value, bool) or value is None:
        return set()
    if isinstance(value, float) and not math.isfinite(value):
        return {str(value), repr(value)}
    if isinstance(value, int | float):
        return {str(value), repr(value), f"{value:g}"}
    return {str(value)}


def _scalars(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _scalars(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _scalars(v)]
    return [value]


def redact(message: str, value: Any) -> str:
    """`message` with every scalar of `value` in it replaced by a mark (numbers only as whole tokens)."""
    spellings = {(s, isinstance(v, str)) for v in _scalars(value) for s in _spellings(v)}
    for text, is_text in sorted(spellings, key=lambda item: -len(item[0])):
        if is_text:
            message = message.replace(text, HIDDEN)
        else:
            message = re.sub(rf"(?<![\w.+-]){re.escape(text)}(?![\w.])", HIDDEN, message)
    return message
