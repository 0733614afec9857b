"""Every shipped scenario (shrunk) gives the tables recorded before the architecture refactor, bit for bit."""

from __future__ import annotations

import json

import polars as pl
import pytest

from tests.shipped_tables import DIGESTS, frame_digest, play, scenario_names

RECORDED = json.loads(DIGESTS.read_text())


def test_every_shipped_scenario_is_recorded() -> None:
    assert sorted(RECORDED) == scenario_names()


@pytest.mark.parametrize("name", scenario_names())
def test_tables_match_the_recorded_digests(name: str) -> None:
    assert play(name) == RECORDED[name]


def test_digest_moves_when_one_value_moves() -> None:
    frame = pl.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    assert frame_digest(frame) == frame_digest(frame.clone())
    assert frame_digest(frame) != frame_digest(frame.with_columns(pl.Series("a", [1.0, 2.0000001])))
    assert frame_digest(frame) != frame_digest(frame.with_columns(pl.Series("b", ["x", "z"])))
