"""Fehr & Gächter's public goods game with an optional punishment stage, as one phase.

Citizens are matched into groups of `group_size` (new random groups every round with `stranger` matching, fixed
ones with `partner`); the last group is smaller when the population does not divide evenly. Each puts part of its
`endowment` into the group project; every token put in returns `mpcr` to every member.

Behavioural model (heuristic citizens). Types follow Fischbacher, Gächter & Fehr (2001, Economics Letters): about
half conditional cooperators, about a third free riders. A `conditional` cooperator gives `match` times what the
others in its last group gave on average (first contribution drawn from `initial`, a share of the endowment);
FGF 2001 find conditional cooperators' average schedule below the diagonal ("a little less than others"), and
Fischbacher & Gächter (2010, AER) show this imperfect matching drives the decay. The default `match` 0.8 is our
reading of that below-diagonal schedule, not a fitted estimate. `greedy` free-rides (gives 0), `sustainable`
gives the whole endowment, `imitator` copies the best-paid member of its last group when that member earned
more, `fixed` gives its `amount`.

Punishment (Fehr & Gächter 2000, AER; 2002, Nature): punishment received rises with how far the target's
contribution falls below the punisher's. Every non-free-rider assigns each group member who gave less than it did
`rate` points per token of that negative deviation, at most `max_points`; a point costs `cost` and removes
`impact` (1:3 in the 2002 design). `rate` 0.5 is a free parameter in the range of FG 2000's expenditures.

Response to punishment, learned rather than built in. Each heuristic citizen holds a belief k: the punishment
points it expects per token it gives below the others' mean, updated after each round in which it fell short by
k <- (1 - learning) k + learning (points received / shortfall). Giving one token less than the others' mean saves
1 - mpcr and costs impact * k in expected fines, so a citizen who now expects impact * k > 1 - mpcr gives at
least the others' last mean (a myopic best response to its belief); otherwise its type decides. Without
punishment k stays 0 and conditional cooperators meeting free riders decay; with it, free riders learn to
contribute and unconditional cooperators pull the others' mean up, so the rise emerges from play.

LLM citizens are asked for their contribution, told what the others in their last group gave, and keep their
answer; in the punishment stage they punish by the rule above. A missing or invalid answer gets the scenario's
`fallback`: `nothing` (the default: it contributes 0, abstaining) or `repeat_last` (what it gave last round; 0 in
the first round, when there is nothing to repeat). No fallback gives a share of the endowment, which would pass
for cooperation; every fallback is flagged (the `fallback` column of `citizens` and `llm_calls`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from society import sanctioning
from society.phases import Phase
from society.phases.deciding import Fallback, Question
from society.phases.decisions import HarvestDecision
from society.scenario.bounds import MAX_AMOUNT, MAX_CITIZENS, MAX_FACTOR
from society.scenario.schema import ConditionalPolicy, FixedPolicy, GreedyPolicy, ImitatorPolicy, SustainablePolicy

RULE = (
    "Public goods: citizens are put in groups of {group_size}; each receives {endowment:g} tokens and puts some of "
    "them into a group project; every token put in returns {mpcr:g} to every member of the group.{punishment}"
)
OBSERVATION = (
    "Round {round} of {rounds}. You receive {endowment:g} tokens.{last} How many of your tokens do you put into "
    "the group project? {format}"
)
LAST_ROUND = " Last round you gave {given:.1f}; the others in your group gave {others:.1f} on average."
PUNISHMENT = (
    " Then members who gave at least their group's mean may spend points on those who gave less: a point costs "
    "{cost:g} and removes {impact:g}."
)


class PublicGoodsParams(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    group_size: int = Field(4, ge=2, le=MAX_CITIZENS)
    endowment: float = Field(20.0, gt=0, le=MAX_AMOUNT, description="tokens each citizen gets per round")
    mpcr: float = Field(0.4, gt=0, le=MAX_FACTOR, description="what each token put in returns to every group member")
    matching: Literal["stranger", "partner"] = "stranger"
    punishment: bool = Field(False, description="play the punishment stage")
    cost: float = Field(1.0, ge=0, le=MAX_AMOUNT, description="what one punishment point costs the punisher")
    impact: float = Field(3.0, ge=0, le=MAX_AMOUNT, description="what one punishment point removes from the target")
    rate: float = Field(0.5, ge=0, le=MAX_FACTOR, description="points per token a target gave below its group's mean")
    max_points: float = Field(10.0, ge=0, le=MAX_AMOUNT, description="most points one punisher assigns one target")
    match: float = Field(0.8, ge=0, le=1, description="share of the others' mean a conditional cooperator gives")
    initial: tuple[float, float] = Field((0.3, 0.8), description="range of conditional cooperators' first share")
    learning: float = Field(
        0.5, ge=0, le=1, description="weight of the last round in a citizen's expected points per token short"
    )
    fallback: Literal["nothing", "repeat_last"] = Field(
        "nothing", description="what an LLM citizen gives when its answer is missing or invalid: nothing, or what "
        "it gave last round (0 in the first round: nothing to repeat)"
    )

    @field_validator("initial")
    @classmethod
    def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 <= value[0] <= value[1] <= 1:
            raise ValueError("expected [low, high] with 0 <= low <= high <= 1")
        return value


@dataclass(frozen=True)
class Groups:
    """A matching: the padded member table (groups x group_size, -1 for empty seats) and each citizen's group."""

    table: np.ndarray
    of_citizen: np.ndarray

    @classmethod
    def from_order(cls, order: np.ndarray, group_size: int) -> "Groups":
        n = order.size
        count = -(-n // group_size)
        table = np.full(count * group_size, -1, np.int64)
        table[:n] = order
        of_citizen = np.empty(n, np.int64)
        of_citizen[order] = np.arange(n) // group_size
        return cls(table.reshape(count, group_size), of_citizen)

    def sums(self, values: np.ndarray) -> np.ndarray:
        """Per group: the sum of `values` over its members."""
        return np.bincount(self.of_citizen, weights=values, minlength=self.table.shape[0])

    def sizes(self) -> np.ndarray:
        return np.bincount(self.of_citizen, minlength=self.table.shape[0])


def punishment_points(
    groups: Groups, contribution: np.ndarray, punisher: np.ndarray, rate: float, max_points: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(punisher, target, points): each `punisher` gives `rate` points per token a member gave below its own."""
    actor = np.broadcast_to(groups.table[:, :, None], (*groups.table.shape, groups.table.shape[1]))
    target = np.broadcast_to(groups.table[:, None, :], actor.shape)
    seated = (actor >= 0) & (target >= 0) & (actor != target)
    safe_actor, safe_target = np.where(seated, actor, 0), np.where(seated, target, 0)
    deviation = contribution[safe_actor] - contribution[safe_target]
    punishes = seated & punisher[safe_actor] & (deviation > 1e-9)
    points = np.minimum(max_points, rate * deviation[punishes])
    keep = points > 0
    return actor[punishes][keep], target[punishes][keep], points[keep]


class PublicGoodsPhase(Phase):
    name = "public_goods"
    Params = PublicGoodsParams

    def __init__(self, society: Any, params: PublicGoodsParams, index: int) -> None:
        super().__init__(society, params, index)
        state, n = society.state, society.num_citizens
        rebuilt = "contribution" in state  # rebuilt by an intervention: contributions so far stay
        self.contribution = state.add("contribution", np.float64)
        self.others_mean = state.add("others_contribution", np.float64, record=False)
        self.points_received = state.add("punishment_points", np.float64)
        self.last_payoff = state.add("pg_payoff", np.float64)
        self.last_group = state.add("pg_group", np.int64, -1, record=False)
        self.expected_points = state.add("pg_expected_points", np.float64, record=False)
        self.partner_order = self.rng.permutation(n)
        for group, spec in enumerate([] if rebuilt else society.policy_specs):
            members = society.group_members[group]
            if isinstance(spec, ConditionalPolicy):
                low, high = params.initial
                self.contribution[members] = params.endowment * self.rng.uniform(low, high, members.size)
            elif isinstance(spec, SustainablePolicy):
                self.contribution[members] = params.endowment
            elif isinstance(spec, ImitatorPolicy):
                self.contribution[members] = params.endowment * self.rng.uniform(0.0, 1.0, members.size)

    def rule(self) -> str:
        p = self.params
        punishment = PUNISHMENT.format(cost=p.cost, impact=p.impact) if p.punishment else ""
        return RULE.format(group_size=p.group_size, endowment=p.endowment, mpcr=p.mpcr, punishment=punishment)

    def decide(self, observation: None) -> np.ndarray:
        """Each citizen's contribution this round: heuristic ones by type, or at least the others' mean if deterred."""
        p = self.params
        played = self.society.round > 1
        path = self.society.deciding
        decided = path.decide(
            self,
            rule=lambda: self._by_policy(played),
            question=self._question(path.llm_citizens, played) if path.llm_citizens.size else None,
            fallback=Fallback(self.params.fallback, lambda failed: self._fallback(failed, played)),
        )
        wanted = decided.rule
        deterred = p.impact * self.expected_points > 1.0 - p.mpcr
        deterred[decided.asked] = False
        wanted[deterred] = np.maximum(wanted[deterred], self.others_mean[deterred])
        wanted[decided.asked] = np.clip(decided.values(lambda answer: answer.amount), 0.0, p.endowment)
        return np.clip(wanted, 0.0, p.endowment)

    def _by_policy(self, played: bool) -> np.ndarray:
        """The heuristic contributions, by policy group."""
        society, p = self.society, self.params
        wanted = self.contribution.copy()
        for group, spec in enumerate(society.policy_specs):
            members = society.group_members[group]
            if isinstance(spec, SustainablePolicy):
                wanted[members] = p.endowment
            elif isinstance(spec, FixedPolicy):
                wanted[members] = spec.amount
            elif isinstance(spec, ConditionalPolicy) and played:
                wanted[members] = p.match * self.others_mean[members]
            elif isinstance(spec, ImitatorPolicy) and played:
                wanted[members] = self._imitated(members)
            elif isinstance(spec, GreedyPolicy):
                wanted[members] = 0.0
        return wanted

    def _fallback(self, failed: np.ndarray, played: bool) -> np.ndarray:
        """What an LLM citizen whose answer failed gives: nothing, or last round's contribution (0 in round 1)."""
        if self.params.fallback == "repeat_last" and played:
            return self.contribution[failed].copy()
        return np.zeros(failed.size)

    def _question(self, members: np.ndarray, played: bool) -> Question:
        """How much each LLM citizen gives, told what the others in its last group gave."""
        society, p = self.society, self.params
        texts = dict(round=society.round, rounds=society.scenario.rounds, endowment=p.endowment,
                     format=society.llm.answer_format(HarvestDecision))
        observations = [
            OBSERVATION.format(last=LAST_ROUND.format(given=self.contribution[c], others=self.others_mean[c])
                               if played else "", **texts)
            for c in members
        ]
        return Question(members, observations, HarvestDecision)

    def _imitated(self, members: np.ndarray) -> np.ndarray:
        """The contribution of the best-paid member of each citizen's last group, where it earned more."""
        best_of_group = np.full(int(self.last_group.max()) + 1, -1, np.int64)
        order = np.lexsort((-self.last_payoff, self.last_group))
        order = order[self.last_group[order] >= 0]  # removed citizens were in no group
        first = np.r_[True, self.last_group[order][1:] != self.last_group[order][:-1]]
        best_of_group[self.last_group[order][first]] = order[first]
        best = best_of_group[self.last_group[members]]
        better = self.last_payoff[best] > self.last_payoff[members]
        return np.where(better, self.contribution[best], self.contribution[members])

    def apply(self, wanted: np.ndarray) -> None:
        """Match the citizens still there into groups, pay them, and settle their punishments."""
        society, state, p = self.society, self.society.state, self.params
        order = self.partner_order if p.matching == "partner" else self.rng.permutation(society.num_citizens)
        players = society.present_citizens()  # removed citizens play no more: matched, paid, punished never
        if society.present is not None:
            position = np.full(society.num_citizens, -1, np.int64)
            position[players] = np.arange(players.size)
            order = position[order[society.present[order]]]
        contribution = wanted[players]
        groups = Groups.from_order(order, p.group_size)
        sums, sizes = groups.sums(contribution), groups.sizes()
        payoff = p.endowment - contribution + p.mpcr * sums[groups.of_citizen]
        others_mean = np.divide(
            sums[groups.of_citizen] - contribution, sizes[groups.of_citizen] - 1,
            out=np.zeros_like(contribution), where=sizes[groups.of_citizen] > 1,
        )
        actors, targets, points = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
        if p.punishment:
            actors, targets, points = punishment_points(groups, contribution, self._punishers()[players], p.rate,
                                                        p.max_points)
        given = np.bincount(actors, weights=points, minlength=players.size)
        received = np.bincount(targets, weights=points, minlength=players.size)
        short = others_mean - contribution
        learned = short > 1e-9
        expected = self.expected_points[players]
        expected[learned] += p.learning * (received[learned] / short[learned] - expected[learned])
        payoff -= p.cost * given + p.impact * received
        for column, values in ((state["wealth"], payoff), (state["punish_paid"], p.cost * given),
                               (state["punish_received"], p.impact * received)):
            column[players] += values
        for column, values in ((self.expected_points, expected), (self.others_mean, others_mean),
                               (self.contribution, contribution), (self.points_received, received),
                               (self.last_payoff, payoff)):
            column[players] = values
        self.last_group[:] = -1
        self.last_group[players] = groups.of_citizen
        society.record_events(self.name, "punish", players[actors], players[targets], cost=p.cost * points,
                              impact=p.impact * points)
        self._row = {
            "pg_contribution_mean": float(contribution.mean()),
            "pg_contribution_share": float(contribution.mean() / p.endowment),
            "pg_punishment_points": float(points.sum()),
            "pg_payoff_mean": float(payoff.mean()),
        }

    def _punishers(self) -> np.ndarray:
        """Per citizen: whether it punishes, i.e. is not a free rider (Fehr & Gächter's punishers were cooperators)."""
        punisher = np.ones(self.society.num_citizens, dtype=np.bool_)
        for group, spec in enumerate(self.society.policy_specs):
            if isinstance(spec, GreedyPolicy):
                punisher[self.society.group_members[group]] = False
        return punisher

    def metrics(self) -> dict[str, Any]:
        return self._row

    def state_dict(self) -> dict[str, Any]:
        return {"partner_order": self.partner_order.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.partner_order = state["partner_order"].copy()

    def memory(self, citizens: np.ndarray) -> dict[str, list[str]]:
        given = [f"you gave {mine:.1f}; the others in your group gave {theirs:.1f} on average."
                 for mine, theirs in zip(self.contribution[citizens], self.others_mean[citizens])]
        if not self.params.punishment:
            return {"public_goods": given}
        return {"public_goods": given, "punishment": sanctioning.punishment_memory(self.society.state, citizens)}
