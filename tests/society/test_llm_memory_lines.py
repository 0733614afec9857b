"""What LLM citizens remember of a round: the fragments the phases supply, not columns named by the core."""

from __future__ import annotations

import numpy as np
import pytest

from society import Society
from society.llm.memory import round_lines
from society.phases import NoParams, Phase

from .conftest import make_scenario


def llm_society(schedule: list) -> Society:
    """Ten citizens, half of them LLM citizens (never asked here), playing `schedule`."""
    policies = [{"policy": "llm", "fraction": 0.5}, {"policy": "sustainable", "fraction": 0.5}]
    return Society(make_scenario(population={"size": 10, "policies": policies}, schedule=schedule))


def remembered(society: Society, position: int = 0) -> list[str]:
    """The lines of one LLM citizen's memory block, without its delimiters."""
    return society.llm.memory.render(position).splitlines()[1:-1]


class Saying(Phase):
    """A phase that says `text` (with the citizen's number) under `key`."""

    name = "saying"

    def __init__(self, society: Society, key: str, text: str) -> None:
        super().__init__(society, NoParams(), 0)
        self.key, self.text = key, text

    def memory(self, citizens: np.ndarray) -> dict[str, list[str]]:
        return {self.key: [self.text.format(citizen=int(c)) if self.text else "" for c in citizens]}


class Silent(Phase):
    """A phase without a memory hook."""

    name = "silent"


def test_the_line_joins_each_keys_first_fragment_in_schedule_order_and_skips_empty_ones() -> None:
    society = llm_society(["regrow"])
    society.phases = [
        Saying(society, "first", "A{citizen}."), Silent(society, NoParams(), 1), Saying(society, "quiet", ""),
        Saying(society, "second", "B."), Saying(society, "first", "ignored."),
    ]
    society.llm.end_round()
    citizen = int(society.llm.members[0])
    assert remembered(society) == [f"Round {society.round}: A{citizen}. B."]


def test_a_phase_without_a_memory_hook_adds_nothing() -> None:
    society = llm_society(["regrow"])
    society.phases = [Silent(society, NoParams(), 0)]
    society.llm.end_round()
    assert remembered(society) == [f"Round {society.round}:"]


def test_several_punishing_phases_give_one_punishment_fragment_after_the_harvest() -> None:
    society = llm_society([{"phase": "harvest", "params": {"show_sustainable_share": True}}, "regrow",
                           {"phase": "punish", "params": {"threshold": 1.2}}, "norm_punish"])
    members, state, commons = society.llm.members, society.state, society.commons
    state["requested"][members], state["take"][members], state["fair_share"][members] = 4.0, 3.0, 2.0
    state["punish_received"][members], state["punish_paid"][members] = 6.0, 1.0
    society.llm.end_round()
    stock = commons.stock[commons.patch_of_citizen[members[0]]]
    assert remembered(society) == [
        f"Round {society.round}: you asked 4.0, got 3.0 (sustainable share 2.0). Stock after regrowth: {stock:.1f}. "
        "Neighbours' punishment cost you 6.0. You spent 1.0 punishing."
    ]


def test_punishment_is_not_mentioned_in_a_round_without_any() -> None:
    society = llm_society(["harvest", "regrow", "punish"])
    society.llm.end_round()
    (line,) = remembered(society)
    assert line.startswith(f"Round {society.round}: you asked ") and "punish" not in line


def test_memory_lines_survive_a_checkpoint() -> None:
    society = llm_society(["harvest", "regrow", "punish"])
    society.llm.end_round()
    society.llm.remember(society.llm.members[:1], ["meet at the lake"])
    restored = llm_society(["harvest", "regrow", "punish"])
    restored.llm.load_state_dict(society.llm.state_dict())
    assert restored.llm.memory.render(0) == society.llm.memory.render(0)
    assert "This round so far:" in restored.llm.memory.render(0)


def test_a_phase_must_give_one_fragment_per_citizen() -> None:
    with pytest.raises(ValueError, match="memory fragments 'harvest': expected one per citizen \\(3\\), got 2"):
        round_lines(1, {"harvest": ["a", "b"]}, 3)


def test_an_investor_remembers_its_tokens_in_the_pool_not_a_harvest() -> None:
    society = llm_society([{"phase": "invest", "params": {"endowment": 25}}])
    society.state["take"][society.llm.members] = 7.0
    society.llm.end_round()
    assert remembered(society) == [f"Round {society.round}: you put 7.0 of your 25 tokens in the common pool."]
