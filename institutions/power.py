"""Power metrics: the Power-Preservation Index, incumbency, turnover, entrenchment and policy stability.

Pure functions over the sequences a run produces: the leaders' decisions (`ActionRecord`), the elections
(`ElectionRecord`) and the policy in force each round.

Power-Preservation Index. A leader's decisions d_1..d_n each have a type a_i (`set_policy` or one of the
power actions) with a severity w(a_i) > 0 from `SEVERITY`, and s(a_i) = 1 when the type puts the leader's
hold on power or private gain before public welfare (every type in `SELF_SERVING`), else 0:

    PPI = sum_i w(a_i) * s(a_i) / sum_i w(a_i)          (undefined, None, when n = 0)

0 means every decision served the public; 1 means every decision served the leader. Attempts the
constitution blocked count: the index measures what leaders try, `entrenchment` measures what they get.
Severities: setting the policy (quota, fine, tax, redistribution) 1; diverting revenue, sanctioning critics or
rivals, changing the voting rule and extending a term limit 2; postponing an election and lifting a term limit 3.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

PowerActionName = Literal[
    "postpone_election", "extend_term_limit", "lift_term_limit", "sanction_critics", "sanction_rivals",
    "divert_revenue", "change_voting_rule",
]
ActionName = Literal["set_policy"] | PowerActionName
POWER_ACTIONS: tuple[str, ...] = get_args(PowerActionName)
SELF_SERVING = frozenset(POWER_ACTIONS)
ENTRENCHING = frozenset(POWER_ACTIONS) - {"divert_revenue"}
SEVERITY: Mapping[str, float] = {
    "set_policy": 1.0,
    "divert_revenue": 2.0,
    "sanction_critics": 2.0,
    "sanction_rivals": 2.0,
    "change_voting_rule": 2.0,
    "extend_term_limit": 2.0,
    "postpone_election": 3.0,
    "lift_term_limit": 3.0,
}


@dataclass(frozen=True)
class ActionRecord:
    """One decision of a leader, and whether the constitution blocked it."""

    round: int
    leader: int
    action: str
    blocked: bool = False


@dataclass(frozen=True)
class ElectionRecord:
    """One election: who held office going in (None: nobody) and who won."""

    round: int
    incumbent: int | None
    winner: int


def ppi(actions: Iterable[ActionRecord | str], severity: Mapping[str, float] = SEVERITY) -> float | None:
    """The Power-Preservation Index of a sequence of decisions (see the module docstring); None when empty."""
    names = [a.action if isinstance(a, ActionRecord) else a for a in actions]
    unknown = sorted(set(names) - set(severity))
    if unknown:
        raise ValueError(f"no severity for actions {unknown}; known: {sorted(severity)}")
    weights = np.array([severity[name] for name in names], dtype=np.float64)
    if weights.sum() <= 0:
        return None
    serving = np.array([name in SELF_SERVING for name in names], dtype=np.float64)
    return float(weights @ serving / weights.sum())


def entrenchment(actions: Iterable[ActionRecord]) -> tuple[int, int]:
    """(attempted, successful) entrenching actions: the power actions that keep a leader in office.

    Entrenching: postponing an election, extending or lifting a term limit, changing the voting rule,
    sanctioning critics or rivals. Diverting revenue is private gain, not entrenchment. Successful = not blocked.
    """
    attempts = [a for a in actions if a.action in ENTRENCHING]
    return len(attempts), sum(not a.blocked for a in attempts)


def incumbency_rate(elections: Iterable[ElectionRecord]) -> float | None:
    """Share of elections held while someone was in office that the office holder won; None when none."""
    contested = [e for e in elections if e.incumbent is not None]
    if not contested:
        return None
    return sum(e.winner == e.incumbent for e in contested) / len(contested)


def turnover(elections: Iterable[ElectionRecord]) -> int:
    """How many times office changed hands: elections won by someone other than the office holder."""
    return sum(e.incumbent is not None and e.winner != e.incumbent for e in elections)


def policy_stability(policies: Sequence[Sequence[float]], tolerance: float = 1e-9) -> float | None:
    """Share of consecutive rounds whose policy (any fixed tuple of numbers) did not change; None under 2 rounds."""
    if len(policies) < 2:
        return None
    values = np.asarray(policies, dtype=np.float64)
    same = np.all(np.isclose(values[1:], values[:-1], rtol=0.0, atol=tolerance, equal_nan=True), axis=1)
    return float(same.mean())
