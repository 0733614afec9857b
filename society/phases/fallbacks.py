"""Which LLM citizens a fallback decided this round, and the round's takes over the citizens the model decided.

Every row a fallback decided is flagged: the `fallback` column of the citizens table (any phase this round) and
of the `llm_calls` table (that call). The round's take metrics are written twice, over all citizens and over the
LLM citizens the model itself decided, so a fallback can never pass for the model's behaviour.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from society.core.model import Society


class FallbackLedger:
    """The `fallback` state column: LLM citizens that some phase's fallback decided for this round."""

    def __init__(self, society: Society) -> None:
        self.society = society
        self.decided = society.state.add("fallback", np.bool_)

    def begin_round(self) -> None:
        """Clear last round's flags."""
        self.decided[:] = False

    def mark(self, citizens: np.ndarray) -> None:
        """Flag `citizens` as decided by a fallback this round."""
        self.decided[citizens] = True

    def round_metrics(self) -> dict[str, Any]:
        """The round's fallback count and, where citizens take, mean take and over-share: all present citizens, and
        model-decided."""
        llm = self.society.llm.members
        row: dict[str, Any] = {"llm_fallback_citizens": int(self.decided[llm].sum())}
        if "takes" in self.society.providers:
            state = self.society.state
            model = llm[~self.decided[llm]]
            over = state["take"] > state["fair_share"] + 1e-9
            present = self.society.present_citizens()
            row |= {
                "take_mean_all": float(state["take"][present].mean()),
                "take_mean_model": float(state["take"][model].mean()) if model.size else float("nan"),
                "over_share_all": float(over[present].mean()),
                "over_share_model": float(over[model].mean()) if model.size else float("nan"),
            }
        return row


class LastRequests:
    """What each citizen asked for in one phase's previous round, for its `repeat_last` fallback (a state column
    kept in checkpoints, not recorded; zero before the first round)."""

    def __init__(self, society: Society, index: int) -> None:
        self.values = society.state.add(f"last_request_{index}", np.float64, record=False)

    def repeat(self, citizens: np.ndarray) -> np.ndarray:
        """The citizens' previous requests."""
        return self.values[citizens].copy()

    def remember(self, requests: np.ndarray) -> None:
        """Keep this round's requests for the next."""
        self.values[:] = requests
