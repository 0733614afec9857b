"""Bounded citizen memory: the last few rounds per citizen, one line each (what the phases said) plus quoted notes.

The core names no phase's facts: at the end of a round every phase may give each LLM citizen a text fragment
under a key (`Phase.memory`); `round_lines` joins them into the citizen's line for that round.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

MEMORY_OPEN = "<memory>"
MEMORY_CLOSE = "</memory>"


def quote(text: str) -> str:
    """Untrusted text as one JSON string literal, with the memory delimiters escaped.

    Whatever a message says, it stays a quoted value inside the memory block: it cannot close the block,
    start a new line of instructions, or pass for the rules above it.
    """
    return json.dumps(text, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")


def round_lines(round_number: int, fragments: Mapping[str, Sequence[str]], count: int) -> list[str]:
    """Each of `count` citizens' line for a round: `Round r:` and its non-empty fragments, in the given order."""
    for key, column in fragments.items():
        if len(column) != count:
            raise ValueError(f"memory fragments {key!r}: expected one per citizen ({count}), got {len(column)}")
    head = f"Round {round_number}:"
    columns = list(fragments.values())
    return [head + "".join(f" {column[k]}" for column in columns if column[k]) for k in range(count)]


class RoundMemory:
    """A ring buffer of the last `rounds` rounds per citizen: one line of facts and short notes (quoted) each."""

    def __init__(self, n: int, rounds: int) -> None:
        self.n = n
        self.rounds = rounds
        self._lines: list[list[str]] = [[] for _ in range(rounds)]
        self._notes: list[dict[int, list[tuple[str, str]]]] = [{} for _ in range(rounds)]
        self._pending: dict[int, list[tuple[str, str]]] = {}
        self._count = 0
        self._joined: dict[int, int] = {}  # a newcomer's first remembered round (rounds pushed when it came)

    def grow(self, k: int) -> None:
        """Make room for `k` newcomers, who remember nothing of the rounds before they came."""
        self._lines = [lines + [""] * k if lines else lines for lines in self._lines]
        self._joined |= {citizen: self._count for citizen in range(self.n, self.n + k)}
        self.n += k

    def push(self, lines: Sequence[str]) -> None:
        """Remember one more round, one line per citizen, with the notes added during it (the oldest round is
        forgotten when full)."""
        if len(lines) != self.n:
            raise ValueError(f"expected {self.n} memory lines, got {len(lines)}")
        pending, self._pending = self._pending, {}
        if self.rounds == 0:
            return
        slot = self._count % self.rounds
        self._lines[slot] = list(lines)
        self._notes[slot] = pending
        self._count += 1

    def add_note(self, citizen: int, text: str, label: str = "Message heard") -> None:
        """Add a text to the round in progress: a neighbour's message, an announcement, a decision of one's own."""
        self._pending.setdefault(citizen, []).append((label, text))

    def render(self, citizen: int) -> str:
        """The citizen's memory block: oldest round first, notes quoted as data."""
        lines = [MEMORY_OPEN]
        joined = self._joined.get(citizen, 0)
        for age in range(min(self._count - joined, self.rounds), 0, -1):
            slot = (self._count - age) % self.rounds
            lines.append(self._lines[slot][citizen])
            lines += [f"{label}: {quote(note)}" for label, note in self._notes[slot].get(citizen, [])]
        if len(lines) == 1:
            lines.append("Nothing yet: you have just arrived." if citizen in self._joined
                         else "Nothing yet: this is the first round.")
        if self._pending.get(citizen):
            lines.append("This round so far:")
            lines += [f"{label}: {quote(note)}" for label, note in self._pending[citizen]]
        lines.append(MEMORY_CLOSE)
        return "\n".join(lines)

    def state_dict(self) -> dict:
        """The buffer as JSON data (citizens as string keys, notes as [label, text] pairs); with newcomers, the
        round each came."""
        state = {"lines": [list(lines) for lines in self._lines], "notes": [_notes_out(n) for n in self._notes],
                 "count": self._count, "pending": _notes_out(self._pending)}
        return state | ({"joined": {str(c): count for c, count in self._joined.items()}} if self._joined else {})

    def load_state_dict(self, state: dict) -> None:
        self._lines = [list(lines) for lines in state["lines"]]
        self._notes = [_notes_in(n) for n in state["notes"]]
        self._count = int(state["count"])
        self._pending = _notes_in(state["pending"])
        self._joined = {int(c): int(count) for c, count in state.get("joined", {}).items()}


def _notes_out(notes: Mapping[int, list[tuple[str, str]]]) -> dict[str, list[list[str]]]:
    return {str(citizen): [[label, text] for label, text in pairs] for citizen, pairs in notes.items()}


def _notes_in(notes: Mapping[str, list[list[str]]]) -> dict[int, list[tuple[str, str]]]:
    return {int(citizen): [(str(label), str(text)) for label, text in pairs] for citizen, pairs in notes.items()}
