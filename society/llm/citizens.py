"""LLM citizens: who they are, what they remember, and one batched model call per phase.

A phase hands over the citizens it needs decisions from, one observation text each, and the decision type;
the prompt is laid out for prefix caching (`prompts`), sent as one batch and recorded (`asking`), and each
citizen's memory (`memory`) keeps what the phases tell it at the end of every round.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from society.llm import prompts
from society.llm.asking import Asker, Cohorts
from society.llm.backend import connect, group_settings
from society.llm.memory import RoundMemory, round_lines
from society.llm.personas import sample_persona_table
from society.phases.decisions import Decision
from society.scenario.schema import LLMPolicy, LLMSettings

if TYPE_CHECKING:
    from llm_backend.facade import Connection
    from society.core.model import Society
    from society.scenario.schema import Scenario

NO_CITIZENS = np.zeros(0, dtype=np.int64)


def newcomer_policies(scenario: Scenario) -> list[LLMPolicy]:
    """The LLM policies of the newcomers the scenario's interventions add, in scenario order."""
    return [i.add.policy for i in scenario.interventions if i.add is not None and isinstance(i.add.policy, LLMPolicy)]


class LLMCitizens:
    """The society's LLM citizens: who they are, what they remember, and their link to a model."""

    def __init__(self, society: Society) -> None:
        self.society = society
        self.settings: LLMSettings = society.scenario.llm
        groups = [g for g, spec in enumerate(society.policy_specs) if isinstance(spec, LLMPolicy)]
        self.seated = np.sort(np.concatenate([society.group_members[g] for g in groups] or [NO_CITIZENS]))
        """Every LLM citizen the run has seated, in the order of their rows (persona, memory, model)."""
        self.members = self.seated.copy()
        """The LLM citizens still present, in citizen order: those the phases ask."""
        self.position = np.full(society.num_citizens, -1, dtype=np.int64)
        self.position[self.seated] = np.arange(self.seated.size)
        self.personas = sample_persona_table(society, groups, self.seated)
        self.memory = RoundMemory(self.seated.size, self.settings.memory_rounds)
        by_group = {g: group_settings(self.settings, society.policy_specs[g]) for g in groups}
        self.backends: list[LLMSettings] = []
        """Each model the run seats, with how it is reached (one unless groups or newcomers name their own)."""
        for settings in [*by_group.values(), *(group_settings(self.settings, spec) for spec in newcomer_policies(
                society.scenario))]:
            if settings not in self.backends:
                self.backends.append(settings)
        self.backend_of = np.zeros(self.seated.size, dtype=np.int64)
        for group, settings in by_group.items():
            self.backend_of[self.position[society.group_members[group]]] = self.backends.index(settings)
        self.arrivals: list[dict[str, Any]] = []
        """The persona rows of the newcomers seated so far, as they arrived (in arrival order)."""
        self.connections: list[Connection | None] = [None] * len(self.backends)
        self._default_connection = contextlib.ExitStack()
        self._asker = Asker(self.settings, society.scenario.seed)

    @property
    def connection(self) -> Connection | None:
        """The run's connection to its (first) model."""
        return self.connections[0]

    @connection.setter
    def connection(self, connection: Connection | None) -> None:
        """One connection answering for every model the run seats."""
        self.connections = [connection] * len(self.backends)

    @property
    def model_names(self) -> list[str]:
        """Each model's name as the scenario gives it (`default` where it names none)."""
        return [settings.model or "default" for settings in self.backends]

    # ---- prompts --------------------------------------------------------------------------------------------

    def rules(self) -> str:
        """The shared rules every LLM prompt starts with: the world, the round's phases, how to answer."""
        society = self.society
        return prompts.rules(society.scenario, (phase.rule() for phase in society.phases), society.num_present)

    def compose(self, citizen: int, observation: str) -> str:
        """The per-citizen part of a prompt: persona, then memory, then the observation and question."""
        position = int(self.position[citizen])
        return prompts.compose(self.personas["description"][position], self.memory.render(position), observation)

    def answer_format(self, decision: type[Decision]) -> str:
        """How an answer of `decision`'s type is written, for the end of an observation."""
        return prompts.answer_format(decision, self.settings.reason)

    # ---- asking ---------------------------------------------------------------------------------------------

    def ask(
        self,
        phase: str,
        citizens: np.ndarray,
        observations: Sequence[str],
        decision: type[Decision],
        schemas: Sequence[Mapping[str, Any]] | None = None,
        cohort_stream: str = "cohorts",
    ) -> list[Decision | None]:
        """One decision per citizen from one batched call; None where the answer failed (the caller's fallback).

        `schemas` narrows the JSON schema per citizen (e.g. to the neighbours it may punish); the answer is
        still validated against `decision`. With cohorts, members draw their samples from `cohort_stream`.
        """
        if citizens.size == 0:
            return []
        rules = self.rules()
        pairs = [(rules, self.compose(int(c), text)) for c, text in zip(citizens, observations, strict=True)]
        cohorts = self.settings.cohorts
        sharing = Cohorts(cohorts.max_samples, self.society.rng_tree(cohort_stream)) if cohorts.enabled else None
        if sharing is not None:
            pairs = [(system, prompts.coarsened(user, cohorts.digits)) for system, user in pairs]
        if len(self.backends) == 1:
            return self._asker.ask(self._connect(0), self.society.round, phase, citizens, pairs, decision, schemas,
                                   sharing)
        answers: list[Decision | None] = [None] * citizens.size
        which = self.backend_of[self.position[citizens]]
        for k, name in enumerate(self.model_names):  # each model's citizens as one batch to that model
            part = np.flatnonzero(which == k)
            if part.size:
                got = self._asker.ask(
                    self._connect(k), self.society.round, phase, citizens[part], [pairs[i] for i in part], decision,
                    None if schemas is None else [schemas[i] for i in part], sharing, model=name,
                )
                for i, answer in zip(part, got):
                    answers[i] = answer
        return answers

    def citizen_models(self) -> pl.Series | None:
        """Each citizen's model (None for heuristic citizens), when the run seats several; else None."""
        if len(self.backends) == 1:
            return None
        models = np.full(self.society.num_citizens, None, dtype=object)
        models[self.seated] = np.array(self.model_names, dtype=object)[self.backend_of]
        return pl.Series("model", models, dtype=pl.Utf8)

    # ---- the round ------------------------------------------------------------------------------------------

    def begin_round(self) -> None:
        """Forget the previous round's call records and counts."""
        self._asker.begin_round()

    def end_round(self) -> None:
        """Remember the round: each phase's fragments (the first phase to give a key keeps it), schedule order; a
        citizen who left remembers nothing more."""
        fragments: dict[str, list[str]] = {}
        for phase in self.society.phases:
            for key, texts in phase.memory(self.members).items():
                fragments.setdefault(key, texts)
        lines = round_lines(self.society.round, fragments, self.members.size)
        if self.members.size == self.seated.size:
            self.memory.push(lines)
            return
        every = [""] * self.seated.size
        for position, line in zip(self.position[self.members].tolist(), lines):
            every[position] = line
        self.memory.push(every)

    def remember(self, citizens: np.ndarray, texts: Sequence[str], label: str = "Message heard") -> None:
        """Add texts to LLM citizens' memory of this round, each shown as `label: "text"`; others are skipped.

        The label says what the text is (a message heard, an announcement, the citizen's own decision); the
        text itself is always quoted data.
        """
        for citizen, text in zip(citizens, texts, strict=True):
            position = self.position[citizen]
            if position >= 0:
                self.memory.add_note(int(position), text, label)

    def round_metrics(self) -> dict[str, Any]:
        """This round's LLM columns of the `rounds` table: requests, fallbacks per phase, tokens."""
        return self._asker.round_metrics()

    def round_calls(self) -> pl.DataFrame:
        """Every call of the round just played, one row per citizen asked."""
        return self._asker.round_calls()

    def persona_table(self) -> pl.DataFrame:
        """One row per LLM citizen: role, values, hidden agenda, Big Five scores."""
        return pl.DataFrame(self.personas)

    # ---- arrivals and departures ----------------------------------------------------------------------------

    def seat(self, n: int) -> None:
        """Make `position` cover citizens 0..n-1 (the society grew; newcomers are not LLM citizens unless admitted)."""
        if self.position.size < n:
            self.position = np.concatenate([self.position, np.full(n - self.position.size, -1, dtype=np.int64)])

    def admit(self, rows: Sequence[dict[str, Any]], backend: int | np.ndarray) -> None:
        """Seat newcomers as LLM citizens: their persona rows (`persona_row`, each naming its citizen, all numbered
        past everyone seated), asking model `backend` (one for all, or one each), with an empty memory."""
        citizens = np.array([row["citizen"] for row in rows], dtype=np.int64)
        self.seat(int(citizens.max()) + 1)
        self.position[citizens] = np.arange(self.seated.size, self.seated.size + citizens.size)
        keys = list(dict.fromkeys([*self.personas, *(key for row in rows for key in row)]))
        self.personas = {key: [*self.personas.get(key, [None] * self.seated.size), *(row.get(key) for row in rows)]
                         for key in keys}
        self.seated = np.concatenate([self.seated, citizens])
        self.members = np.concatenate([self.members, citizens])
        backends = np.broadcast_to(np.asarray(backend, dtype=np.int64), citizens.shape)
        self.backend_of = np.concatenate([self.backend_of, backends])
        self.memory.grow(citizens.size)
        self.arrivals += [dict(row) for row in rows]

    def leave(self, citizens: np.ndarray) -> None:
        """The LLM citizens among `citizens` left: never asked again (their rows stay seated)."""
        self.members = self.members[~np.isin(self.members, citizens)]

    def backend_for(self, spec: LLMPolicy) -> int:
        """The index of the model that newcomers of policy `spec` ask."""
        return self.backends.index(group_settings(self.settings, spec))

    def seating(self) -> dict[str, Any]:
        """Who arrived (persona rows and model) and who is still present, for a checkpoint."""
        arrived = self.position[[row["citizen"] for row in self.arrivals]] if self.arrivals else NO_CITIZENS
        return {"arrivals": [dict(row) for row in self.arrivals], "backends": self.backend_of[arrived].copy(),
                "members": self.members.copy()}

    def load_seating(self, seating: dict[str, Any]) -> None:
        """Seat the arrivals a checkpoint records that are not seated yet, and keep only its present members."""
        new = [k for k, row in enumerate(seating["arrivals"])
               if int(row["citizen"]) >= self.position.size or self.position[int(row["citizen"])] < 0]
        if new:
            self.admit([seating["arrivals"][k] for k in new], np.asarray(seating["backends"])[new])
        self.members = np.asarray(seating["members"], dtype=np.int64).copy()

    def state_dict(self) -> dict[str, Any]:
        return {"memory": self.memory.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.memory.load_state_dict(state["memory"])

    # ---- the model ------------------------------------------------------------------------------------------

    def _connect(self, k: int) -> Connection:
        """The connection to the run's `k`-th model; used outside a run, its backend is opened (without a cache)."""
        if self.connections[k] is None:
            self.connections[k] = self._default_connection.enter_context(connect(self.backends[k]))
        return self.connections[k]

    def close(self) -> None:
        """Close a connection this object opened itself (a local server it started is stopped)."""
        self._default_connection.close()
