"""Elections every `every` rounds: candidacy, campaign statements, ballots in the rule's form, and the count.

Politicians (a fixed number of each heuristic kind, placed on random citizens) stand when eligible: the
sitting leader may not stand once it has served `term_limit` consecutive terms. Each candidate broadcasts a
statement of its promised policy, to everyone or only to its neighbours. Every citizen votes, ranking the
candidates by a utility (all at once, one matrix):

    u[v, c] = - platform_weight * (|quota_c - ideal_v| + tax_c) * heard[v, c]
              + neighbour_affinity * [v is c's neighbour]
              + record_weight * (resource_health - 0.5)         for the sitting leader
              - grievance * [the leader sanctioned v in office]  for the sitting leader
              - smear_penalty * [the leader sanctioned c]
              - mediation_weight * record_ppi_c                  when the charter has mediation
              + Normal(0, noise)

`ideal_v` is the voter's last take relative to its sustainable share (greedy voters want loose quotas);
`quota_c` and `tax_c` are what candidate c promised in its campaign. Candidates rank themselves first. Ranked
rules get full rankings; approval ballots approve every candidate at or above the voter's mean utility (this
is every voter's **utility ballot**). The winner takes office for a term; voters who placed it in the lower
half of their ballot (or did not approve it) become its critics, those who ranked it first its supporters.

LLM citizens. Politicians of kind `llm` sit on LLM citizens: each eligible one is asked whether it stands
(`CandidacyDecision`), and each that stands writes its platform and a statement of at most `statement_chars`
characters (`CampaignDecision`). Statements reach LLM hearers' memory as quoted notes. Every LLM citizen then
casts the ballot the rule needs (`institutions.ballots`: one choice, a ranking, or an approval set, naming only
the candidates). The three asks are recorded as phases `elections_candidacy`, `elections_campaign` and
`elections_ballot` in `llm_calls`.

What a failed (missing or invalid) answer does is the scenario's choice, and by default it is to abstain:
`candidacy_fallback` `stay_out` (or `stand`), `campaign_fallback` `withdraw` (a `withdrawal` event; or
`heuristic_platform`: the base policy with the honest text, which would pass for an honest candidate), and
`ballot_fallback` `blank` (a blank ballot counts for nobody and makes its voter neither critic nor supporter;
or `utility_ballot`: the heuristic voter's ballot). Every such citizen is flagged in the `fallback` column.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator

from institutions import voting
from institutions.ballots import answered_ballots, ballot_decision, ballot_form, completed_places
from institutions.decisions import CandidacyDecision, PolicyDecision, campaign_decision
from institutions.politicians import POLITICIAN_KINDS, PoliticianKind, campaign_statement, promise
from institutions.polity import InstitutionPhase
from institutions.power import ElectionRecord, incumbency_rate, turnover
from society.core.build import group_counts
from society.phases.deciding import Fallback, Question
from society.scenario.bounds import MAX_CITIZENS, MAX_FACTOR, MAX_ROUNDS
from society.scenario.schema import Scenario

RULE = (
    "Elections: every {every} rounds the citizens elect a leader, who sets the harvest quota, the fine for "
    "taking more, the tax on harvests and how much of the treasury is paid back to everyone. Politicians "
    "may stand; each candidate's campaign statement is heard by {hearers}; then every citizen votes."
)
CANDIDACY = (
    "Round {round} of {rounds}. An election is held this round under the {rule} rule; {leader}. You are a "
    "politician and may stand as a candidate. The treasury holds {treasury:.1f}; the resource is at {health:.0%} "
    "of its capacity. Do you stand? {format}"
)
CAMPAIGN = (
    "Round {round} of {rounds}. You stand in this round's election under the {rule} rule, against {rivals}. "
    "The policy in force: quota {quota:g}x the sustainable share, tax {tax:.0%}. Promise a quota and a tax, "
    "and write your campaign statement to the voters. {format}"
)
BALLOT = (
    "Round {round} of {rounds}. The leader is elected this round under the {rule} rule; {leader}. The "
    "candidates and what they promise:\n{platforms}\nTheir campaign statements, where you heard them, are in "
    "your memory. {how} {format}"
)
HOW = {
    "choice": "Vote for one candidate.",
    "ranking": "Rank the candidates from the one you want most to the one you want least.",
    "approval": "Name every candidate you approve of (at least one).",
}


class Politicians(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    kind: PoliticianKind = Field(description="heuristic kind, or llm: a politician on an LLM citizen")
    count: int = Field(1, ge=1, le=MAX_CITIZENS)


class ElectionsParams(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    every: int = Field(4, ge=1, le=MAX_ROUNDS, description="term length: rounds between elections")
    first: int = Field(1, ge=1, le=MAX_ROUNDS, description="round of the first election")
    rule: voting.RuleName = "plurality"
    term_limit: int | None = Field(None, ge=1, le=MAX_ROUNDS, description="most consecutive terms a leader may serve")
    politicians: list[Politicians] = Field(min_length=1)
    broadcast: Literal["all", "neighbours"] = Field("all", description="who hears campaign statements")
    platform_weight: float = Field(1.0, ge=0, le=MAX_FACTOR)
    neighbour_affinity: float = Field(0.5, ge=0, le=MAX_FACTOR)
    record_weight: float = Field(1.0, ge=0, le=MAX_FACTOR)
    grievance: float = Field(1.0, ge=0, le=MAX_FACTOR)
    smear_penalty: float = Field(1.0, ge=0, le=MAX_FACTOR)
    noise: float = Field(0.3, ge=0, le=MAX_FACTOR)
    ballot_events: bool = Field(True, description="record one `ballot` event per voter")
    statement_chars: int = Field(240, ge=20, le=2000, description="longest campaign statement of an LLM candidate")
    candidacy_fallback: Literal["stay_out", "stand"] = Field(
        "stay_out", description="an LLM politician whose candidacy answer failed: stays out, or stands"
    )
    campaign_fallback: Literal["withdraw", "heuristic_platform"] = Field(
        "withdraw", description="an LLM candidate whose campaign answer failed: withdraws, or campaigns on the base "
        "policy with the honest text"
    )
    ballot_fallback: Literal["blank", "utility_ballot"] = Field(
        "blank", description="an LLM voter whose ballot answer failed: casts a blank ballot, or its utility ballot"
    )

    @field_validator("politicians")
    @classmethod
    def _kinds_once(cls, value: list[Politicians]) -> list[Politicians]:
        kinds = [p.kind for p in value]
        if len(set(kinds)) != len(kinds):
            raise ValueError("list each kind of politician once, with its count")
        return value


class ElectionsPhase(InstitutionPhase):
    name = "elections"
    Params = ElectionsParams
    provides = ("elections",)

    def __init__(self, society: Any, params: ElectionsParams, index: int) -> None:
        super().__init__(society, params, index)
        state = society.state
        seated = "politician" in state  # a rebuilt phase (after an intervention) keeps its politicians
        self.politician = state.add("politician", np.int8, -1)
        if not seated:
            self._seat(params.politicians)
        self.critic = state.add("critic", np.bool_)
        self.supporter = state.add("supporter", np.bool_)
        self.sanctioned_at = state.add("sanctioned_at", np.int64, -1, record=False)
        self.ballot_completed = state.add("ballot_completed", np.int16) if society.llm is not None else None
        polity = self.polity
        polity.rule, polity.election_every, polity.term_limit = params.rule, params.every, params.term_limit
        polity.next_election = params.first
        self._row: dict[str, Any] = {}

    @classmethod
    def check(cls, params: ElectionsParams, scenario: Scenario) -> list[tuple[str, str]]:
        """Politicians must fit: heuristic ones on citizens that are not LLM citizens, `llm` ones on LLM citizens."""
        population = scenario.population
        n = population.size
        total = sum(p.count for p in params.politicians)
        if total > n:
            return [("politicians", f"{total} politicians exceed population.size {n}")]
        counts = group_counts(population)
        llm = int(sum(count for spec, count in zip(population.policies, counts) if spec.policy == "llm"))
        problems = []
        pools = ((False, n - llm, "citizens that are not LLM citizens"), (True, llm, "LLM citizens"))
        for seats_llm, pool, what in pools:
            count = sum(p.count for p in params.politicians if (p.kind == "llm") == seats_llm)
            if count > pool:
                kind = "llm" if seats_llm else "heuristic"
                problems.append(("politicians", f"{count} {kind} politicians exceed the {pool} {what}"))
        return problems

    def _seat(self, politicians: list[Politicians]) -> None:
        """Place heuristic politicians on citizens who are not LLM citizens, and `llm` ones on LLM citizens."""
        society = self.society
        n = society.num_citizens
        llm = np.zeros(0, np.int64) if society.llm is None else society.llm.members
        for seats_llm, pool in ((False, np.setdiff1d(np.arange(n), llm)), (True, llm)):
            group = [p for p in politicians if (p.kind == "llm") == seats_llm]
            count = sum(p.count for p in group)
            if count:
                seats = self.rng.choice(pool, size=count, replace=False)
                self.politician[seats] = np.repeat([POLITICIAN_KINDS.index(p.kind) for p in group],
                                                   [p.count for p in group])

    def rule(self) -> str:
        hearers = "every citizen" if self.params.broadcast == "all" else "the candidate's neighbours"
        return RULE.format(every=self.params.every, hearers=hearers)

    def kind(self, citizen: int) -> str:
        """The politician kind of `citizen` (which must be a politician)."""
        return POLITICIAN_KINDS[self.politician[citizen]]

    def platform(self, candidate: int) -> PolicyDecision:
        """What `candidate` promised in its last campaign (before any: what its kind promises)."""
        polity = self.polity
        return polity.platforms.get(candidate) or promise(self.kind(candidate), polity.base)

    # ---- what the leader phase can ask too (a poll) -------------------------------------------------------

    def eligible(self, limit_lifted: bool = False) -> np.ndarray:
        """Politicians allowed to stand at the next election (the candidacy decision: all eligible stand); with
        `limit_lifted`, as if the term limit were gone (what a leader lifting it polls)."""
        polity = self.polity
        candidates = np.flatnonzero((self.politician >= 0) & self.society.present_mask())
        limit = None if limit_lifted else polity.term_limit
        if polity.leader is not None and limit is not None and polity.consecutive_terms >= limit:
            candidates = candidates[candidates != polity.leader]
        return candidates

    def utilities(self, candidates: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(citizens, candidates) utilities of every voter for every candidate (formula in the module doc)."""
        society, params, polity = self.society, self.params, self.polity
        state, graph = society.state, society.graph
        n, m = society.num_citizens, candidates.size
        promised = [self.platform(c) for c in candidates.tolist()]
        quota = np.array([p.quota for p in promised])
        tax = np.array([p.tax for p in promised])
        neighbour = np.zeros((n, m), dtype=np.bool_)
        for j, c in enumerate(candidates.tolist()):
            neighbour[graph.indices[graph.indptr[c]:graph.indptr[c + 1]], j] = True
        heard = neighbour if params.broadcast == "neighbours" else np.ones((n, m), dtype=np.bool_)
        heard[candidates, np.arange(m)] = True
        ideal = np.clip(state["ratio"], 0.0, 3.0)
        u = -params.platform_weight * (np.abs(quota[None, :] - ideal[:, None]) + tax[None, :]) * heard
        u += params.neighbour_affinity * neighbour
        sanctioned_by_leader = (state["sanctioned_at"] >= polity.leader_since) & (polity.leader is not None)
        u -= params.smear_penalty * sanctioned_by_leader[candidates][None, :]
        sitting = np.flatnonzero(candidates == polity.leader)
        if sitting.size:
            u[:, sitting[0]] += params.record_weight * (self._resource_health() - 0.5)
            u[:, sitting[0]] -= params.grievance * sanctioned_by_leader
        if polity.charter.mediation:
            record = np.array([polity.briefing.get(c, 0.0) for c in candidates.tolist()])
            u -= polity.charter.mediation_weight * record[None, :]
        u += rng.normal(0.0, params.noise, size=(n, m)) if params.noise > 0 else 0.0
        u[candidates, np.arange(m)] = np.inf
        return u

    def ballots(self, utilities: np.ndarray, candidates: np.ndarray, rule: str) -> np.ndarray:
        """Ballots in the form `rule` needs: full rankings, or approval sets (padded with -1)."""
        order = np.argsort(-utilities, axis=1, kind="stable")
        ranked = candidates[order]
        if rule != "approval":
            return ranked
        finite = np.where(np.isfinite(utilities), utilities, np.nan)
        mean = np.nanmean(np.where(np.isnan(finite).all(axis=1, keepdims=True), 0.0, finite), axis=1)
        approves = np.take_along_axis(utilities >= mean[:, None], order, axis=1)
        approves[:, 0] = True
        return np.where(approves, ranked, voting.PADDING)

    def poll(self, rule: str, rng: np.random.Generator, limit_lifted: bool = False) -> int | None:
        """Who would win an election held now under `rule` (None when nobody may stand); with `limit_lifted`, an
        election after the term limit is lifted."""
        candidates = self.eligible(limit_lifted)
        if candidates.size == 0:
            return None
        ballots = self.ballots(self.utilities(candidates, rng), candidates, rule)[self.society.present_citizens()]
        return voting.by_name(rule)(ballots, candidates=candidates.tolist(), rng=rng).winner

    def _resource_health(self) -> float:
        commons = self.society.commons
        return 0.5 if commons is None else float(commons.stock.sum() / commons.capacity.sum())

    # ---- the phase ----------------------------------------------------------------------------------------

    def run(self) -> None:
        self.forget_removed()
        society, polity = self.society, self.polity
        held = polity.next_election == society.round
        self._row = {"election": held, "candidates": 0, "winner_share": None}
        if held:
            candidates = self._standing(self.eligible())
            if candidates.size:
                self._hold(candidates)
            else:
                polity.next_election = society.round + self.params.every
        self._row |= {
            "leader": polity.leader,
            "leader_tenure": polity.tenure(society.round),
            "elections_held": len(polity.elections),
            "incumbency_rate": incumbency_rate(polity.elections),
            "turnover": turnover(polity.elections),
            "voting_rule": polity.rule,
            "term_limit": polity.term_limit,
            "next_election": polity.next_election,
        }

    def _hold(self, candidates: np.ndarray) -> None:
        society, polity, params = self.society, self.polity, self.params
        number = society.round
        society.record_events(self.name, "candidacy", candidates, np.full(candidates.size, -1),
                              detail=[json.dumps({"kind": self.kind(c)}) for c in candidates.tolist()])
        statements, withdrawn = self._campaign(candidates)
        if withdrawn.size:
            society.record_events(self.name, "withdrawal", withdrawn, np.full(withdrawn.size, -1),
                                  detail=["campaign answer failed"] * withdrawn.size)
            candidates = candidates[~np.isin(candidates, withdrawn)]
            if candidates.size == 0:
                polity.next_election = number + params.every
                return
        if society.llm is not None:
            self._broadcast(candidates, statements)
        society.record_events(self.name, "campaign", candidates, np.full(candidates.size, -1),
                              detail=[statements[c] for c in candidates.tolist()])
        ballots = self.ballots(self.utilities(candidates, self.rng), candidates, polity.rule)
        if society.llm is not None and candidates.size > 1:
            members = society.llm.members
            ballots[members] = self._ask_ballots(members, candidates, ballots[members])
        voters = society.present_citizens()
        ballots = ballots[voters]
        result = voting.by_name(polity.rule)(ballots, candidates=candidates.tolist(), rng=self.rng)
        if params.ballot_events:
            society.record_events(self.name, "ballot", voters, ballots[:, 0], detail=_ballot_texts(ballots))
        winner, incumbent = int(result.winner), polity.leader
        polity.elections.append(ElectionRecord(number, incumbent, winner))
        if winner == incumbent:
            polity.consecutive_terms += 1
        else:
            polity.leader, polity.leader_since, polity.consecutive_terms = winner, number, 1
        polity.rivals = [c for c in candidates.tolist() if c != winner]
        polity.next_election = number + params.every
        polity.briefing = {}
        place = np.argmax(ballots == winner, axis=1)
        named = (ballots == winner).any(axis=1)
        voted = ballots[:, 0] != voting.PADDING
        self.critic[:], self.supporter[:] = False, False
        if candidates.size > 1:
            self.critic[voters] = voted & (~named | (place >= (candidates.size + 1) // 2))
        self.supporter[voters] = ballots[:, 0] == winner
        detail = result.to_dict() | {"kinds": {str(c): self.kind(c) for c in candidates.tolist()}}
        previous = np.array([-1 if incumbent is None else incumbent])
        society.record_events(self.name, "election", np.array([winner]), previous, detail=[json.dumps(detail)])
        self._row |= {"candidates": int(candidates.size), "winner_share": result.shares[winner]}

    # ---- LLM politicians and voters -----------------------------------------------------------------------

    def _texts(self, **extra: Any) -> dict[str, Any]:
        society, polity = self.society, self.polity
        leader = "nobody leads now" if polity.leader is None else f"citizen {polity.leader} leads now"
        return {"round": society.round, "rounds": society.scenario.rounds, "rule": polity.rule,
                "leader": leader, **extra}

    def _standing(self, eligible: np.ndarray) -> np.ndarray:
        """The eligible politicians who stand: heuristic ones always, LLM ones when they say so (a failed answer:
        `candidacy_fallback`)."""
        llm, fallback = self.society.llm, self.params.candidacy_fallback
        asked = eligible[self.politician[eligible] == POLITICIAN_KINDS.index("llm")]
        if llm is None or asked.size == 0:
            return eligible
        texts = self._texts(treasury=self.polity.treasury, health=self._resource_health(),
                            format=llm.answer_format(CandidacyDecision))
        question = Question(asked, [CANDIDACY.format(**texts)] * asked.size, CandidacyDecision,
                            label=f"{self.name}_candidacy")
        decided = self.society.deciding.decide(self, question=question,
                                               fallback=Fallback(fallback, lambda failed: None))
        staying_out = [int(c) for c, a in zip(decided.asked, decided.answers)
                       if (not a.stand if a is not None else fallback == "stay_out")]
        return eligible[~np.isin(eligible, staying_out)]

    def _campaign(self, candidates: np.ndarray) -> tuple[dict[int, str], np.ndarray]:
        """Each candidate's statement (platforms go to the polity), and the LLM candidates who withdrew.

        A heuristic candidate campaigns as its kind does; an LLM candidate whose answer failed withdraws, or with
        `campaign_fallback: heuristic_platform` campaigns on the base policy with the honest text.
        """
        polity, llm = self.polity, self.society.llm
        statements = {}
        for c in candidates.tolist():
            polity.platforms[c] = promise(self.kind(c), polity.base)
            statements[c] = campaign_statement(self.kind(c), polity.platforms[c])
        withdrawn = np.zeros(0, np.int64)
        asked = candidates[self.politician[candidates] == POLITICIAN_KINDS.index("llm")]
        if llm is not None and asked.size:
            decision = campaign_decision(self.params.statement_chars)
            texts = self._texts(quota=polity.policy.quota, tax=polity.policy.tax, format=llm.answer_format(decision))
            observations = [
                CAMPAIGN.format(rivals=_citizens(candidates[candidates != c]), **texts) for c in asked.tolist()
            ]
            question = Question(asked, observations, decision, label=f"{self.name}_campaign")
            decided = self.society.deciding.decide(
                self, question=question, fallback=Fallback(self.params.campaign_fallback, lambda failed: None)
            )
            for c, answer in zip(asked.tolist(), decided.answers):
                if answer is not None:
                    polity.platforms[c] = polity.base.model_copy(update={"quota": answer.quota, "tax": answer.tax})
                    statements[c] = answer.statement
            if self.params.campaign_fallback == "withdraw":
                withdrawn = decided.asked[~decided.answered]
        return statements, withdrawn

    def _broadcast(self, candidates: np.ndarray, statements: dict[int, str]) -> None:
        """Put each statement into the memory of the LLM citizens who hear it (everyone, or neighbours)."""
        society, llm = self.society, self.society.llm
        graph = society.graph
        hearers, notes = [], []
        for c in candidates.tolist():
            heard_by = llm.members
            if self.params.broadcast == "neighbours":
                heard_by = np.intersect1d(graph.indices[graph.indptr[c]:graph.indptr[c + 1]], llm.members)
            heard_by = heard_by[heard_by != c]
            hearers.append(heard_by)
            notes += [f"Campaign statement of candidate {c}: {statements[c]}"] * heard_by.size
        llm.remember(np.concatenate(hearers), notes)

    def _ask_ballots(self, members: np.ndarray, candidates: np.ndarray, defaults: np.ndarray) -> np.ndarray:
        """The LLM citizens' ballots in the rule's form; a failed answer keeps the voter's utility ballot."""
        llm, polity = self.society.llm, self.polity
        form = ballot_form(polity.rule)
        decision = ballot_decision(form, tuple(candidates.tolist()))
        platforms = "\n".join(
            f"- citizen {c}: quota {self.platform(c).quota:g}x the sustainable share, tax {self.platform(c).tax:.0%}"
            for c in candidates.tolist()
        )
        observation = BALLOT.format(platforms=platforms, how=HOW[form], format=llm.answer_format(decision),
                                    **self._texts())
        question = Question(members, [observation] * members.size, decision, label=f"{self.name}_ballot")
        fallback = self.params.ballot_fallback
        decided = self.society.deciding.decide(self, question=question,
                                               fallback=Fallback(fallback, lambda failed: None))
        ballots = answered_ballots(decided.answers, defaults, form)
        completed = completed_places(decided.answers, candidates.size)
        if fallback == "blank":
            ballots[~decided.answered] = voting.PADDING
            completed[~decided.answered] = 0
        self.ballot_completed[:] = 0
        self.ballot_completed[members] = completed
        return ballots

    def metrics(self) -> dict[str, Any]:
        return self._row


def _citizens(numbers: np.ndarray) -> str:
    """`citizens 3, 7` (or `nobody` when empty), for prompts."""
    return "citizens " + ", ".join(map(str, numbers.tolist())) if numbers.size else "nobody"


def _ballot_texts(ballots: np.ndarray) -> list[str]:
    """Each ballot as a JSON list of candidates, best first (padding dropped), built column-wise."""
    frame = pl.DataFrame({"b": ballots})
    texts = frame.select(
        pl.format("[{}]", pl.col("b").arr.to_list().list.eval(pl.element().filter(pl.element() >= 0).cast(pl.Utf8))
                  .list.join(", "))
    )
    return texts.to_series().to_list()
