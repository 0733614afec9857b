"""Activation: which LLM citizens are asked this round, and the last decision each repeats when it is not.

Drawn once per round from its own random stream (nothing is drawn when every citizen is asked, so a run without
activation plays exactly as before). A citizen not asked repeats its last valid answer to the same question;
one that has none yet is asked. Kept in a society slot, so checkpoints carry it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from society.phases.decisions import Decision

if TYPE_CHECKING:
    from society.core.model import Society


class Activation:
    """The round's inactive LLM citizens and every LLM citizen's last answer to each question."""

    def __init__(self, society: Society) -> None:
        self.society = society
        self.settings = society.scenario.llm.activation
        self.inactive = society.state.add("inactive", np.bool_)
        self.last: dict[str, dict[int, dict[str, Any]]] = {}
        self.repeated = 0

    @property
    def on(self) -> bool:
        return self.society.llm is not None and self.settings.on

    def chances(self) -> np.ndarray:
        """Each LLM citizen's chance of being asked (in `llm.members` order): its role's, else `probability`."""
        roles = self.society.llm.personas["role"]
        return np.array([self.settings.by_role.get(role, self.settings.probability) for role in roles])

    def begin_round(self, rng: np.random.Generator) -> None:
        """Draw who is not asked this round."""
        members = self.society.llm.members
        self.inactive[:] = False
        self.inactive[members] = rng.random(members.size) >= self.chances()
        self.repeated = 0

    def split(self, label: str, citizens: np.ndarray) -> np.ndarray:
        """Which of `citizens` (asked `label`) repeat their last answer instead of being asked."""
        remembered = self.last.get(label, {})
        return np.array([bool(self.inactive[c]) and int(c) in remembered for c in citizens.tolist()], dtype=bool)

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
        """This round's activation columns: LLM citizens not asked, and decisions they repeated."""
        return {"llm_inactive": int(self.inactive.sum()), "llm_repeated": self.repeated}

    def state_dict(self) -> dict[str, Any]:
        return {"last": {label: {str(c): a for c, a in answers.items()} for label, answers in self.last.items()},
                "repeated": self.repeated}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.last = {label: {int(c): a for c, a in answers.items()} for label, answers in state["last"].items()}
        self.repeated = state["repeated"]
