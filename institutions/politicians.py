"""Heuristic politicians: honest, populist and entrencher, so institutions can be studied without an LLM.

(A fourth kind, `llm`, sits on an LLM citizen and decides for itself; see `institutions.elections` and
`institutions.leaders`. It promises the base policy when its campaign answer fails.)

All three promise a policy in their campaign; what they do in office differs:

* honest: keeps its promise (the base policy) and takes no power action.
* populist: promises and sets a looser quota (`POPULIST_QUOTA` x the base), no fines and no tax, and pays
  `POPULIST_PATRONAGE` of the treasury to its allies (the citizens who ranked it first).
* entrencher: promises the base policy but, in office, fines harder and taxes more, diverts
  `ENTRENCHER_DIVERSION` of the treasury to itself, sanctions critics and rivals every round, and when an
  election is due next round: lifts a term limit that would bar it, then, if a poll says it would lose, changes
  to a voting rule under which it would win, or else postpones the election by a term.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from institutions.decisions import (
    ChangeVotingRule,
    DivertRevenue,
    LeaderDecision,
    LiftTermLimit,
    PolicyDecision,
    PostponeElection,
    PowerAction,
    SanctionCitizens,
)
from institutions.voting import RULES

Kind = Literal["honest", "populist", "entrencher"]
KINDS: tuple[str, ...] = get_args(Kind)
PoliticianKind = Literal[Kind, "llm"]
POLITICIAN_KINDS: tuple[str, ...] = (*KINDS, "llm")
POPULIST_QUOTA = 1.5
POPULIST_PATRONAGE = 0.3
ENTRENCHER_FINE = 2.0
ENTRENCHER_TAX = 3.0
ENTRENCHER_DIVERSION = 0.5

STATEMENTS: dict[str, str] = {
    "honest": "I will keep the harvest at the sustainable share ({quota:.1f}x), fine overuse, tax {tax:.0%} "
              "and return {redistribution:.0%} of the treasury to everyone.",
    "populist": "More for everyone: I will raise your quota to {quota:.1f}x the share, scrap fines and cut "
                "taxes to {tax:.0%}. The elites will not stop us.",
    "entrencher": "Order and stability: I will keep the commons safe at {quota:.1f}x the share with a "
                  "{tax:.0%} tax. Only strong leadership can protect you.",
}


def promise(kind: str, base: PolicyDecision) -> PolicyDecision:
    """The policy a politician of `kind` campaigns on."""
    if kind == "populist":
        return PolicyDecision(quota=min(10.0, POPULIST_QUOTA * base.quota), fine=0.0, tax=0.0,
                              redistribution=base.redistribution)
    return base


def campaign_statement(kind: str, promised: PolicyDecision) -> str:
    """A politician's short, fixed campaign text with its promised numbers filled in (an LLM politician's
    fallback is the honest text)."""
    return STATEMENTS.get(kind, STATEMENTS["honest"]).format(**promised.model_dump())


@dataclass(frozen=True)
class LeaderContext:
    """What a leader knows when it decides."""

    round: int
    base: PolicyDecision
    rule: str
    next_election: int | None
    term_limit: int | None
    consecutive_terms: int
    election_every: int
    critics: np.ndarray
    rivals: np.ndarray
    max_targets: int
    sanction_amount: float
    wins_under: Callable[[str, bool], bool]
    """Whether the leader would win an election held now under a rule (the flag: with the term limit lifted)."""


def leader_decision(kind: str, context: LeaderContext, rng: np.random.Generator) -> LeaderDecision:
    """The decision of a heuristic leader of `kind` this round."""
    base = context.base
    if kind == "honest":
        return LeaderDecision(policy=base)
    if kind == "populist":
        policy = promise("populist", base)
        return LeaderDecision(policy=policy, actions=[DivertRevenue(share=POPULIST_PATRONAGE, to="allies")])
    policy = PolicyDecision(quota=base.quota, fine=ENTRENCHER_FINE * base.fine,
                            tax=min(1.0, ENTRENCHER_TAX * base.tax), redistribution=base.redistribution)
    actions: list[PowerAction] = [DivertRevenue(share=ENTRENCHER_DIVERSION, to="self")]
    if context.critics.size:
        chosen = rng.choice(context.critics, size=min(context.max_targets, context.critics.size), replace=False)
        actions.append(SanctionCitizens(action="sanction_critics", targets=np.sort(chosen).tolist(),
                                        amount=context.sanction_amount))
    if context.rivals.size:
        actions.append(SanctionCitizens(action="sanction_rivals", targets=context.rivals.tolist(),
                                        amount=context.sanction_amount))
    if context.next_election is not None and context.next_election == context.round + 1:
        actions += _hold_on(context)
    return LeaderDecision(policy=policy, actions=actions)


def _hold_on(context: LeaderContext) -> list[PowerAction]:
    """An entrencher's moves before an election: stay eligible, then win it or put it off.

    Its polls count on its own lift of the term limit (taken first, so in force by the election).
    """
    lifting = context.term_limit is not None and context.consecutive_terms >= context.term_limit
    actions: list[PowerAction] = [LiftTermLimit()] if lifting else []
    if context.wins_under(context.rule, lifting):
        return actions
    winning = [rule for rule in RULES if rule != context.rule and context.wins_under(rule, lifting)]
    if winning:
        actions.append(ChangeVotingRule(rule=winning[0]))
    else:
        actions.append(PostponeElection(rounds=max(1, context.election_every)))
    return actions
