"""Checks of a typed scenario's schedule as a whole: each phase's own checks, and the order phases depend on."""

from __future__ import annotations

from society.phases import Phase, registered_phases
from society.scenario.problems import Problem
from society.scenario.schema import Scenario


def schedule_problems(scenario: Scenario, source: str) -> list[Problem]:
    """Every problem a Society built from `scenario` would meet in its schedule, as file-and-field problems."""
    classes = [registered_phases()[entry.phase] for entry in scenario.schedule]
    problems = []
    for index, (entry, phase) in enumerate(zip(scenario.schedule, classes)):
        where = f"schedule[{index}]"
        if phase.needs_commons and scenario.commons is None:
            problems.append(Problem(source, f"{where}.phase", f"phase {entry.phase!r} needs a commons section"))
        checked = phase.check(entry.params, scenario)
        problems += [Problem(source, f"{where}.params.{field}" if field else f"{where}.phase", message)
                     for field, message in checked]
        problems += [Problem(source, f"{where}.phase", message) for message in _order_problems(classes, index)]
    return problems


def _order_problems(classes: list[type[Phase]], index: int) -> list[str]:
    """What is out of order around the phase at `index`: its `requires`, `reads` and `precedes` declarations."""
    phase = classes[index]
    earlier = {what for c in classes[:index] for what in c.provides}
    later: dict[str, int] = {}  # what a later phase provides: the first such phase
    for j in range(index + 1, len(classes)):
        for what in classes[j].provides:
            later.setdefault(what, j)
    messages = []
    for what in phase.requires:
        if what in earlier:
            continue
        if what in later:
            other = classes[later[what]].name
            messages.append(f"phase {phase.name!r} needs {what!r} from an earlier phase, but {other!r} "
                            f"(schedule[{later[what]}]) provides it after: move {other!r} before it")
        else:
            known = " or ".join(sorted(n for n, c in registered_phases().items() if what in c.provides))
            messages.append(f"phase {phase.name!r} needs {what!r} from an earlier phase ({known}); "
                            "the schedule has none")
    for what in phase.reads:
        if what in later and what not in earlier:
            other = classes[later[what]].name
            messages.append(f"phase {phase.name!r} reads {what!r}, which {other!r} (schedule[{later[what]}]) "
                            f"provides after it: move {other!r} before it")
    for what in phase.precedes:
        for j, before in enumerate(classes[:index]):
            if what in before.provides:
                messages.append(f"phase {phase.name!r} must come before {before.name!r} (schedule[{j}]), "
                                f"which provides {what!r}")
    return messages
