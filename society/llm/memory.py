"""Bounded citizen memory: the last few rounds per citizen, kept as arrays and rendered as quoted data."""

from __future__ import annotations

import json

import numpy as np

MEMORY_OPEN = "<memory>"
MEMORY_CLOSE = "</memory>"


def quote(text: str) -> str:
    """Untrusted text as one JSON string literal, with the memory delimiters escaped.

    Whatever a message says, it stays a quoted value inside the memory block: it cannot close the block,
    start a new line of instructions, or pass for the rules above it.
    """
    return json.dumps(text, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")


class RoundMemory:
    """A ring buffer of the last `rounds` rounds of numeric facts per citizen, plus short notes (quoted)."""

    FIELDS = ("round", "requested", "take", "fair_share", "stock", "punish_received", "punish_paid")

    def __init__(self, n: int, rounds: int) -> None:
        self.rounds = rounds
        self._facts = np.full((rounds, len(self.FIELDS), n), np.nan)
        self._notes: list[dict[int, list[tuple[str, str]]]] = [{} for _ in range(rounds)]
        self._pending: dict[int, list[tuple[str, str]]] = {}
        self._count = 0

    def push(self, facts: dict[str, np.ndarray | float]) -> None:
        """Remember one more round, with the notes added during it (the oldest round is forgotten when full)."""
        pending, self._pending = self._pending, {}
        if self.rounds == 0:
            return
        slot = self._count % self.rounds
        for row, name in enumerate(self.FIELDS):
            self._facts[slot, row, :] = facts.get(name, np.nan)
        self._notes[slot] = pending
        self._count += 1

    def add_note(self, citizen: int, text: str, label: str = "Message heard") -> None:
        """Add a text to the round in progress: a neighbour's message, an announcement, a decision of one's own."""
        self._pending.setdefault(citizen, []).append((label, text))

    def render(self, citizen: int) -> str:
        """The citizen's memory block: oldest round first, notes quoted as data."""
        lines = [MEMORY_OPEN]
        for age in range(min(self._count, self.rounds), 0, -1):
            slot = (self._count - age) % self.rounds
            f = dict(zip(self.FIELDS, self._facts[slot, :, citizen]))
            line = (
                f"Round {int(f['round'])}: you asked {f['requested']:.1f}, got {f['take']:.1f} "
                f"(sustainable share {f['fair_share']:.1f})."
            )
            if not np.isnan(f["stock"]):
                line += f" Stock after regrowth: {f['stock']:.1f}."
            if f["punish_received"] > 0:
                line += f" Neighbours' punishment cost you {f['punish_received']:.1f}."
            if f["punish_paid"] > 0:
                line += f" You spent {f['punish_paid']:.1f} punishing."
            lines.append(line)
            lines += [f"{label}: {quote(note)}" for label, note in self._notes[slot].get(citizen, [])]
        if len(lines) == 1:
            lines.append("Nothing yet: this is the first round.")
        if self._pending.get(citizen):
            lines.append("This round so far:")
            lines += [f"{label}: {quote(note)}" for label, note in self._pending[citizen]]
        lines.append(MEMORY_CLOSE)
        return "\n".join(lines)

    def state_dict(self) -> dict:
        return {"facts": self._facts.copy(), "notes": [dict(n) for n in self._notes], "count": self._count,
                "pending": dict(self._pending)}

    def load_state_dict(self, state: dict) -> None:
        self._facts = state["facts"].copy()
        self._notes = [dict(n) for n in state["notes"]]
        self._count = state["count"]
        self._pending = dict(state["pending"])
