"""The typed scenario schema: what a YAML scenario may say, with defaults and validation."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SerializeAsAny,
    Tag,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from society.phases import registered_phases
from society.scenario.bounds import (
    MAX_AMOUNT,
    MAX_CITIZENS,
    MAX_FACTOR,
    MAX_NOISE,
    MAX_ROUNDS,
    MAX_SECONDS,
    MAX_SEED,
    MAX_UNITS,
)
from society.scenario.interventions import Intervention


class Strict(BaseModel):
    """Base for every scenario section: unknown keys are errors, so typos never pass silently; NaN and infinite
    numbers are errors too (see society.scenario.bounds for the upper bounds)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


Ratio = Annotated[float, Field(ge=0, le=MAX_FACTOR)]
"""A non-negative ratio or weight."""


# ---- population ---------------------------------------------------------------------------------------------


class _PolicyShare(Strict):
    fraction: float = Field(gt=0, le=1, description="share of the population following this policy")
    noise: float = Field(0.0, ge=0, le=MAX_NOISE, description="sd of multiplicative Gaussian noise on each request")


class SustainablePolicy(_PolicyShare):
    """Takes the sustainable share."""

    policy: Literal["sustainable"]


class GreedyPolicy(_PolicyShare):
    """Free-rider: takes `factor` times the sustainable share."""

    policy: Literal["greedy"]
    factor: float = Field(3.0, gt=1, le=MAX_FACTOR)


class ConditionalPolicy(_PolicyShare):
    """Conditional cooperator: matches what its neighbours took last round, relative to their shares."""

    policy: Literal["conditional"]


class _StrategyPolicy(_PolicyShare):
    """A policy that asks for its `strategy` (a take ratio to the sustainable share), drawn first from a range."""

    initial_ratio: tuple[Ratio, Ratio] = Field((0.5, 2.0), description="uniform range of the first take / share")

    @field_validator("initial_ratio")
    @classmethod
    def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 <= value[0] <= value[1]:
            raise ValueError("expected [low, high] with 0 <= low <= high")
        return value


class ImitatorPolicy(_StrategyPolicy):
    """Payoff-biased imitator: copies the take of its most successful neighbour when that neighbour did better."""

    policy: Literal["imitator"]


class LearnerPolicy(_StrategyPolicy):
    """Asks for its strategy, which only learning phases (social learning, norms) change."""

    policy: Literal["learner"]


class FixedPolicy(_PolicyShare):
    """Always asks for the same amount."""

    policy: Literal["fixed"]
    amount: float = Field(ge=0, le=MAX_AMOUNT)


BIG_FIVE = ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism")


def known_traits(traits: dict[str, Any]) -> dict[str, Any]:
    """`traits` if every name is one of the Big Five, else a ValueError naming the unknown ones."""
    unknown = sorted(set(traits) - set(BIG_FIVE))
    if unknown:
        raise ValueError(f"unknown traits {unknown}; expected some of {list(BIG_FIVE)}")
    return traits


class TraitDistribution(Strict):
    """A trait score in [0, 1] drawn from a normal distribution, clipped."""

    mean: float = Field(0.5, ge=0, le=1)
    sd: float = Field(0.15, ge=0, le=MAX_FACTOR)


class PersonaSpec(Strict):
    """Distributions the personas of one group of LLM citizens are drawn from, or a file of persona rows.

    With `file` (a CSV or Parquet file, relative to the scenario file that names it) the personas come from the
    file's rows (see society.llm.persona_files) and no other persona field may be given.
    """

    file: Path | None = Field(None, description="CSV or Parquet persona rows: one per citizen, or weighted")
    traits: dict[str, TraitDistribution] = Field(default_factory=dict)
    values: list[str] = Field(default_factory=lambda: ["fairness", "family", "prosperity", "tradition", "freedom"])
    values_per_citizen: int = Field(2, ge=0, le=MAX_CITIZENS)
    roles: dict[str, Ratio] = Field(default_factory=lambda: {"fisher": 1.0}, description="role: weight")
    hidden_agendas: list[str] = Field(default_factory=list)
    hidden_agenda_probability: float = Field(0.0, ge=0, le=1)

    @field_validator("traits")
    @classmethod
    def _known_traits(cls, traits: dict[str, TraitDistribution]) -> dict[str, TraitDistribution]:
        return known_traits(traits)

    @model_validator(mode="after")
    def _file_alone(self) -> "PersonaSpec":
        fields = type(self).model_fields
        others = sorted(name for name in self.model_fields_set - {"file"}
                        if getattr(self, name) != fields[name].get_default(call_default_factory=True))
        if self.file is not None and others:
            raise ValueError(f"a persona file gives every persona field; drop {others} or the file")
        return self

    @field_validator("roles")
    @classmethod
    def _positive_weights(cls, roles: dict[str, float]) -> dict[str, float]:
        if not roles or any(weight < 0 for weight in roles.values()) or sum(roles.values()) <= 0:
            raise ValueError("expected at least one role with a positive weight")
        return roles


def http_urls(urls: list[str]) -> list[str]:
    """`urls` without trailing slashes, if each is an http:// or https:// URL."""
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"expected http:// or https:// URLs, got {url!r}")
    return [url.rstrip("/") for url in urls]


class LLMPolicy(Strict):
    """Decides through a language model, prompted with its persona, its memory and what it observes.

    A group may name its own model (and servers), so one run can seat several models side by side.
    """

    policy: Literal["llm"]
    fraction: float = Field(gt=0, le=1, description="share of the population following this policy")
    persona: PersonaSpec = Field(default_factory=PersonaSpec)
    model: str | None = Field(
        None, description="this group's model: a served name (server) or a model directory (local); None: llm.model"
    )
    base_urls: list[str] | None = Field(None, description="this group's servers (backend: server); None: llm's")

    @field_validator("base_urls")
    @classmethod
    def _http_urls(cls, urls: list[str] | None) -> list[str] | None:
        return None if urls is None else http_urls(urls)


PolicySpec = Annotated[
    Union[
        SustainablePolicy, GreedyPolicy, ConditionalPolicy, ImitatorPolicy, LearnerPolicy, FixedPolicy, LLMPolicy
    ],
    Field(discriminator="policy"),
]


class Population(Strict):
    size: int = Field(gt=0, le=MAX_CITIZENS, description="number of citizens")
    policies: list[PolicySpec] = Field(min_length=1)
    initial_wealth: float = Field(0.0, ge=-MAX_AMOUNT, le=MAX_AMOUNT)

    @field_validator("policies")
    @classmethod
    def _fractions_sum_to_one(cls, policies: list[Any]) -> list[Any]:
        total = sum(p.fraction for p in policies)
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"policy fractions must sum to 1, got {total:g}")
        return policies


# ---- graph --------------------------------------------------------------------------------------------------


def _even(k: int) -> int:
    if k % 2:
        raise ValueError("expected an even number")
    return k


EvenDegree = Annotated[
    int, Field(ge=2, le=MAX_CITIZENS, description="each citizen's nearest neighbours on the ring (even)"),
    AfterValidator(_even),
]


class WattsStrogatzGraph(Strict):
    kind: Literal["watts_strogatz"]
    k: EvenDegree = 10
    p: float = Field(0.1, ge=0, le=1, description="rewiring probability")


class BarabasiAlbertGraph(Strict):
    kind: Literal["barabasi_albert"]
    m: int = Field(5, ge=1, le=MAX_CITIZENS, description="edges each new citizen brings")


class ErdosRenyiGraph(Strict):
    kind: Literal["erdos_renyi"]
    mean_degree: float = Field(10.0, gt=0, le=MAX_CITIZENS)


class StochasticBlockGraph(Strict):
    kind: Literal["stochastic_block"]
    blocks: int = Field(4, ge=1, le=MAX_CITIZENS, description="number of equal villages or factions")
    p_in: float = Field(0.1, ge=0, le=1)
    p_out: float = Field(0.001, ge=0, le=1)


class CompleteGraph(Strict):
    kind: Literal["complete"]


class RingGraph(Strict):
    kind: Literal["ring"]
    k: EvenDegree = 2


class GridGraph(Strict):
    kind: Literal["grid"]
    rows: int = Field(ge=1, le=MAX_CITIZENS)
    periodic: bool = True


class EdgeListGraph(Strict):
    kind: Literal["edgelist"]
    path: Path


class GraphMLGraph(Strict):
    kind: Literal["graphml"]
    path: Path


GraphSpec = Annotated[
    Union[
        WattsStrogatzGraph, BarabasiAlbertGraph, ErdosRenyiGraph, StochasticBlockGraph, CompleteGraph,
        RingGraph, GridGraph, EdgeListGraph, GraphMLGraph,
    ],
    Field(discriminator="kind"),
]


# ---- commons ------------------------------------------------------------------------------------------------


class LogisticRegrowth(Strict):
    kind: Literal["logistic"]
    rate: float = Field(0.5, gt=0, le=2)


class DoublingRegrowth(Strict):
    """GovSim's rule: the remainder doubles, up to capacity."""

    kind: Literal["doubling"]


RegrowthSpec = Annotated[Union[LogisticRegrowth, DoublingRegrowth], Field(discriminator="kind")]


class Shocks(Strict):
    probability: float = Field(0.0, ge=0, le=1, description="chance per patch per round")
    severity: float = Field(0.5, ge=0, le=1, description="share of the stock a shock destroys")


class Commons(Strict):
    patches: int = Field(1, ge=1, le=MAX_CITIZENS)
    capacity: float = Field(100.0, gt=0, le=MAX_AMOUNT, description="carrying capacity of each patch")
    initial_stock: float | None = Field(
        None, ge=0, le=MAX_AMOUNT, description="stock of each patch at start (default: capacity)"
    )
    regrowth: RegrowthSpec = Field(default_factory=lambda: DoublingRegrowth(kind="doubling"))
    collapse_threshold: float = Field(
        0.0, ge=0, le=MAX_AMOUNT, description="a patch left below this after harvest collapses"
    )
    on_collapse: Literal["stop", "continue"] = "stop"
    allocation: Literal["proportional", "random_units"] = "proportional"
    shocks: Shocks = Field(default_factory=Shocks)
    diffusion: float = Field(0.0, ge=0, le=0.5, description="share exchanged with each neighbouring patch per round")
    assignment: Literal["random", "block"] = "random"
    resource: str = Field("common resource", min_length=1, description="what LLM citizens are told the commons is")
    unit: str = Field("units", min_length=1, description="what LLM citizens are told a unit of it is")

    @model_validator(mode="after")
    def _stock_within_bounds(self) -> "Commons":
        if self.initial_stock is not None and self.initial_stock > self.capacity:
            raise ValueError(f"initial_stock {self.initial_stock:g} exceeds capacity {self.capacity:g}")
        if self.allocation == "random_units" and self.capacity * self.patches > MAX_UNITS:
            raise ValueError(f"random_units hands out one unit at a time: capacity x patches may be at most "
                             f"{MAX_UNITS:g} units (use allocation: proportional for larger stocks)")
        return self


# ---- schedule, output, scenario -----------------------------------------------------------------------------


class PhaseEntry(Strict):
    """One phase of the round, with `params` typed (and validated, once) by the phase's own `Params` model."""

    phase: str = Field(min_length=1)
    params: SerializeAsAny[BaseModel] = Field(default_factory=dict, validate_default=True)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"phase": value} if isinstance(value, str) else value

    @field_validator("phase")
    @classmethod
    def _registered(cls, name: str) -> str:
        phases = registered_phases()
        if name not in phases:
            raise PydanticCustomError("unknown_phase", f"unknown phase {name!r}; known: {', '.join(sorted(phases))}")
        return name

    @field_validator("params", mode="plain")
    @classmethod
    def _typed(cls, value: Any, info: ValidationInfo) -> Any:
        if "phase" not in info.data:
            return value  # the phase is already an error; there is no model to type the params by
        return registered_phases()[info.data["phase"]].Params.model_validate(value)


class ReasonSetting(Strict):
    enabled: bool = False
    max_chars: int = Field(120, ge=10, le=1000, description="most characters of the free-text reason")


FOLLOWED_POLICIES = ("sustainable", "greedy", "conditional", "fixed")
"""Heuristic policies an LLM citizen not asked may follow (imitator and learner act on a strategy of their own,
which an LLM citizen does not hold)."""


def _inactive_kind(value: Any) -> str | None:
    """The tag of an `inactive` value: 'repeat_last', or the name of the heuristic policy it follows."""
    if isinstance(value, str):
        return value
    return value.get("policy") if isinstance(value, dict) else getattr(value, "policy", None)


FollowedPolicy = Annotated[
    Union[
        Annotated[Literal["repeat_last"], Tag("repeat_last")],
        Annotated[SustainablePolicy, Tag("sustainable")],
        Annotated[GreedyPolicy, Tag("greedy")],
        Annotated[ConditionalPolicy, Tag("conditional")],
        Annotated[FixedPolicy, Tag("fixed")],
    ],
    Discriminator(_inactive_kind),
]


class Activation(Strict):
    """Which LLM citizens are asked each round (OASIS-style activity): each with `probability`, or its persona
    role's entry of `by_role`. A citizen not asked is recorded as inactive (never counted as a fallback). With
    `inactive: repeat_last` it repeats its last decision in that phase, and one with no decision to repeat yet is
    asked. With `inactive` naming a heuristic policy (`sustainable`, or a mapping such as `{policy: greedy,
    factor: 2}`), it takes what a citizen of that policy takes in every take decision (harvest, invest), and
    repeats its last decision in the others."""

    probability: float = Field(1.0, gt=0, le=1, allow_inf_nan=False, description="chance an LLM citizen is asked")
    by_role: dict[str, Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]] = Field(
        default_factory=dict, description="chance per persona role, overriding `probability`"
    )
    inactive: FollowedPolicy = Field(
        "repeat_last", description="what a citizen not asked does: 'repeat_last', or a heuristic policy it follows"
    )

    @field_validator("inactive", mode="before")
    @classmethod
    def _policy_mapping(cls, value: Any) -> Any:
        """A heuristic policy's name as its mapping; a mapping with the `fraction` a policy group needs (unused)."""
        if isinstance(value, str) and value in FOLLOWED_POLICIES:
            value = {"policy": value}
        if isinstance(value, dict):
            if "policy" not in value:
                raise ValueError(f"a followed policy names its policy, one of {list(FOLLOWED_POLICIES)}")
            if "fraction" in value:
                raise ValueError("a followed policy has no fraction (every LLM citizen not asked follows it)")
            value = {**value, "fraction": 1.0}
        return value

    @field_serializer("inactive")
    def _without_fraction(self, inactive: Any) -> Any:
        return inactive if isinstance(inactive, str) else inactive.model_dump(mode="json", exclude={"fraction"})

    @property
    def followed(self) -> Any:
        """The heuristic policy a citizen not asked follows, or None when it repeats its last decision."""
        return None if isinstance(self.inactive, str) else self.inactive

    @property
    def on(self) -> bool:
        """Whether some citizens may go unasked."""
        return self.probability < 1 or any(p < 1 for p in self.by_role.values())


class Cohorts(Strict):
    """Citizens whose prompts are equal after coarsening share one request (AgentTorch's LLM archetypes): the
    citizen's number is left out of its persona, and every decimal number in its prompt keeps `digits`
    significant digits. One request per cohort is sampled up to `max_samples` times; each member gets one of
    those answers by a seeded draw, so a cohort keeps its spread."""

    enabled: bool = False
    digits: int = Field(2, ge=1, le=6, description="significant digits a decimal number in a prompt keeps")
    max_samples: int = Field(8, ge=1, le=256, description="most answers sampled for one cohort")


class LLMSettings(Strict):
    """How LLM citizens reach a model: `local` starts the embedded vLLM CPU server with SmolLM2 for the run,
    `server` uses running OpenAI-compatible servers, `engine` loads vLLM inside this process (no server)."""

    backend: Literal["local", "server", "engine"] = "local"
    base_urls: list[str] = Field(default_factory=list, description="OpenAI-compatible base URLs (backend: server)")
    model: str | None = Field(None, description="served model name (server) or model directory (local, engine)")
    concurrency: int = Field(256, ge=1, le=MAX_CITIZENS, description="requests in flight at once, over all servers")
    temperature: float = Field(0.7, ge=0, le=2)
    max_tokens: int = Field(64, ge=4, le=4096, description="most tokens of one answer (the reason adds its own)")
    cache: Literal["record", "replay", "off"] = "record"
    seeded: bool = Field(False, description="send each request its seed (vLLM CPU 0.32 fails under load with seeds)")
    request_timeout_s: float = Field(300.0, gt=0, le=MAX_SECONDS)
    phase_deadline_s: float | None = Field(
        None, gt=0, le=MAX_SECONDS, description="give up on a phase's unanswered requests after"
    )
    fallback_threshold: float = Field(
        0.5, ge=0, le=1, description="stop the run when a phase (not a survey) falls back for more than this "
        "share of its citizens"
    )
    invalid_threshold: float = Field(
        0.2, ge=0, le=1, description="mark the run invalid when fallbacks made more than this share of its LLM "
        "decisions (a survey's aside), over the whole run or over one phase's"
    )
    memory_rounds: int = Field(5, ge=0, le=MAX_ROUNDS, description="rounds a citizen remembers in its prompt")
    reason: ReasonSetting = Field(default_factory=ReasonSetting)
    activation: Activation = Field(default_factory=Activation)
    cohorts: Cohorts = Field(default_factory=Cohorts)

    @field_validator("base_urls")
    @classmethod
    def _http_urls(cls, urls: list[str]) -> list[str]:
        return http_urls(urls)

    @model_validator(mode="after")
    def _server_needs_urls(self) -> "LLMSettings":
        if self.backend == "server" and not self.base_urls:
            raise ValueError("backend 'server' needs base_urls (e.g. [http://127.0.0.1:8000/v1])")
        return self


class Output(Strict):
    dir: Path = Field(Path("runs"), description="folder that holds run directories")
    citizens_every: int = Field(
        1, ge=0, le=MAX_ROUNDS, description="write the citizens table every N rounds (0: never)"
    )
    events: bool = True
    checkpoint_every: int | None = Field(
        None, ge=1, le=MAX_ROUNDS,
        description="write the resume checkpoint every N rounds and after the last; a resume replays the rounds "
                    "since (runs are deterministic from a checkpoint). Default: every round with LLM citizens, "
                    "whose rounds are slow to replay, else every 10",
    )
    keep_checkpoints: int | None = Field(
        None, ge=0, le=MAX_ROUNDS,
        description="also keep the checkpoint of every N-th round in checkpoints/ (0: none), so that `society fork` "
                    "replays at most N-1 rounds to reach any round (without one it replays from round 0). Default: "
                    "every 10 rounds with LLM citizens, whose rounds are slow to replay, else none (rounds without "
                    "LLM citizens replay fast, and a million citizens' checkpoint is about 100 MB)",
    )


class Scenario(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="run name (letters, digits, _ . -)")
    description: str = ""
    seed: int = Field(0, ge=0, le=MAX_SEED)
    rounds: int = Field(gt=0, le=MAX_ROUNDS)
    population: Population
    graph: GraphSpec = Field(default_factory=lambda: CompleteGraph(kind="complete"))
    commons: Commons | None = None
    schedule: list[PhaseEntry] = Field(min_length=1)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    output: Output = Field(default_factory=Output)
    interventions: list[Intervention] = Field(default_factory=list, description="changes to the run as it plays")

    @property
    def has_llm_citizens(self) -> bool:
        """Whether any citizen decides through a language model (from the start, or arriving by an intervention)."""
        return any(isinstance(spec, LLMPolicy) for spec in self.population.policies) or any(
            i.add is not None and isinstance(i.add.policy, LLMPolicy) for i in self.interventions)


def _tags(union: Any, field: str) -> tuple[str, ...]:
    """The discriminator values of an annotated union of section models."""
    members = get_args(get_args(union)[0])
    return tuple(get_args(member.model_fields[field].annotation)[0] for member in members)


DISCRIMINATOR_TAGS: tuple[str, ...] = (
    _tags(PolicySpec, "policy") + _tags(GraphSpec, "kind") + _tags(RegrowthSpec, "kind")
)
POLICY_NAMES = _tags(PolicySpec, "policy")
