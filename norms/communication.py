"""Communication: citizens state the norm they hold to their neighbours, or to a village meeting before harvest.

Heuristic citizens state their personal norm (a take ratio to the sustainable share) and a one-line text saying
it. With `universalization` they first ask "what if everyone took this?". Assumption: the sustainable share is
by definition the largest per-citizen take the commons sustains when everyone takes it (Ostrom's invest game:
each citizen's part of the social optimum), so a citizen who universalizes states its norm where that keeps the
resource (ratio <= 1) and 1 where it does not; docs/validation.md carries this assumption. LLM citizens state
the norm their answer names. In `neighbours` mode each citizen hears the mean of its neighbours' statements; in
`meeting` mode the citizens of each patch (everyone, without a commons) agree on the median (or the mean) of
the norms actually stated there, so what the meeting agrees moves with what is said. What is heard moves
normative expectations (weight `influence`) and personal norms (weight `persuasion`); learners then act on
their norm.

An LLM citizen whose answer is missing or invalid gets the scenario's `fallback`: `silent` (the default) says
nothing, so its statement is not heard: it is left out of its meeting's median or mean and of its neighbours'
means, sends no message and reaches no one's memory, and a citizen who heard nobody keeps its expectation and
norm. `own_norm` states its personal norm in the heuristic text, heard as if it had said it. Either way the
fallback is flagged (the `fallback` column of `citizens` and `llm_calls`).

Every statement is a `message` event (target -1: the whole meeting). Received texts are kept as data in an
`Inbox` and only ever rendered quoted (`society.llm.memory.quote`), so a message cannot pass for an instruction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from norms.kernels import heard_mean
from norms.state import act_on_norms, ensure_norm_columns
from society.llm.memory import quote
from society.phases import Phase
from society.phases.deciding import Fallback, Question
from society.phases.decisions import Decision

SUSTAINABLE_RATIO = 1.0
HEURISTIC_TEXT = "I think each of us should take at most %.2f times our sustainable share."
MAX_HEARD = 8
RULE = (
    "Talk: before the harvest, each citizen tells {audience} the most each citizen should take, as a multiple of "
    "the sustainable share, in one or two sentences."
)
OBSERVATION = (
    "Round {round} of {rounds}. Last round your neighbours took on average {seen:.2f} times their sustainable "
    "share; you think one should take at most {norm:.2f} times it.{universalization}\nWhat do you tell {audience}? "
    "{format}"
)
UNIVERSALIZATION = (
    " Before you speak, ask yourself what would happen if every citizen took what you propose: if each took more "
    "than the sustainable share, the commons would shrink and could collapse."
)


class CommunicateParams(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    mode: Literal["neighbours", "meeting"] = "neighbours"
    proposal: Literal["median", "mean"] = Field("median", description="how a meeting aggregates the stated norms")
    universalization: bool = Field(False, description="state at most the share the commons sustains if all took it")
    influence: float = Field(0.5, ge=0, le=1, description="weight of what is heard in the normative expectation")
    persuasion: float = Field(0.3, ge=0, le=1, description="weight of what is heard in the personal norm")
    record: bool = Field(True, description="record every message as an event")
    fallback: Literal["silent", "own_norm"] = Field(
        "silent", description="what an LLM citizen whose answer is missing or invalid says: nothing (its statement "
        "is not heard), or its personal norm in the heuristic text, heard as if it had said it"
    )


class MessageDecision(Decision):
    """What an LLM citizen says to its neighbours or the meeting, and the take ratio it proposes."""

    text: str = Field(max_length=280, description="one or two sentences to the others")
    norm: float = Field(ge=0, description="the most each citizen should take, as a multiple of the sustainable share")


@dataclass
class Statements:
    """One statement per citizen: the norm it states (a take ratio), the text that says it, and whether it spoke
    (False: a silent fallback, whose norm and text nobody hears)."""

    norm: np.ndarray
    text: np.ndarray
    spoke: np.ndarray


@dataclass(frozen=True)
class Inbox:
    """The messages delivered this round, as data: sender, receiver (-1: the whole meeting) and text."""

    sender: np.ndarray
    receiver: np.ndarray
    text: np.ndarray

    def heard(self, citizen: int, meeting: np.ndarray | None = None) -> list[str]:
        """What `citizen` heard, one line per message, the text quoted as a JSON string literal.

        `meeting` holds each sender's meeting group and the citizen's own, for messages sent to a meeting.
        """
        to_citizen = self.receiver == citizen
        if meeting is not None:
            to_citizen |= (self.receiver == -1) & (meeting[self.sender] == meeting[citizen]) & (self.sender != citizen)
        return [f"Citizen {s} said: {quote(str(t))}" for s, t in zip(self.sender[to_citizen], self.text[to_citizen])]


def heuristic_statements(personal_norm: np.ndarray, universalization: bool) -> Statements:
    """Each citizen states its personal norm; universalizing, at most the sustainable share (see the module)."""
    norm = np.minimum(personal_norm, SUSTAINABLE_RATIO) if universalization else personal_norm.copy()
    return Statements(norm, np.char.mod(HEURISTIC_TEXT, norm), np.ones(norm.size, dtype=bool))


def meeting_proposals(
    group: np.ndarray, stated: np.ndarray, proposal: str, spoke: np.ndarray | None = None
) -> np.ndarray:
    """Per citizen: what its meeting agrees on, the median (or mean) of the norms stated in its group by those who
    spoke (all, when `spoke` is None); NaN for a meeting where nobody spoke."""
    aggregate = np.median if proposal == "median" else np.mean
    groups, members = np.unique(group, return_inverse=True)
    said = np.arange(stated.size) if spoke is None else np.flatnonzero(spoke)
    in_order = said[np.argsort(members[said], kind="stable")]  # each meeting's statements, in citizen order
    counts = np.bincount(members[said], minlength=groups.size)
    statements = np.split(stated[in_order], np.cumsum(counts)[:-1])
    agreed = np.array([aggregate(norms) if norms.size else np.nan for norms in statements])
    return agreed[members]


class CommunicatePhase(Phase):
    name = "communicate"
    Params = CommunicateParams
    precedes = ("takes",)

    def __init__(self, society: Any, params: CommunicateParams, index: int) -> None:
        super().__init__(society, params, index)
        ensure_norm_columns(society)
        empty = np.zeros(0, np.int64)
        self.inbox = Inbox(empty, empty, np.zeros(0, dtype=str))

    def meeting_groups(self) -> np.ndarray:
        """Each citizen's meeting: its patch, or one meeting for everyone without a commons."""
        commons = self.society.commons
        return commons.patch_of_citizen if commons is not None else np.zeros(self.society.num_citizens, np.int64)

    def rule(self) -> str:
        return RULE.format(audience=self.audience)

    @property
    def audience(self) -> str:
        return "the village meeting" if self.params.mode == "meeting" else "their neighbours"

    def decide(self, observation: None) -> Statements:
        """Heuristic statements for everyone; LLM citizens' own words and norm where their answer parsed.

        An LLM citizen whose answer failed is silent, or (`fallback: own_norm`) keeps the heuristic statement of
        its own norm.
        """
        path = self.society.deciding
        decided = path.decide(
            self,
            rule=lambda: heuristic_statements(self.society.state["personal_norm"], self.params.universalization),
            question=self._question(path.llm_citizens) if path.llm_citizens.size else None,
            fallback=Fallback(self.params.fallback, lambda failed: None),
        )
        statements = decided.rule
        if self.society.present is not None:  # removed citizens say nothing
            statements.spoke &= self.society.present
        if self.params.fallback == "silent":
            statements.spoke[decided.failed] = False
        if decided.answered.any():
            spoke = decided.asked[decided.answered]
            said = [answer for answer in decided.answers if answer is not None]
            statements.norm[spoke] = [answer.norm for answer in said]
            text = statements.text.astype(object)
            text[spoke] = [answer.text for answer in said]
            statements.text = text
        return statements

    def _question(self, members: np.ndarray) -> Question:
        """What each LLM citizen tells its audience, seeing what its neighbours took and the norm it holds."""
        society, state = self.society, self.society.state
        texts = dict(round=society.round, rounds=society.scenario.rounds, audience=self.audience,
                     format=society.llm.answer_format(MessageDecision),
                     universalization=UNIVERSALIZATION if self.params.universalization else "")
        observations = [
            OBSERVATION.format(seen=state["empirical_expectation"][c], norm=state["personal_norm"][c], **texts)
            for c in members
        ]
        return Question(members, observations, MessageDecision)

    def apply(self, statements: Statements) -> None:
        society, state, p = self.society, self.society.state, self.params
        spoke = statements.spoke
        if p.mode == "meeting":
            agreed = meeting_proposals(self.meeting_groups(), statements.norm, p.proposal, spoke)
            listeners = np.flatnonzero(~np.isnan(agreed) & society.present_mask())
            heard = agreed[listeners]
            speakers = np.flatnonzero(spoke)
            self.inbox = Inbox(speakers, np.full(speakers.size, -1, np.int64), statements.text[speakers])
        else:
            graph = society.graph
            mean, count = heard_mean(graph.indptr, graph.indices, statements.norm, spoke)
            listeners = np.flatnonzero(count > 0)
            heard = mean[listeners]
            receivers = np.repeat(np.arange(society.num_citizens, dtype=np.int64), np.diff(graph.indptr))
            sent = spoke[graph.indices]
            senders = graph.indices[sent]
            self.inbox = Inbox(senders, receivers[sent], statements.text[senders])
        for column, weight in (("normative_expectation", p.influence), ("personal_norm", p.persuasion)):
            state[column][listeners] = (1 - weight) * state[column][listeners] + weight * heard
        act_on_norms(society)
        if society.llm is not None:
            self._deliver_to_llm(statements)
        if p.record:
            society.record_events(
                self.name, "message", self.inbox.sender, self.inbox.receiver, detail=self.inbox.text.tolist()
            )
        stated = statements.norm[spoke]
        self._row = {"messages": int(self.inbox.sender.size),
                     "stated_norm_mean": float(stated.mean()) if stated.size else float("nan")}

    def _deliver_to_llm(self, statements: Statements) -> None:
        """Each LLM citizen remembers up to MAX_HEARD statements it heard (silent citizens said none), as notes its
        memory renders quoted."""
        society, llm = self.society, self.society.llm
        graph, groups = society.graph, self.meeting_groups()
        receivers, notes = [], []
        for citizen in llm.members:
            if self.params.mode == "meeting":
                speakers = np.flatnonzero(groups == groups[citizen])
                speakers = speakers[(speakers != citizen) & statements.spoke[speakers]][:MAX_HEARD]
            else:
                speakers = graph.indices[graph.indptr[citizen]:graph.indptr[citizen + 1]]
                speakers = speakers[statements.spoke[speakers]][:MAX_HEARD]
            receivers += [citizen] * speakers.size
            notes += [f"citizen {s}: {statements.text[s]}" for s in speakers]
        llm.remember(np.array(receivers, dtype=np.int64), notes)

    def metrics(self) -> dict[str, Any]:
        return self._row

    def state_dict(self) -> dict[str, Any]:
        inbox = self.inbox
        texts = [str(text) for text in inbox.text]
        return {"sender": inbox.sender.copy(), "receiver": inbox.receiver.copy(), "text": texts}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.inbox = Inbox(state["sender"].copy(), state["receiver"].copy(), np.array(state["text"], dtype=object))
