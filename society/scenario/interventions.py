"""The `interventions:` section: changes to a run at a round or when a condition holds, and their validation.

An intervention fires once, at the start of the round its `when` names (`round: k`) or of the first round that
starts with the commons' stock below a share of its capacity (`stock_below: x`). It may `set` scenario fields
(the `--set` paths that a running society can take up: `LIVE_PATHS`), `add` citizens (heuristic or LLM),
`remove` citizens (heuristic or LLM), apply a `shock` to the commons, `broadcast` a message to every LLM citizen's
memory and change named LLM citizens' `persona`, in that order.
"""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    SerializerFunctionWrapHandler,
    field_serializer,
    field_validator,
    model_serializer,
    model_validator,
)

from society.scenario.bounds import MAX_CITIZENS, MAX_ROUNDS
from society.scenario.problems import Problem

if TYPE_CHECKING:
    from society.scenario.schema import Scenario

LIVE_PATHS: dict[str, str] = {
    r"schedule\.\d+\.params\..+": "schedule.N.params.* (the phase is rebuilt with its new parameters)",
    r"commons\.(capacity|collapse_threshold|on_collapse|allocation|diffusion|resource|unit)": "commons.capacity, "
    "collapse_threshold, on_collapse, allocation, diffusion, resource, unit",
    r"commons\.regrowth(\..+)?": "commons.regrowth.*",
    r"commons\.shocks(\..+)?": "commons.shocks.*",
    r"population\.policies\.\d+\.(factor|noise|amount)": "population.policies.N.factor, noise, amount",
}
"""The fields a running society takes up (a regular expression over the dotted path, and how it reads)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class When(_Strict):
    """When an intervention fires: at the start of round `round`, or of the first round that starts with the
    commons' total stock below `stock_below` times its total capacity."""

    round: int | None = Field(None, ge=1, le=MAX_ROUNDS, description="the round it fires at the start of")
    stock_below: float | None = Field(None, gt=0, le=1, description="share of the commons' capacity")

    @model_validator(mode="after")
    def _one_condition(self) -> When:
        if (self.round is None) == (self.stock_below is None):
            raise ValueError("expected exactly one of round or stock_below")
        return self


class AddCitizens(_Strict):
    """Newcomers: `count` citizens of a policy (GovSim's outsider), each linked to `links` citizens drawn at random
    (default: everyone on a complete graph, else the mean degree), on a random patch unless `patch` names one.

    With `policy: llm` they are LLM citizens: personas drawn from the policy's `persona` distributions, asking its
    `model` (default: llm.model), with an empty memory, or one that starts with `told` (quoted) when it is given.
    """

    count: int = Field(1, ge=1, le=MAX_CITIZENS)
    policy: SerializeAsAny[BaseModel]
    links: int | None = Field(None, ge=1, le=MAX_CITIZENS, description="citizens each newcomer is linked to")
    patch: int | None = Field(None, ge=0, le=MAX_CITIZENS, description="the newcomers' patch (default: random)")
    told: str | None = Field(None, min_length=1, max_length=2000,
                             description="what LLM newcomers are told on arrival (a note in their memory)")

    @field_validator("policy", mode="plain")
    @classmethod
    def _policy(cls, value: Any) -> BaseModel:
        """A policy spec (its group's `fraction` is not asked for: newcomers are counted by `count`)."""
        from pydantic import TypeAdapter

        from society.scenario.schema import LLMPolicy, PolicySpec

        if isinstance(value, str):
            value = {"policy": value}
        if isinstance(value, dict):
            if "fraction" in value:
                raise ValueError("a newcomer's policy has no fraction (count says how many arrive)")
            value = {**value, "fraction": 1.0}
        spec = TypeAdapter(PolicySpec).validate_python(value)
        if isinstance(spec, LLMPolicy) and spec.persona.file is not None:
            raise ValueError("a newcomer's persona is drawn from distributions (roles, traits, values, hidden "
                             "agendas); persona.file is read only for the starting population")
        return spec

    @model_validator(mode="after")
    def _told_llm(self) -> AddCitizens:
        if self.told is not None and getattr(self.policy, "policy", None) != "llm":
            raise ValueError("told is for LLM newcomers (policy: llm): a heuristic citizen has no memory")
        return self

    @field_serializer("policy")
    def _without_fraction(self, policy: BaseModel) -> dict[str, Any]:
        return policy.model_dump(mode="json", exclude={"fraction"})


class RemoveCitizens(_Strict):
    """Citizens who leave: `count` of those following `policy` (drawn from the `interventions` stream), or the
    listed `citizens`. A removed citizen keeps its number; it has no links, no patch share and takes nothing."""

    count: int = Field(1, ge=1, le=MAX_CITIZENS, description="how many of the policy's citizens leave")
    policy: str | None = Field(None, min_length=1, description="the policy whose citizens leave (llm included)")
    citizens: list[Annotated[int, Field(ge=0, le=MAX_CITIZENS)]] | None = Field(
        None, min_length=1, description="the citizens who leave, by number")

    @model_validator(mode="after")
    def _one_choice(self) -> RemoveCitizens:
        if (self.policy is None) == (self.citizens is None):
            raise ValueError("expected exactly one of policy (with count) or citizens")
        if self.citizens is not None and "count" in self.model_fields_set:
            raise ValueError("count goes with policy; listed citizens are counted by the list")
        if self.citizens is not None and len(set(self.citizens)) != len(self.citizens):
            raise ValueError("a citizen is listed twice")
        return self

    @model_serializer(mode="wrap")
    def _without_count(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Listed citizens are written without `count` (which goes with policy), so a run's scenario file reloads."""
        data = handler(self)
        if self.citizens is not None:
            data.pop("count", None)
        return data


class Shock(_Strict):
    """Destroys a share of every patch's stock."""

    severity: float = Field(gt=0, le=1, description="share of the stock destroyed")


class PersonaChange(_Strict):
    """A new persona for named LLM citizens from this round on: some of its parts (role, Big Five scores, values,
    hidden agenda; an empty agenda removes it), or a free `description` that replaces the whole of it."""

    citizens: list[Annotated[int, Field(ge=0, le=MAX_CITIZENS)]] = Field(min_length=1, max_length=MAX_CITIZENS)
    role: str | None = Field(None, min_length=1, max_length=200)
    traits: dict[str, Annotated[float, Field(ge=0, le=1)]] = Field(default_factory=dict,
                                                                   description="Big Five scores in [0, 1]")
    values: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(None, max_length=20)
    agenda: str | None = Field(None, max_length=2000, description="the hidden agenda ('' for none)")
    description: str | None = Field(None, min_length=1, max_length=4000,
                                    description="the whole persona, after 'You are citizen N,'")

    @field_validator("traits")
    @classmethod
    def _big_five(cls, traits: dict[str, float]) -> dict[str, float]:
        from society.scenario.schema import known_traits

        return known_traits(traits)

    @model_validator(mode="after")
    def _changes_something(self) -> PersonaChange:
        parts = self.model_fields_set & {"role", "traits", "values", "agenda"}
        if self.description is not None and parts:
            raise ValueError(f"description replaces the whole persona: give it alone, not with {sorted(parts)}")
        if self.description is None and not parts:
            raise ValueError("expected a description or at least one of role, traits, values, agenda")
        return self


class Intervention(_Strict):
    """One change to the run, applied once when `when` holds: set, add, remove, shock, broadcast, persona (those it
    names)."""

    when: When
    set: dict[str, Any] = Field(default_factory=dict, description="dotted scenario paths (as --set) and values")
    add: AddCitizens | None = None
    remove: RemoveCitizens | None = None
    shock: Shock | None = None
    broadcast: str | None = Field(None, min_length=1, max_length=2000, description="told to every LLM citizen")
    persona: PersonaChange | None = None

    @model_validator(mode="after")
    def _does_something(self) -> Intervention:
        if not (self.set or self.add or self.remove or self.shock or self.broadcast or self.persona):
            raise ValueError("expected at least one of set, add, remove, shock, broadcast, persona")
        return self


def live_path(path: str) -> bool:
    """Whether a running society takes up a change of the field at dotted `path`."""
    return any(re.fullmatch(pattern, path) for pattern in LIVE_PATHS)


def set_scenario(data: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A copy of the scenario data `data` with the dotted `changes` made (KeyError, IndexError or TypeError on a
    path that leads nowhere)."""
    from society.scenario.files import set_path

    changed = copy.deepcopy(data)
    for path, value in changes.items():
        set_path(changed, path.split("."), value)
    return changed


def intervention_problems(scenario: Scenario, source: str) -> list[Problem]:
    """What the scenario's interventions ask for that its run could not do, each naming its field."""
    from society.scenario.files import validate

    problems = []
    base = scenario.model_dump(mode="json", exclude={"interventions"})
    commons = scenario.commons
    for i, intervention in enumerate(scenario.interventions):
        where = f"interventions[{i}]"
        when = intervention.when
        if when.round is not None and when.round > scenario.rounds:
            problems.append(Problem(source, f"{where}.when.round",
                                    f"round {when.round} is after the run's last round (rounds: {scenario.rounds})"))
        if commons is None:
            for field in ("when.stock_below", "shock", "add.patch"):
                part = field.split(".")
                value = getattr(intervention, part[0]) if len(part) == 1 else getattr(
                    getattr(intervention, part[0]), part[1], None)
                if value is not None:
                    problems.append(Problem(source, f"{where}.{field}", "needs a commons (the scenario has none)"))
        elif intervention.add is not None and intervention.add.patch is not None and (
                intervention.add.patch >= commons.patches):
            problems.append(Problem(source, f"{where}.add.patch",
                                    f"patch {intervention.add.patch} does not exist (patches: {commons.patches})"))
        if intervention.remove is not None:
            problems += remove_problems(scenario, i, source)
        if intervention.broadcast is not None and not scenario.has_llm_citizens:
            problems.append(Problem(source, f"{where}.broadcast", "no LLM citizen would hear it (no llm policy)"))
        for path, value in intervention.set.items():
            field = f"{where}.set.{path}"
            if not live_path(path):
                problems.append(Problem(source, field, "cannot change while the run plays; these can: "
                                        + "; ".join(LIVE_PATHS.values())))
                continue
            try:
                changed = set_scenario(base, {path: value})
            except (KeyError, IndexError, TypeError) as error:
                problems.append(Problem(source, field, f"cannot set: {error.args[0]}"))
                continue
            _, found = validate(changed, source)
            problems += [Problem(p.file, field, p.message if _dotted(p.field).startswith(path) else
                                 f"{_dotted(p.field)}: {p.message}") for p in found]
    return problems


def remove_problems(scenario: Scenario, index: int, source: str) -> list[Problem]:
    """What the removal of intervention `index` asks for that its run could not do: an unknown policy,
    more citizens than follow it (at the start, with earlier newcomers), numbers past the population (with
    earlier newcomers)."""
    from society.core.build import group_counts

    remove, field = scenario.interventions[index].remove, f"interventions[{index}].remove"
    earlier = [i.add for i in scenario.interventions[:index] if i.add is not None]
    problems: list[Problem] = []
    if remove.policy is not None:
        policies = scenario.population.policies
        names = sorted({spec.policy for spec in policies} | {add.policy.policy for add in earlier})
        following = sum(int(count) for spec, count in zip(policies, group_counts(scenario.population))
                        if spec.policy == remove.policy) + sum(add.count for add in earlier
                                                               if add.policy.policy == remove.policy)
        if remove.policy not in names:
            problems.append(Problem(source, f"{field}.policy",
                                    f"no citizen follows {remove.policy!r}; the policies are {names}"))
        elif remove.count > following:
            problems.append(Problem(source, f"{field}.count", f"{remove.count} citizens to remove but "
                                    f"{following} follow {remove.policy!r}"))
    else:
        seated = scenario.population.size + sum(add.count for add in earlier)
        past = [citizen for citizen in remove.citizens if citizen >= seated]
        if past:
            problems.append(Problem(source, f"{field}.citizens", f"citizens {past} do not exist (citizens are "
                                    f"numbered 0 to {seated - 1} when it fires)"))
    return problems


def _dotted(field: str) -> str:
    """A problem's field with list indices as path parts (`schedule[0].params` as `schedule.0.params`)."""
    return re.sub(r"\[(\d+)\]", r".\1", field).lstrip(".")
