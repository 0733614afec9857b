"""Finite, bounded scenario numbers: every leaf of every shipped scenario mutated is either a valid scenario with
finite, bounded numbers or a clear problem naming a field; the largest allowed values play a round finitely."""

from __future__ import annotations

import copy
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from society import Society
from society.scenario.bounds import MAX_AMOUNT, MAX_FACTOR, MAX_SEED
from society.scenario.files import SHIPPED_SCENARIOS, ScenarioError, resolve_extends, scenario_roots, validate

SCENARIOS = sorted(SHIPPED_SCENARIOS.glob("*.yaml"))
MUTATIONS: list[Any] = [
    math.nan, math.inf, -math.inf, 1e308, -1e308, 10**30, -(10**30), 2**63, "x", [1.5], {"a": 1}, True, None,
]


def merged(path: Path) -> dict[str, Any]:
    data, _ = resolve_extends(path, scenario_roots(path))
    data.setdefault("name", path.stem)
    return data


def leaves(node: Any, key: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The key of every scalar in a scenario mapping, inside lists too."""
    if isinstance(node, dict):
        return [k for name, value in node.items() for k in leaves(value, (*key, name))]
    if isinstance(node, list):
        return [k for i, value in enumerate(node) for k in leaves(value, (*key, i))]
    return [key]


def with_value(data: dict[str, Any], key: tuple[Any, ...], value: Any) -> dict[str, Any]:
    mutated = copy.deepcopy(data)
    node = mutated
    for part in key[:-1]:
        node = node[part]
    node[key[-1]] = value
    return mutated


def numbers(node: Any) -> list[int | float]:
    if isinstance(node, dict):
        return [x for value in node.values() for x in numbers(value)]
    if isinstance(node, list | tuple):
        return [x for value in node for x in numbers(value)]
    return [node] if isinstance(node, int | float) and not isinstance(node, bool) else []


def assert_valid_or_clearly_refused(data: dict[str, Any]) -> None:
    """Either a scenario whose every number is finite and bounded, or problems each naming a field in one line."""
    try:
        scenario, problems = validate(data, "s.yaml")
    except ScenarioError as error:  # an override-free validate raises only for what it cannot type
        scenario, problems = None, error.problems
    if scenario is None:
        assert problems
        assert all(problem.field and "\n" not in problem.message for problem in problems), problems
        return
    for x in numbers(scenario.model_dump()):
        assert math.isfinite(x) and abs(x) <= (MAX_SEED if isinstance(x, int) else MAX_AMOUNT), x


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_every_leaf_mutated_is_valid_and_bounded_or_a_clear_problem(path: Path) -> None:
    data = merged(path)
    for key in leaves(data):
        for value in MUTATIONS:
            assert_valid_or_clearly_refused(with_value(data, key, value))


ANY_VALUE = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(min_value=-(10**40), max_value=10**40),
    st.text(max_size=8), st.booleans(), st.none(), st.lists(st.floats(), max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SCENARIOS), st.data(), ANY_VALUE)
def test_any_value_at_any_leaf_is_valid_and_bounded_or_a_clear_problem(path: Path, draw: Any, value: Any) -> None:
    data = merged(path)
    key = draw.draw(st.sampled_from(leaves(data)))
    assert_valid_or_clearly_refused(with_value(data, key, value))


KEPT_SMALL = {"size", "rounds", "seed", "fraction", "patches", "every", "first", "count", "group_size", "jury_size"}
"""Leaves left as shipped: the population and run length (one small round), and what must add up or divide."""


def at_largest_values(data: dict[str, Any]) -> dict[str, Any]:
    """`data` with each number, one after the other, raised to the largest allowed value (of the bounds) it takes."""
    for key in leaves(data):
        node = _at(data, key)
        if isinstance(node, bool) or not isinstance(node, int | float) or key[-1] in KEPT_SMALL:
            continue
        for candidate in (MAX_AMOUNT, MAX_FACTOR, 1.0):
            value = with_value(data, key, candidate if isinstance(node, float) else int(candidate))
            if validate(value, "s.yaml")[0] is not None:
                data = value
                break
    return data


@pytest.mark.parametrize("name", ["institutions_charter", "norms_public_goods", "norms_rich_altruistic",
                                  "govsim_fishery"])
def test_the_largest_allowed_values_play_a_round_with_finite_results(name: str) -> None:
    data = with_value(merged(SHIPPED_SCENARIOS / f"{name}.yaml"), ("rounds",), 1)
    largest = at_largest_values(data)
    raised = [key for key in leaves(data) if _at(largest, key) != _at(data, key)]
    assert len(raised) >= 3, "too few values could be raised for the test to mean anything"
    scenario, problems = validate(largest, "s.yaml")
    assert not problems
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        society = Society(scenario)
        society.step()
    for frame in (pl.DataFrame([society.round_row]), society.round_citizens()):
        for column in frame.select(pl.col(pl.Float32, pl.Float64)).columns:
            assert frame[column].drop_nulls().is_finite().all(), column


def _at(data: Any, key: tuple[Any, ...]) -> Any:
    for part in key:
        data = data[part]
    return data
