"""Applying a scenario's interventions to a running society, and keeping what they changed in its checkpoints.

Each intervention fires once, at the start of a round, before the round's phases; it is recorded as one
`intervention` event (phase `interventions`, actor and target -1) whose detail is a JSON of what was applied.

`set` replaces the society's scenario with the changed one and takes the change up where it is read: the phases
whose parameters changed are rebuilt (keeping their checkpoint state), the commons reads its new section, the
policy rules are rebuilt from the changed policies. `add` grows the population: every state column gets the
newcomers' rows (at the column's initial value), the graph links each newcomer to citizens drawn from the
`interventions` stream, and the components holding per-citizen arrays (commons, policy rules, phases and their
shared slots) are rebuilt around the grown state, their checkpoint state carried over. LLM newcomers are first
seated by the LLM citizens (`LLMCitizens.admit`: persona rows drawn from the intervention's own stream
`personas:interventions[i]`, an empty memory, their model), so the rebuilt phases ask them like any LLM citizen.

`remove` parks citizens: each keeps its number and its rows in the state arrays (so every table and event before
and after names citizens alike), but loses its links (nobody punishes it, imitates it or sees its take, and it sees
nobody), joins a policy group of its own that asks for nothing, no longer counts toward its patch's sustainable
share, and leaves the citizens table: a removed citizen has no row from the round of its removal on. The state
column `present` (not recorded) marks who is still there. A removed LLM citizen also leaves `LLMCitizens.members`:
no phase asks it, no activation or cohort draw counts it, and its memory takes no more rounds. Phases and the
rounds' metrics read who is there through `Society.present` (None while nobody has been removed).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import TypeAdapter

from society.core.citizen import Citizen
from society.llm.personas import group_personas, introduce, persona_row, stored_persona
from society.phases import registered_phases
from society.phases.deciding import DecidingPath
from society.policies.heuristics import PolicyRules
from society.scenario.interventions import Intervention, PersonaChange, set_scenario
from society.scenario.problems import Problem, ScenarioError
from society.scenario.schema import (
    CompleteGraph,
    FixedPolicy,
    ImitatorPolicy,
    LearnerPolicy,
    LLMPolicy,
    PolicySpec,
    Scenario,
)
from society.world.commons import Commons
from society.world.graph import SocialGraph

if TYPE_CHECKING:
    from society.core.model import Society

PHASE = "interventions"
KIND = "intervention"


class Interventions:
    """The society's pending and fired interventions."""

    def __init__(self, society: Society) -> None:
        self.society = society
        self.planned: list[Intervention] = list(society.scenario.interventions)
        self.fired: list[int] = []
        self.grown = False
        problems = persona_problems(society, self.planned)
        if problems:
            raise ScenarioError(problems)

    def before_round(self) -> None:
        """Apply every intervention due at the start of the round now beginning, in scenario order."""
        for index, intervention in enumerate(self.planned):
            if index not in self.fired and self._due(intervention):
                self.fired.append(index)
                self._apply(index, intervention)

    def _due(self, intervention: Intervention) -> bool:
        when, society = intervention.when, self.society
        if when.round is not None:
            return society.round == when.round
        commons = society.commons
        return float(commons.stock.sum()) < when.stock_below * float(commons.capacity.sum())

    def _apply(self, index: int, intervention: Intervention) -> None:
        detail: dict[str, Any] = {"intervention": index, "when": intervention.when.model_dump(exclude_none=True)}
        if intervention.set:
            self._set(intervention.set)
            detail["set"] = intervention.set
        if intervention.add is not None:
            detail["add"] = self._add(index, intervention)
        if intervention.remove is not None:
            detail["remove"] = self._remove(intervention)
        if intervention.shock is not None:
            detail["shock"] = self._shock(intervention.shock.severity)
        if intervention.broadcast is not None:
            self._broadcast(intervention.broadcast)
            detail["broadcast"] = intervention.broadcast
        if intervention.persona is not None:
            detail["persona"] = self._persona(index, intervention.persona)
        minus_one = np.array([-1], dtype=np.int64)
        self.society.record_events(PHASE, KIND, minus_one, minus_one, detail=[json.dumps(detail, sort_keys=True)])

    # ---- set ------------------------------------------------------------------------------------------------

    def _set(self, changes: dict[str, Any]) -> None:
        """Replace the scenario with the changed one and take the change up where it is read."""
        society = self.society
        old = society.scenario
        new = Scenario.model_validate(set_scenario(old.model_dump(mode="json"), changes))
        society.scenario = new
        if society.commons is not None and new.commons != old.commons:
            society.commons.spec = new.commons
            society.commons.capacity[:] = new.commons.capacity
        if new.population.policies != old.population.policies:
            planned = len(new.population.policies)
            society.policy_specs[:planned] = new.population.policies
            society.policy_rules = PolicyRules.of(society.policy_specs, society.state["group"], society.graph)
        changed = [i for i, (a, b) in enumerate(zip(old.schedule, new.schedule, strict=True)) if a != b]
        for index in changed:
            phase = society.phases[index]
            rebuilt = registered_phases()[phase.name](society, new.schedule[index].params, index)
            rebuilt.load_state_dict(phase.state_dict())
            society.phases[index] = rebuilt
        if changed:
            society.index_providers()

    # ---- add ------------------------------------------------------------------------------------------------

    def _add(self, index: int, intervention: Intervention) -> dict[str, Any]:
        """Grow the population by the newcomers; what they are (citizen numbers, group, patches, the earlier
        citizens each is linked to: the run folder's graph file is the graph of round 0; for LLM newcomers, the
        model they ask)."""
        society, add = self.society, intervention.add
        rng = society.rng_tree("interventions")
        n, k = society.num_citizens, add.count
        specs = list(society.policy_specs)
        planned = len(society.scenario.population.policies)
        if add.policy in specs[planned:]:  # newcomers form groups of their own, one per policy spec
            group = planned + specs[planned:].index(add.policy)
        else:
            group = len(specs)
            specs.append(add.policy)
        links = add.links
        if links is None:
            degree = society.graph.indices.size / max(n, 1)
            links = n if isinstance(society.scenario.graph, CompleteGraph) else max(1, round(degree))
        links = min(links, n)
        newcomers = np.arange(n, n + k, dtype=np.int64)
        u, v = society.graph.edges()
        pool = np.flatnonzero(society.state["present"]) if "present" in society.state else n  # none removed
        links = min(links, n if isinstance(pool, int) else pool.size)
        chosen = [rng.choice(pool, size=links, replace=False) for _ in range(k)]
        u = np.concatenate([u, np.repeat(newcomers, links)])
        v = np.concatenate([v, *chosen])
        if isinstance(society.scenario.graph, CompleteGraph) and add.links is None:
            pairs = np.array([(a, b) for a in newcomers for b in newcomers if a < b], dtype=np.int64).reshape(-1, 2)
            u, v = np.concatenate([u, pairs[:, 0]]), np.concatenate([v, pairs[:, 1]])
        first_links = np.array([links_of[0] for links_of in chosen], dtype=np.int64)
        blocks = None if society.graph.blocks is None else np.concatenate(  # a newcomer joins its first link's block
            [society.graph.blocks, society.graph.blocks[first_links]])
        graph = SocialGraph.from_edges(n + k, u, v, blocks)
        group_column = np.concatenate([society.state["group"], np.full(k, group, dtype=np.int16)])
        patch_column = None
        if society.commons is not None:
            patches = society.commons.num_patches
            patch = rng.integers(0, patches, k) if add.patch is None else np.full(k, add.patch)
            patch_column = np.concatenate([society.state["patch"], patch.astype(np.int64)])
        spec = specs[group]
        model = {}
        if isinstance(spec, LLMPolicy):
            model = {"model": self._admit(index, spec, newcomers)}
        grow(society, graph, specs, group_column, patch_column)
        if isinstance(spec, ImitatorPolicy | LearnerPolicy):
            society.state["strategy"][newcomers] = rng.uniform(*spec.initial_ratio, k)
        if add.told is not None:
            society.llm.remember(newcomers, [add.told] * k, label="On arrival")
        self.grown = True
        return {"citizens": newcomers.tolist(), "group": group, "policy": spec.policy, "links": links,
                "linked_to": [sorted(links_of.tolist()) for links_of in chosen], **model,
                **({} if patch_column is None else {"patches": patch_column[newcomers].tolist()})}

    def _admit(self, index: int, spec: LLMPolicy, newcomers: np.ndarray) -> str:
        """Seat LLM newcomers, their personas drawn from the intervention's own stream (so no other draw moves);
        the name of the model they ask."""
        llm = self.society.llm
        rng = self.society.rng_tree(f"personas:interventions[{index}]")
        personas = group_personas(spec.persona, newcomers, rng, f"interventions[{index}].add.policy.persona")
        backend = llm.backend_for(spec)
        llm.admit([persona_row(personas, k) for k in range(newcomers.size)], backend)
        return llm.model_names[backend]

    # ---- remove ---------------------------------------------------------------------------------------------

    def _remove(self, intervention: Intervention) -> dict[str, Any]:
        """Park the leaving citizens (the listed ones, or `count` of the policy's present citizens drawn from the
        `interventions` stream, fewer if fewer are left); who left and the policies they followed."""
        society, remove = self.society, intervention.remove
        present = society.state.add("present", np.bool_, True, record=False)
        if remove.citizens is not None:
            leaving = np.array(sorted(remove.citizens), dtype=np.int64)
            leaving = leaving[present[leaving]]
        else:
            groups = [g for g, spec in enumerate(society.policy_specs)
                      if spec.policy == remove.policy and g != _parked_group(society)]
            candidates = np.sort(np.concatenate([society.group_members[g] for g in groups]))
            candidates = candidates[present[candidates]]
            rng = society.rng_tree("interventions")
            leaving = np.sort(rng.choice(candidates, size=min(remove.count, candidates.size), replace=False))
        policies = [society.policy_name(int(c)) for c in leaving]
        if society.llm is not None:
            society.llm.leave(leaving)
        park(society, leaving)
        self.grown = True
        return {"citizens": leaving.tolist(), "policies": policies}

    # ---- shock, broadcast -----------------------------------------------------------------------------------

    def _shock(self, severity: float) -> float:
        """Destroy `severity` of every patch's stock; the units destroyed."""
        commons = self.society.commons
        lost = commons.stock * severity
        commons.stock = commons.stock - lost
        return float(lost.sum())

    def _broadcast(self, text: str) -> None:
        """Tell every LLM citizen `text`: a note in the round now beginning, quoted in its memory."""
        llm = self.society.llm
        llm.remember(llm.members, [text] * llm.members.size, label="Announcement")

    # ---- persona --------------------------------------------------------------------------------------------

    def _persona(self, index: int, change: PersonaChange) -> dict[str, Any]:
        """Give the named LLM citizens their new persona (what their prompts say after "You are citizen N,"); the
        change as given."""
        llm = self.society.llm
        personas = llm.personas
        unseated = [c for c in change.citizens if c >= llm.position.size or llm.position[c] < 0]
        if unseated:  # newcomers whose arrival was due later than the change
            raise ScenarioError([Problem(self.society.scenario.name, f"interventions[{index}].persona.citizens",
                                         f"not LLM citizens when it fires (round {self.society.round}): {unseated}; "
                                         "a newcomer's persona can change from its arrival on")])
        for citizen in change.citizens:
            k = int(llm.position[citizen])
            if change.role is not None:
                personas["role"][k] = change.role
            for name, score in change.traits.items():
                personas[name][k] = score
            if change.values is not None:
                personas["values"][k] = list(change.values)
            if "agenda" in change.model_fields_set:
                personas["agenda"][k] = change.agenda or None
            described = change.description or stored_persona(personas, k).describe(0)
            personas["description"][k] = introduce(citizen, described)
        return change.model_dump(mode="json", exclude_unset=True)

    # ---- checkpoints ----------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The fired interventions and, once citizens were added, the grown structure (graph and policy groups)."""
        society = self.society
        state: dict[str, Any] = {"fired": list(self.fired)}
        if self.grown:
            state["grown"] = {
                "indptr": society.graph.indptr.copy(),
                "indices": society.graph.indices.copy(),
                "blocks": None if society.graph.blocks is None else society.graph.blocks.copy(),
                "specs": [spec.model_dump(mode="json") for spec in society.policy_specs],
                "group": society.state["group"].copy(),
                "patch": society.state["patch"].copy() if "patch" in society.state else None,
                "present": society.state["present"].copy() if "present" in society.state else None,
                "llm": None if society.llm is None else society.llm.seating(),
            }
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Replay what the fired interventions changed in the society's make-up (before its state is loaded)."""
        self.fired = [int(index) for index in state["fired"]]
        for index in self.fired:
            if self.planned[index].set:
                self._set(self.planned[index].set)
        grown = state.get("grown")
        if grown is not None:
            specs = [TypeAdapter(PolicySpec).validate_python(spec) for spec in grown["specs"]]
            n = grown["group"].size
            graph = SocialGraph(n, grown["indptr"], grown["indices"], grown["blocks"])
            if grown.get("llm") is not None:  # LLM newcomers seated and leavers gone before the phases are rebuilt
                self.society.llm.load_seating(grown["llm"])
            grow(self.society, graph, specs, grown["group"], grown["patch"])
            if grown.get("present") is not None:
                self.society.state.add("present", np.bool_, True, record=False)[:] = grown["present"]
                count_present(self.society)  # grow counted before the column was back
            self.grown = True
        for index in self.fired:  # after the arrivals: a persona change may name a newcomer
            if self.planned[index].persona is not None:
                self._persona(index, self.planned[index].persona)


def persona_problems(society: Society, planned: list[Intervention]) -> list[Problem]:
    """Persona changes naming a citizen who is not an LLM citizen (known once the population is drawn), counting
    the LLM newcomers of earlier interventions (numbered on from the population, in the order listed)."""
    problems = []
    llm = society.llm
    seated = set() if llm is None else set(llm.members.tolist())
    number = society.num_citizens
    for i, intervention in enumerate(planned):
        if intervention.add is not None:  # an intervention's newcomers arrive before its persona change
            if isinstance(intervention.add.policy, LLMPolicy):
                seated |= set(range(number, number + intervention.add.count))
            number += intervention.add.count
        if intervention.persona is None:
            continue
        field = f"interventions[{i}].persona.citizens"
        wrong = [c for c in intervention.persona.citizens if c not in seated]
        if llm is None:
            problems.append(Problem(society.scenario.name, field, "the scenario has no LLM citizens"))
        elif wrong:
            listed = sorted(seated)
            problems.append(Problem(society.scenario.name, field,
                                    f"not LLM citizens: {', '.join(map(str, wrong))}; the LLM citizens are "
                                    f"{', '.join(map(str, listed[:50]))}" + (" ..." if len(listed) > 50 else "")))
    return problems


PARKED = FixedPolicy(policy="fixed", fraction=1.0, amount=0.0)
"""The policy of removed citizens' group: they ask for nothing."""


def _parked_group(society: Society) -> int | None:
    """The removed citizens' policy group, once there is one."""
    planned = len(society.scenario.population.policies)
    specs = society.policy_specs[planned:]
    return planned + specs.index(PARKED) if PARKED in specs else None


def park(society: Society, leaving: np.ndarray) -> None:
    """Take `leaving` out of the society's life: not present, no links, in the parked group, off the patch
    counts; rebuilt as an arrival rebuilds (`grow`, with no new rows)."""
    specs = list(society.policy_specs)
    group = _parked_group(society)
    if group is None:
        group, specs = len(specs), [*specs, PARKED]
    present = society.state["present"]
    present[leaving] = False
    u, v = society.graph.edges()
    kept = present[u] & present[v]
    graph = SocialGraph.from_edges(society.num_citizens, u[kept], v[kept], society.graph.blocks)
    group_column = society.state["group"].copy()
    group_column[leaving] = group
    patch = society.state["patch"].copy() if society.commons is not None else None
    grow(society, graph, specs, group_column, patch)


def count_present(society: Society) -> None:
    """Patch shares count present citizens only."""
    if society.commons is not None and "present" in society.state:
        present = society.state["present"]
        commons = society.commons
        commons.citizens_per_patch = np.bincount(commons.patch_of_citizen[present], minlength=commons.num_patches)


def grow(
    society: Society, graph: SocialGraph, specs: list[Any], group: np.ndarray, patch: np.ndarray | None
) -> None:
    """Give the society its new make-up (more citizens, or removed ones parked): state rows, graph, policy groups,
    patches; rebuild what holds per-citizen arrays (commons, policy rules, deciding path, phases and their slots),
    carrying their checkpoint state."""
    n = graph.n
    old_n = society.num_citizens
    phases_state = [phase.state_dict() for phase in society.phases]
    slots_state = {kind: shared.state_dict() for kind, shared in society.slots.items() if hasattr(shared, "state_dict")}
    society.state = society.state.grown(n - old_n)
    society.num_citizens = n
    society.graph = graph
    society.policy_specs = list(specs)
    society.state["group"] = group
    society.group_members = [np.flatnonzero(group == g) for g in range(len(specs))]
    society.policy_rules = PolicyRules.of(society.policy_specs, group, graph)
    if society.commons is not None:
        society.state["patch"] = patch
        commons_state = society.commons.state_dict()
        society.commons = Commons(society.scenario.commons, society.state["patch"])
        society.commons.load_state_dict(commons_state)
    if society.llm is not None:
        society.llm.seat(n)
    if "citizens" in society.__dict__:
        for index in range(old_n, n):
            Citizen(society, index)
    society.slots = {}
    society.deciding = DecidingPath(society)
    society.build_phases()
    for phase, state in zip(society.phases, phases_state, strict=True):
        phase.load_state_dict(state)
    for kind, shared in society.slots.items():
        if kind in slots_state:
            shared.load_state_dict(slots_state[kind])
    count_present(society)

