"""The Society: a Mesa model whose round is a schedule of whole-population phases."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cached_property
from typing import Any, TypeVar

import mesa
import numpy as np
import polars as pl

from society.core.build import assign_groups, assign_patches, build_graph
from society.core.citizen import Citizen
from society.core.interventions import Interventions
from society.core.metrics import ColumnGinis, core_metrics
from society.core.rng import RngTree
from society.core.state import CitizenState
from society.llm.citizens import LLMCitizens
from society.phases import Phase, registered_phases
from society.phases.deciding import DecidingPath
from society.policies.heuristics import PolicyRules, initial_strategies
from society.scenario.problems import ScenarioError
from society.scenario.schedule import schedule_problems
from society.scenario.schema import Scenario
from society.world.commons import Commons
from society.world.graph import SocialGraph

EVENT_SCHEMA: dict[str, pl.DataType] = {
    "round": pl.Int32,
    "phase": pl.Utf8,
    "kind": pl.Utf8,
    "actor": pl.Int64,
    "target": pl.Int64,
    "cost": pl.Float64,
    "impact": pl.Float64,
    "detail": pl.Utf8,
}
T = TypeVar("T")


class Society(mesa.Model):
    """Citizens on a social graph sharing a commons, stepped one round at a time.

    State lives in `self.state` (one array per attribute); `self.citizens` gives Mesa agents that view it,
    created on first use so a million-citizen run pays for them only when someone looks. What phases share
    beyond the state lives in `self.slots` (see `slot`); `self.providers` names the phase that provides each
    thing a phase declares in `provides`, for the later phases that require it.
    """

    def __init__(self, scenario: Scenario) -> None:
        problems = schedule_problems(scenario, scenario.name)
        if problems:
            raise ScenarioError(problems)
        self.rng_tree = RngTree(scenario.seed)
        super().__init__(rng=self.rng_tree.child_seed("mesa"))
        self.scenario = scenario
        population = scenario.population
        self.num_citizens = population.size
        self.policy_specs = list(population.policies)
        self.graph: SocialGraph = build_graph(scenario.graph, self.num_citizens, self.rng_tree("graph"))
        self.state = _core_state(self.num_citizens, population.initial_wealth)
        self.state["group"] = assign_groups(population, self.rng_tree("population"))
        self.group_members = [np.flatnonzero(self.state["group"] == g) for g in range(len(self.policy_specs))]
        self.policy_rules = PolicyRules.of(self.policy_specs, self.state["group"], self.graph)
        initial_strategies(self)
        self.commons: Commons | None = None
        if scenario.commons is not None:
            patch = self.state.add("patch", np.int64)
            patch[:] = assign_patches(
                self.num_citizens, scenario.commons.patches, scenario.commons.assignment, self.rng_tree("commons")
            )
            self.commons = Commons(scenario.commons, patch)
        self.llm: LLMCitizens | None = LLMCitizens(self) if scenario.has_llm_citizens else None
        self.slots: dict[type, Any] = {}
        self.deciding = DecidingPath(self)
        self.providers: dict[str, Phase] = {}
        self.phases: list[Phase] = []
        self.build_phases()
        self.collapse_round: int | None = None
        self.round_row: dict[str, Any] = {}
        self._events: list[tuple[Any, ...]] = []
        self.phase_seconds: dict[str, float] = {}
        self.column_ginis = ColumnGinis("wealth", "total_take")
        self.interventions = Interventions(self)

    @property
    def round(self) -> int:
        """Rounds completed (or, inside `step`, the number of the round in flight)."""
        return self.steps

    @cached_property
    def citizens(self) -> mesa.AgentSet:
        """Mesa agents viewing the state arrays, one per citizen."""
        for index in range(self.num_citizens):
            Citizen(self, index)
        return self.agents_by_type[Citizen]

    def build_phases(self) -> None:
        """Build the schedule's phases in order, each naming what it provides before the next is built."""
        self.providers, self.phases = {}, []
        for index, entry in enumerate(self.scenario.schedule):
            self.phases.append(registered_phases()[entry.phase](self, entry.params, index))
            self.index_providers()

    def index_providers(self) -> None:
        """Name the first phase that provides each thing, for the later phases that require it."""
        self.providers = {}
        for phase in self.phases:
            for what in phase.provides:
                self.providers.setdefault(what, phase)

    def slot(self, kind: type[T], factory: Callable[[], T] | None = None) -> T:
        """The one `kind` object the phases share, made by `factory` (default: `kind()`) for the first that asks.

        Phases claim their slots when they are built; a slot object with `state_dict`/`load_state_dict` is kept
        in the society's checkpoints.
        """
        if kind not in self.slots:
            self.slots[kind] = kind() if factory is None else factory()
        return self.slots[kind]

    @property
    def present(self) -> np.ndarray | None:
        """Who is still there (a boolean per citizen), or None while nobody has been removed: then everyone is."""
        return self.state["present"] if "present" in self.state else None

    def present_mask(self) -> np.ndarray:
        """A boolean per citizen: still there (a fresh array of all True while nobody has been removed)."""
        present = self.present
        return np.ones(self.num_citizens, dtype=np.bool_) if present is None else present.copy()

    @property
    def num_present(self) -> int:
        """How many citizens are still there."""
        present = self.present
        return self.num_citizens if present is None else int(present.sum())

    def present_citizens(self) -> np.ndarray:
        """The citizens still there, in citizen order (removed ones are gone from every phase and metric)."""
        present = self.present
        return np.arange(self.num_citizens) if present is None else np.flatnonzero(present)

    def policy_name(self, index: int) -> str:
        """Policy of citizen `index`."""
        return self.policy_specs[int(self.state["group"][index])].policy

    def step(self) -> None:
        """Play one round: the interventions due, every phase in schedule order, then the round's metrics."""
        self._events = []
        self.interventions.before_round()
        state = self.state
        state["punish_paid"] = 0.0
        state["punish_received"] = 0.0
        wealth_before = state["wealth"].copy()
        if self.llm is not None:
            self.llm.begin_round()
        self.deciding.begin_round()
        row: dict[str, Any] = {"round": self.round}
        for phase in self.phases:
            started = time.perf_counter()
            phase.run()
            self.phase_seconds[phase.name] = self.phase_seconds.get(phase.name, 0.0) + time.perf_counter() - started
            row |= phase.metrics()
        state["payoff"] = state["wealth"] - wealth_before
        if self.commons is not None and self.collapse_round is None and self.commons.collapsed.all():
            self.collapse_round = self.round
        row |= core_metrics(self)
        if self.llm is not None:
            self.llm.end_round()
            row |= self.llm.round_metrics()
        row |= self.deciding.round_metrics()
        self.round_row = row
        if self.collapse_round is not None and self.scenario.commons.on_collapse == "stop":
            self.running = False
        if self.round >= self.scenario.rounds:
            self.running = False

    def record_events(
        self,
        phase: str,
        kind: str,
        actors: np.ndarray,
        targets: np.ndarray,
        cost: np.ndarray | float | None = None,
        impact: np.ndarray | float | None = None,
        detail: list[str | None] | None = None,
    ) -> None:
        """Add a batch of this round's events (punishments, later votes and messages) to the events table."""
        self._events.append((self.round, phase, kind, actors, targets, cost, impact, detail))

    def round_events(self) -> pl.DataFrame:
        """The events of the round just played (built only when asked for)."""
        frames = [_event_frame(*batch) for batch in self._events]
        return pl.concat(frames) if frames else pl.DataFrame(schema=EVENT_SCHEMA)

    def round_event_batches(self) -> list[tuple]:
        """The events of the round just played as `record_events` took them, batch by batch: (round, phase, kind,
        actors, targets, cost, impact, detail); the recorder encodes them straight into the events file."""
        return list(self._events)

    def round_citizens(self) -> pl.DataFrame:
        """One row per citizen with every recorded state column, for the round just played."""
        state = self.state
        policies = pl.Series("policy", [spec.policy for spec in self.policy_specs], dtype=pl.Categorical)
        columns: dict[str, Any] = {
            "round": np.full(self.num_citizens, self.round, dtype=np.int32),
            "citizen": np.arange(self.num_citizens, dtype=np.int64),
        }
        columns |= {name: state[name].copy() for name in state.recorded()}
        frame = pl.DataFrame(columns).with_columns(policy=policies.gather(columns["group"]))
        models = None if self.llm is None else self.llm.citizen_models()
        frame = frame if models is None else frame.with_columns(models)
        return frame.filter(state["present"]) if "present" in state else frame  # removed citizens have no row

    def checkpoint(self) -> dict[str, Any]:
        """Everything needed to continue the run bit-identically from the end of this round.

        Only JSON data (string keys) and numpy arrays of plain dtypes, so it is stored without pickle.
        """
        return {
            "round": self.round,
            "running": self.running,
            "collapse_round": self.collapse_round,
            "state": self.state.snapshot(),
            "rngs": self.rng_tree.state(),
            "mesa_rng": self.rng.bit_generator.state,
            "mesa_random": list(self.random.getstate()),
            "commons": None if self.commons is None else self.commons.state_dict(),
            "phases": [phase.state_dict() for phase in self.phases],
            "slots": {_slot_key(kind): shared.state_dict() for kind, shared in self.slots.items()
                      if hasattr(shared, "state_dict")},
            "llm": None if self.llm is None else self.llm.state_dict(),
            "interventions": self.interventions.state_dict(),
        }

    def restore(self, checkpoint: dict[str, Any]) -> None:
        """Continue from a checkpoint taken by a Society built from the same scenario."""
        self.steps = checkpoint["round"]
        self.running = checkpoint["running"]
        self.collapse_round = checkpoint["collapse_round"]
        if "interventions" in checkpoint:
            self.interventions.load_state_dict(checkpoint["interventions"])
        self.state.restore(checkpoint["state"])
        self.rng_tree.restore(checkpoint["rngs"])
        self.rng.bit_generator.state = checkpoint["mesa_rng"]
        version, internal, gauss = checkpoint["mesa_random"]
        self.random.setstate((version, tuple(internal), gauss))
        if self.commons is not None:
            self.commons.load_state_dict(checkpoint["commons"])
        for phase, phase_state in zip(self.phases, checkpoint["phases"], strict=True):
            phase.load_state_dict(phase_state)
        kept = {_slot_key(kind): shared for kind, shared in self.slots.items() if hasattr(shared, "load_state_dict")}
        missing = set(kept) - set(checkpoint.get("slots", {}))
        if missing:
            raise ValueError(f"checkpoint lacks slots: {sorted(missing)}")
        for key, shared in kept.items():
            shared.load_state_dict(checkpoint["slots"][key])
        if self.llm is not None:
            self.llm.load_state_dict(checkpoint["llm"])


def _slot_key(kind: type) -> str:
    """A slot's name in checkpoints: its class's full name."""
    return f"{kind.__module__}.{kind.__qualname__}"


def _event_frame(
    number: int,
    phase: str,
    kind: str,
    actors: np.ndarray,
    targets: np.ndarray,
    cost: np.ndarray | float | None,
    impact: np.ndarray | float | None,
    detail: list[str | None] | None,
) -> pl.DataFrame:
    """One batch of events as rows of the events table."""

    def column(values: np.ndarray | float | None) -> pl.Expr | np.ndarray:
        if values is None or np.ndim(values) == 0:
            return pl.lit(values, pl.Float64)
        return np.asarray(values, dtype=np.float64)

    frame = pl.DataFrame(
        {"actor": np.asarray(actors, dtype=np.int64), "target": np.asarray(targets, dtype=np.int64)}
    ).with_columns(
        round=pl.lit(number, pl.Int32),
        phase=pl.lit(phase),
        kind=pl.lit(kind),
        cost=column(cost),
        impact=column(impact),
        detail=pl.lit(None, pl.Utf8) if detail is None else pl.Series(detail, dtype=pl.Utf8),
    )
    return frame.select(EVENT_SCHEMA.keys())


def _core_state(n: int, initial_wealth: float) -> CitizenState:
    """The state columns every society has; phases add their own."""
    state = CitizenState(n)
    state.add("group", np.int16)
    state.add("wealth", np.float64, initial_wealth)
    state.add("requested", np.float64)
    state.add("take", np.float64)
    state.add("fair_share", np.float64)
    state.add("ratio", np.float64, 1.0)
    state.add("strategy", np.float64, 1.0, record=False)
    state.add("payoff", np.float64)
    state.add("reputation", np.float64, 1.0)
    state.add("punish_paid", np.float64)
    state.add("punish_received", np.float64)
    state.add("total_take", np.float64)
    return state
