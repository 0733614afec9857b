"""Pydantic models as JSON schemas for guided decoding, and answer validation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)
Fallback = Callable[[str | None, Exception], M | None]


def json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """Return the JSON schema that constrains decoding to instances of ``model``."""
    return model.model_json_schema()


def _outermost_object(text: str) -> str | None:
    """Return the substring from the first ``{`` to the last ``}``, if any."""
    start, end = text.find("{"), text.rfind("}")
    return text[start:end + 1] if 0 <= start < end else None


def parse_answer(model: type[M], text: str | None,
                 fallback: Fallback[M] | None = None) -> tuple[M | None, bool]:
    """Validate ``text`` into ``model``: ``(value, True)``, else ``(fallback(...), False)``.

    Text around a single JSON object (prose, code fences) is tolerated. On failure the
    fallback gets the raw text and the error; without a fallback the value is None.
    """
    error: Exception = ValueError("no answer text")
    if text is not None:
        for candidate in dict.fromkeys((text, _outermost_object(text))):
            if candidate is None:
                continue
            try:
                return model.model_validate_json(candidate), True
            except ValidationError as exc:
                error = exc
    return (fallback(text, error) if fallback is not None else None), False
