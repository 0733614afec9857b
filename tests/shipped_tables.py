"""Every shipped scenario, shrunk, played to its end; each table reduced to a digest that no refactor may move.

LLM scenarios are answered by `SchemaAnswers`: a deterministic stand-in that builds each answer from the
request's JSON schema, seeded by the prompt text, so the digests also pin every prompt. One answer in
`INVALID_EVERY` is deliberately not JSON, so the fallback paths are pinned too.

Events are digested as the recorder writes them (each round's events file, read back), and each round's file
must equal `Society.round_events()`.

`python -m tests.shipped_tables --write` records the digests (done once, before a refactor).
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from llm_backend.client import ChatRequest, Result
from society import Society, load_scenario
from society.phases.survey import round_answers
from society.rundir.events_file import RoundEvents

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
DIGESTS = Path(__file__).with_name("shipped_tables.json")
INVALID_EVERY = 11
UNSTABLE_COLUMNS = {"latency_s"}  # wall-clock time, different on every run

SHRUNK: dict[str, list[str]] = {
    "village_10k": ["population.size=400", "rounds=15"],
    "village_llm": ["population.size=24", "rounds=4"],
    "village_llm_10k": ["population.size=300", "rounds=4", "commons.capacity=30000", "commons.initial_stock=15000",
                        "commons.collapse_threshold=300"],
    "institutions_none": ["rounds=15"],
    "institutions_charter": ["rounds=15"],
    "institutions_mediated": ["rounds=15"],
    "norms_rich_altruistic": ["rounds=12"],
    "norms_rich_selfish": ["rounds=12"],
    "norms_scarce_altruistic": ["rounds=12"],
    "norms_scarce_selfish": ["rounds=12"],
    **{f"norms_{kind}_llm": ["commons.on_collapse=continue"]
       for kind in ("rich_altruistic", "rich_selfish", "scarce_selfish")},
    # the deliberate garbage answers happen to fail 3 of round 1's 5 norm_punish asks: played on, not stopped
    "norms_scarce_altruistic_llm": ["commons.on_collapse=continue", "llm.fallback_threshold=1.0"],
}


def scenario_names() -> list[str]:
    return sorted(path.stem for path in SCENARIOS.glob("*.yaml"))


class SchemaAnswers:
    """Answers every request with a value drawn from its JSON schema, seeded by the request's messages."""

    model = "schema-answers"

    def complete(self, requests: Sequence[ChatRequest]) -> list[Result]:
        results = []
        for index, request in enumerate(requests):
            text = json.dumps([dict(m) for m in request.messages], sort_keys=True)
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            rng = random.Random(seed)
            if seed % INVALID_EVERY == 0:
                answer = "I would rather not say."
            else:
                answer = json.dumps(_value(request.schema or {}, request.schema or {}, rng))
            results.append(Result(
                index=index, ok=True, text=answer, finish_reason="stop", prompt_tokens=len(text) // 4,
                completion_tokens=len(answer) // 4, latency_s=0.0, attempts=1, cached=False, sample_index=0,
                key=hashlib.sha256(text.encode()).hexdigest()[:16],
            ))
        return results


def _value(spec: Mapping[str, Any], root: Mapping[str, Any], rng: random.Random) -> Any:
    """A value that fits `spec` (a JSON schema fragment), chosen by `rng`."""
    if "$ref" in spec:
        spec = root["$defs"][spec["$ref"].rsplit("/", 1)[-1]]
    for key in ("anyOf", "oneOf"):
        if key in spec:
            options = [o for o in spec[key] if o.get("type") != "null"] or spec[key]
            return _value(rng.choice(options), root, rng)
    if "const" in spec:
        return spec["const"]
    if "enum" in spec:
        return rng.choice(spec["enum"])
    kind = spec.get("type")
    if isinstance(kind, list):
        kind = next(k for k in kind if k != "null")
    if kind == "object":
        return {name: _value(sub, root, rng) for name, sub in spec.get("properties", {}).items()}
    if kind == "array":
        most = min(spec.get("maxItems", 3), 3)
        least = spec.get("minItems", 0)
        return [_value(spec.get("items", {}), root, rng) for _ in range(rng.randint(least, max(least, most)))]
    if kind in ("number", "integer"):
        low = spec.get("minimum", spec.get("exclusiveMinimum", 0))
        high = spec.get("maximum", spec.get("exclusiveMaximum", low + 20))
        value = low + (high - low) * rng.random() ** 2  # mostly small: a commons then lasts a few rounds
        return int(value) if kind == "integer" else round(value, 2)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "string":
        words = ["share", "fairly", "take", "less", "trust", "me", "the", "lake", "keep", "full"]
        text = " ".join(rng.choice(words) for _ in range(6))
        return text[: spec.get("maxLength", len(text))]
    return None


def frame_digest(frame: pl.DataFrame) -> str:
    """A digest of a table's columns and values that depends on no library's own hashing or file format."""
    digest = hashlib.sha256()
    for name in sorted(set(frame.columns) - UNSTABLE_COLUMNS):
        column = frame[name]
        digest.update(f"{name}:{column.dtype}:".encode())
        if column.dtype.is_numeric() or column.dtype == pl.Boolean:
            values = column.to_numpy()
            digest.update(np.ascontiguousarray(values, dtype=np.float64 if values.dtype.kind == "f" else None)
                          .tobytes() if values.dtype.kind != "O" else json.dumps(values.tolist()).encode())
        else:
            digest.update(json.dumps(column.to_list(), ensure_ascii=False, default=str).encode())
    return digest.hexdigest()[:20]


def written_events(society: Society) -> pl.DataFrame:
    """The round's events file as the recorder writes it, read back; it must hold `round_events()`."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "events.parquet"
        RoundEvents(society.round_event_batches()).write(path)
        written = pl.read_parquet(path)
    if not written.equals(society.round_events()):
        raise AssertionError(f"round {society.round}: the events file differs from round_events()")
    return written


def play(name: str) -> dict[str, str]:
    """Play the shrunk scenario to its end; the digest of each table over all rounds."""
    society = Society(load_scenario(SCENARIOS / f"{name}.yaml", SHRUNK.get(name, [])))
    if society.llm is not None:
        society.llm.connection = SchemaAnswers()
    tables: dict[str, list[pl.DataFrame]] = {"rounds": [], "citizens": [], "events": [], "llm_calls": []}
    error = ""
    try:
        while society.running and society.round < society.scenario.rounds:
            society.step()
            tables["rounds"].append(pl.DataFrame([society.round_row]))
            tables["citizens"].append(society.round_citizens())
            tables["events"].append(written_events(society))
            if society.llm is not None:
                tables["llm_calls"].append(society.llm.round_calls())
            survey = round_answers(society)
            if survey is not None:
                tables.setdefault("survey", []).append(survey)
    except RuntimeError as stopped:  # a fallback-rate stop is part of the behaviour being pinned
        error = f"{type(stopped).__name__}: {stopped}"
    digests = {table: frame_digest(pl.concat(frames, how="diagonal_relaxed")) for table, frames in tables.items()
               if frames}
    digests["rounds_played"] = str(society.round)
    if error:
        digests["stopped"] = error
    return digests


def main(argv: list[str]) -> None:
    if argv != ["--write"]:
        raise SystemExit("usage: python -m tests.shipped_tables --write")
    recorded = {name: play(name) for name in scenario_names()}
    DIGESTS.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
    print(f"wrote {DIGESTS} ({len(recorded)} scenarios)")


if __name__ == "__main__":
    main(sys.argv[1:])
