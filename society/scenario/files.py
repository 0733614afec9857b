"""Reading scenario files: safe YAML, `extends:` chains, `--set` overrides, and every problem at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from society.scenario.interventions import intervention_problems
from society.scenario.origins import Key, Origins, field_key, redact, value_at
from society.scenario.problems import Problem, ScenarioError
from society.scenario.schedule import schedule_problems
from society.scenario.schema import (
    DISCRIMINATOR_TAGS,
    BarabasiAlbertGraph,
    EdgeListGraph,
    GraphMLGraph,
    GridGraph,
    LLMPolicy,
    RingGraph,
    Scenario,
    StochasticBlockGraph,
    WattsStrogatzGraph,
)

SHIPPED_SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
"""The scenarios shipped with society: any scenario may extend them."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """Safe loader that refuses duplicate keys (the second would silently win otherwise)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping from `path`, or a ScenarioError with the line and column of what is wrong."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        message = f"not UTF-8 text (byte {error.start + 1} cannot be decoded); save the file as UTF-8"
        raise ScenarioError([Problem(str(path), "", message)]) from None
    except OSError as error:
        raise ScenarioError([Problem(str(path), "", f"cannot read file ({error.strerror or error})")]) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
        problem = error.problem or str(error)
        raise ScenarioError([Problem(str(path), where, f"invalid YAML: {problem}")]) from None
    except yaml.reader.ReaderError as error:
        message = f"not a text file (control character #x{error.character:04x} at character {error.position + 1})"
        raise ScenarioError([Problem(str(path), "", message)]) from None
    except yaml.YAMLError as error:
        raise ScenarioError([Problem(str(path), "", f"invalid YAML: {error}")]) from None
    except RecursionError:
        raise ScenarioError([Problem(str(path), "", "invalid YAML: nested too deeply")]) from None
    if not isinstance(data, dict):
        found = "an empty file" if data is None else f"a {type(data).__name__}"
        raise ScenarioError([Problem(str(path), "", f"expected a mapping of scenario sections, found {found}")])
    return data


def file_problem(path: Path, what: str) -> str | None:
    """Why `path` cannot be read as a `what` file (missing, a folder, a device or pipe), or None if it can."""
    if path.is_file():
        return None
    if path.is_dir():
        return f"is a folder, not a {what} file"
    return f"no such {what} file" if not path.exists() else f"not a regular file (a {what} file is a YAML text file)"


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`override` on top of `base`: mappings merge key by key, anything else (lists too) is replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def scenario_roots(named: Path) -> tuple[Path, ...]:
    """Folders whose scenario files the file the user named may extend: its own folder tree, the shipped ones."""
    return tuple(dict.fromkeys((named.absolute().parent.resolve(), named.resolve().parent, SHIPPED_SCENARIOS)))


def confined(target: Path, roots: tuple[Path, ...]) -> bool:
    """Whether `target`, its symlinks followed, lies inside one of the folders `roots`."""
    resolved = target.resolve()
    return any(resolved.is_relative_to(root) for root in roots)


def confinement_rule(roots: tuple[Path, ...], field: str) -> str:
    """The rule a path at `field` broke, for its error message."""
    folders = " or ".join(str(root) for root in roots)
    return (f"{field} may only name a scenario file inside {folders} (the named file's folder tree or the shipped "
            "scenarios); this one leaves them (an absolute path, a ../ or a symlink pointing outside)")


def resolve_extends(path: Path, roots: tuple[Path, ...], named: bool = True) -> tuple[dict[str, Any], Origins]:
    """The scenario at `path` with its `extends:` ancestors (confined to `roots`) merged beneath it, and the
    origins of its values that come from files the user did not name (all of them unless `named`)."""
    data, origins = _resolve(path.resolve(), roots, (), named)
    return data, origins if not named else Origins(
        {key: file for key, file in origins.hidden.items() if file != str(path.resolve())}
    )


def _resolve(
    path: Path, roots: tuple[Path, ...], chain: tuple[Path, ...], named: bool
) -> tuple[dict[str, Any], Origins]:
    if path in chain:
        cycle = " -> ".join(p.name for p in (*chain, path))
        raise ScenarioError([Problem(str(chain[0]), "extends", f"extends itself in a cycle: {cycle}")])
    data = read_yaml(path)
    anchor_paths(data, path, roots)
    parent = data.pop("extends", None)
    if parent is None:
        return data, Origins().beneath(data, str(path))
    if not isinstance(parent, str):
        shown = f", got {parent!r}" if named else ""
        raise ScenarioError([Problem(str(path), "extends", f"expected a file path{shown}")])
    parent_path = path.parent / parent
    if not confined(parent_path, roots):
        raise ScenarioError([Problem(str(path), "extends", confinement_rule(roots, "extends"))])
    problem = file_problem(parent_path, "scenario")
    if problem is not None:
        raise ScenarioError([Problem(str(path), "extends", f"{problem}: {parent_path}")])
    base, origins = _resolve(parent_path.resolve(), roots, (*chain, path), False)
    return deep_merge(base, data), origins.beneath(data, str(path))


def anchor_paths(data: dict[str, Any], path: Path, roots: tuple[Path, ...]) -> None:
    """Make a graph file path and persona file paths relative to the scenario file `path` that names them
    absolute; each must lie inside `roots`, as an extended scenario must.

    Run again after `--set` overrides (and a grid's settings), so that a path they give is read relative to the
    scenario (or grid) file's folder and confined like one written in the file; paths already anchored stay as
    they are."""
    folder = path.parent
    graph = data.get("graph")
    if isinstance(graph, dict) and isinstance(graph.get("path"), str):
        if not confined(folder / graph["path"], roots):
            raise ScenarioError([Problem(str(path), "graph.path", confinement_rule(roots, "graph.path").replace(
                "a scenario file", "a graph file"))])
        graph["path"] = str((folder / graph["path"]).resolve())
    policies = data.get("population", {}).get("policies") if isinstance(data.get("population"), dict) else None
    for i, policy in enumerate(policies if isinstance(policies, list) else []):
        persona = policy.get("persona") if isinstance(policy, dict) else None
        if isinstance(persona, dict) and isinstance(persona.get("file"), str):
            field = f"population.policies[{i}].persona.file"
            if not confined(folder / persona["file"], roots):
                raise ScenarioError([Problem(str(path), field, confinement_rule(roots, field).replace(
                    "a scenario file", "a persona file"))])
            persona["file"] = str((folder / persona["file"]).resolve())


def apply_overrides(data: dict[str, Any], overrides: list[str], source: str) -> dict[str, Any]:
    """Apply `a.b.c=value` overrides; values are read as YAML scalars (`3`, `0.5`, `true`, `[1, 2]`)."""
    problems = []
    for item in overrides:
        parsed = parse_override(item)
        if parsed is None:
            problems.append(Problem(source, item, "expected --set path.to.key=value"))
            continue
        key, value = parsed
        try:
            set_path(data, key.split("."), value)
        except (KeyError, IndexError, TypeError) as error:
            problems.append(Problem(source, key, f"cannot set: {error.args[0]}"))
    if problems:
        raise ScenarioError(problems)
    return data


def parse_override(item: str) -> tuple[str, Any] | None:
    """The dotted path and value of `path=value` (the value read as a YAML scalar), or None if it is not one."""
    key, sep, raw = item.partition("=")
    if not sep or not key:
        return None
    try:
        return key, yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError:
        return key, raw


def set_path(data: Any, keys: list[str], value: Any) -> None:
    """Set the value at `keys` in nested mappings and lists (missing mappings are made on the way)."""
    *parents, last = keys
    node = data
    for key in parents:
        if isinstance(node, list):
            node = node[_list_index(node, key)]
        elif isinstance(node, dict):
            node = node.setdefault(key, {})
        else:
            raise TypeError(f"{key!r} is inside a value that is not a mapping")
    if isinstance(node, list):
        node[_list_index(node, last)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise TypeError(f"{last!r} is inside a value that is not a mapping")


def _list_index(node: list[Any], key: str) -> int:
    if not key.lstrip("-").isdigit() or not -len(node) <= int(key) < len(node):
        raise IndexError(f"{key!r} is not an index of a list of {len(node)}")
    return int(key)


def _location(loc: tuple[Any, ...]) -> str:
    """A pydantic error location as a dotted field path (discriminator tags left out)."""
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts)


_NAMES_ITS_INPUT = ("missing", "union_tag_not_found", "unknown_phase")
"""Error types whose message already says what was found (or that nothing was)."""


def _problems_from(error: ValidationError, source: str, origins: Origins) -> list[Problem]:
    problems = []
    for item in error.errors(include_url=False):
        # A discriminator tag follows its union's field, never starts a location (`llm` is a policy and a section).
        loc = tuple(part for i, part in enumerate(item["loc"]) if i == 0 or part not in DISCRIMINATOR_TAGS)
        field = _location(loc)
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key (not part of the scenario schema; check its spelling)"
        elif item["type"] == "missing":
            message = "required but missing"
        elif item["type"] == "union_tag_invalid":
            message = f"{item['ctx']['tag']!r} is not one of: {item['ctx']['expected_tags']}"
        elif item["type"] == "union_tag_not_found":
            message = f"missing {item['ctx']['discriminator']} (one of the known kinds)"
        hiding = origins.file_hiding(tuple(str(part) for part in loc))
        if hiding is not None:
            problems.append(Problem(hiding, field or "(top level)", redact(message, item.get("input"))))
            continue
        if "input" in item and item["type"] not in _NAMES_ITS_INPUT and not isinstance(item["input"], dict | list):
            message += f" (got {item['input']!r})"
        problems.append(Problem(source, field or "(top level)", message))
    return problems


def _hide_values(problem: Problem, data: dict[str, Any], origins: Origins) -> Problem:
    """`problem` naming the file its field's value came from, without that value, if the user did not name it."""
    key = field_key(problem.field)
    hiding = origins.file_hiding(key)
    if hiding is None:
        return problem
    return Problem(hiding, problem.field, redact(problem.message, value_at(data, key)))


def validate(
    data: dict[str, Any], source: str, origins: Origins | None = None
) -> tuple[Scenario | None, list[Problem]]:
    """The typed scenario and an empty list, or None and every problem found.

    Problems name `source`, or for values in `origins` (from files the user did not name) that file, never
    echoing the value.
    """
    origins = origins or Origins()
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as error:
        return None, _problems_from(error, source, origins)
    problems = (_cross_field_problems(scenario, source) + schedule_problems(scenario, source)
                + intervention_problems(scenario, source))
    problems = [_hide_values(problem, data, origins) for problem in problems]
    return (scenario if not problems else None), problems


def _cross_field_problems(scenario: Scenario, source: str) -> list[Problem]:
    n = scenario.population.size
    graph = scenario.graph
    problems = []
    if isinstance(graph, GridGraph) and n % graph.rows:
        problems.append(Problem(source, "graph.rows", f"{graph.rows} rows do not divide population.size {n}"))
    if isinstance(graph, WattsStrogatzGraph | RingGraph) and graph.k >= n:
        problems.append(Problem(source, "graph.k", f"{graph.k} neighbours need more than population.size {n}"))
    if isinstance(graph, BarabasiAlbertGraph) and graph.m >= n:
        problems.append(Problem(source, "graph.m", f"{graph.m} edges per citizen need more than population.size {n}"))
    if isinstance(graph, StochasticBlockGraph) and graph.blocks > n:
        problems.append(Problem(source, "graph.blocks", f"{graph.blocks} blocks exceed population.size {n}"))
    if isinstance(graph, EdgeListGraph | GraphMLGraph) and not Path(graph.path).is_file():
        problems.append(Problem(source, "graph.path", f"no such file: {graph.path}"))
    if scenario.commons is not None and scenario.commons.patches > n:
        problems.append(
            Problem(source, "commons.patches", f"{scenario.commons.patches} patches exceed population.size {n}")
        )
    newcomers = [i.add.policy for i in scenario.interventions if i.add is not None and isinstance(i.add.policy,
                                                                                                   LLMPolicy)]
    llm_policies = [spec for spec in scenario.population.policies if isinstance(spec, LLMPolicy)] + newcomers
    roles = {role for spec in llm_policies for role in spec.persona.roles}
    if any(spec.persona.file is not None for spec in llm_policies):
        return problems  # the files' roles are known once they are read (persona_file_problems)
    for role in sorted(set(scenario.llm.activation.by_role) - roles):
        problems.append(Problem(source, f"llm.activation.by_role.{role}",
                                f"no LLM citizen has the role {role!r}; the roles are {sorted(roles)}"))
    return problems


def load_scenario(path: str | Path, overrides: list[str] | None = None) -> Scenario:
    """Read, merge, override and validate a scenario file; raise ScenarioError listing every problem."""
    path = Path(path)
    problem = file_problem(path, "scenario")
    if problem is not None:
        raise ScenarioError([Problem(str(path), "", problem)])
    data, origins = resolve_extends(path, scenario_roots(path))
    data.setdefault("name", path.stem)
    data = apply_overrides(data, overrides or [], str(path))
    anchor_paths(data, path, scenario_roots(path))
    scenario, problems = validate(data, str(path), origins.overridden(override_keys(overrides or [])))
    if problems:
        raise ScenarioError(problems)
    problems = persona_file_problems(scenario, str(path))
    if problems:
        raise ScenarioError(problems)
    return scenario


def persona_file_problems(scenario: Scenario, source: str) -> list[Problem]:
    """What is wrong with the persona files of the scenario's LLM groups (read and checked as a run reads them),
    and roles of `llm.activation.by_role` that no file row has."""
    from society.llm.persona_files import PersonaFileError, read_persona_file

    problems, roles = [], set()
    files = [(i, spec) for i, spec in enumerate(scenario.population.policies)
             if isinstance(spec, LLMPolicy) and spec.persona.file is not None]
    for i, spec in files:
        field = f"population.policies[{i}].persona.file"
        try:
            rows = read_persona_file(Path(spec.persona.file))
            roles |= set(rows.roles)
            if rows.weights is None:
                rows.rows_for(group_size(scenario, i), None)
        except PersonaFileError as error:
            problems += [Problem(source, field, message) for message in error.messages]
    if files and not problems:
        roles |= {role for spec in scenario.population.policies if isinstance(spec, LLMPolicy)
                  and spec.persona.file is None for role in spec.persona.roles}
        problems += [Problem(source, f"llm.activation.by_role.{role}",
                             f"no LLM citizen has the role {role!r}; the roles are {sorted(roles)}")
                     for role in sorted(set(scenario.llm.activation.by_role) - roles)]
    return problems


def group_size(scenario: Scenario, group: int) -> int:
    """Citizens in policy group `group` at the start of the run."""
    from society.core.build import group_counts

    return int(group_counts(scenario.population)[group])


def override_keys(overrides: list[str]) -> list[Key]:
    """The keys `--set` overrides set."""
    return [tuple(item.partition("=")[0].split(".")) for item in overrides]


def scenario_to_yaml(scenario: Scenario) -> str:
    """The fully resolved scenario as YAML (what a run directory keeps)."""
    return yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False)
