"""Activation: which LLM citizens are asked this round, and what each does when it is not.

Drawn once per round from its own random stream (nothing is drawn when every citizen is asked, so a run without
activation plays exactly as before). A citizen not asked follows the scenario's heuristic policy where it names one
and the question has a heuristic answer (a take); otherwise it repeats its last valid answer to the same question,
and one that has none yet is asked. Kept in a society slot, so checkpoints carry it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from society.phases.decisions import Decision

if TYPE_CHECKING:
    from society.core.model import Society


class Activation:
    """The round's inactive LLM citizens, every LLM citizen's last answer to each question, and what this round's
    inactive citizens repeated or decided by the followed heuristic policy."""

    def __init__(self, society: Society) -> None:
        self.society = society
        self.settings = society.scenario.llm.activation
        self.inactive = society.state.add("inactive", np.bool_)
        self.last: dict[str, dict[int, dict[str, Any]]] = {}
        self.repeated = 0
        self.followed = 0

    @property
    def on(self) -> bool:
        return self.society.llm is not None and self.settings.on

    def chances(self) -> np.ndarray:
        """Each LLM citizen's chance of being asked (in `llm.members` order): its role's, else `probability`."""
        llm = self.society.llm
        roles = llm.personas.get("role", [])
        return np.array([self.settings.by_role.get(roles[k], self.settings.probability)
                         for k in llm.position[llm.members].tolist()], dtype=np.float64)

    def begin_round(self, rng: np.random.Generator) -> None:
        """Draw who is not asked this round."""
        members = self.society.llm.members
        self.inactive[:] = False
        self.inactive[members] = rng.random(members.size) >= self.chances()
        self.repeated = 0
        self.followed = 0

    def split(self, label: str, citizens: np.ndarray, answerable: bool) -> tuple[np.ndarray, np.ndarray]:
        """Which of `citizens` (asked `label`) follow the heuristic policy, and which repeat their last answer,
        instead of being asked. Every inactive one follows where the scenario names a policy and the question has
        a heuristic answer (`answerable`); otherwise an inactive one with a last answer repeats it."""
        if answerable and self.settings.followed is not None:
            return self.inactive[citizens].copy(), np.zeros(citizens.size, dtype=bool)
        remembered = self.last.get(label, {})
        repeat = np.array([bool(self.inactive[c]) and int(c) in remembered for c in citizens.tolist()], dtype=bool)
        return np.zeros(citizens.size, dtype=bool), repeat

    def follow(self, citizens: np.ndarray, answer: Callable[[Any, np.ndarray], list[Decision]]) -> list[Decision]:
        """The decisions of `citizens` following the heuristic policy, as the question's `answer` gives them."""
        self.followed += citizens.size
        return answer(self.settings.followed, citizens)

    def repeat(self, label: str, citizens: np.ndarray, decision: type[Decision]) -> list[Decision]:
        """The last answers of `citizens` to `label`, as `decision`s (a reason, if any, is not repeated)."""
        remembered = self.last[label]
        fields = decision.model_fields
        self.repeated += citizens.size
        return [decision.model_validate({k: v for k, v in remembered[int(c)].items() if k in fields})
                for c in citizens.tolist()]

    def remember(self, label: str, citizens: np.ndarray, answers: list[Decision | None]) -> None:
        """Keep each valid answer as the citizen's last one to `label`."""
        remembered = self.last.setdefault(label, {})
        for citizen, answer in zip(citizens.tolist(), answers):
            if answer is not None:
                remembered[citizen] = answer.model_dump(mode="json")

    def round_metrics(self) -> dict[str, Any]:
        """This round's activation columns: LLM citizens not asked, decisions they repeated, and (where the
        scenario names a heuristic policy) decisions they took by it."""
        columns = {"llm_inactive": int(self.inactive.sum()), "llm_repeated": self.repeated}
        if self.settings.followed is not None:
            columns["llm_heuristic"] = self.followed
        return columns

    def state_dict(self) -> dict[str, Any]:
        return {"last": {label: {str(c): a for c, a in answers.items()} for label, answers in self.last.items()},
                "repeated": self.repeated, "followed": self.followed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.last = {label: {int(c): a for c, a in answers.items()} for label, answers in state["last"].items()}
        self.repeated = state["repeated"]
        self.followed = state.get("followed", 0)  # absent from checkpoints written before heuristics could be followed
