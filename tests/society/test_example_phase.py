"""A new deciding phase in one file, registered the way any package registers one (an entry point), plays."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from society import Society, load_scenario
from society.core.metrics import gini
from society.phases import registered_phases
from tests.shipped_tables import SchemaAnswers

EXAMPLE = Path(__file__).with_name("donate_phase.py")


@pytest.fixture
def donate_registered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A distribution on sys.path whose entry point names the example phase `donate`; nothing else is edited."""
    dist = tmp_path / "donate_example-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: donate-example\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[society.phases]\ndonate = donate_phase:DonatePhase\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(EXAMPLE.parent))
    registered_phases.cache_clear()
    yield
    registered_phases.cache_clear()


def scenario_file(tmp_path: Path, policy: dict, **donate: object) -> Path:
    path = tmp_path / "donate.yaml"
    path.write_text(yaml.safe_dump({
        "name": "donate", "seed": 3, "rounds": 3,
        "population": {"size": 30, "initial_wealth": 10, "policies": [policy]},
        "graph": {"kind": "watts_strogatz", "k": 4, "p": 0.2},
        "schedule": [{"phase": "donate", "params": donate}],
    }))
    return path


def test_the_example_is_one_short_file() -> None:
    assert len(EXAMPLE.read_text().splitlines()) < 80


def test_heuristic_citizens_give_to_their_poorest_neighbour(donate_registered: None, tmp_path: Path) -> None:
    society = Society(load_scenario(scenario_file(tmp_path, {"policy": "sustainable", "fraction": 1.0}, share=0.5)))
    society.state["wealth"][:] = np.arange(30, dtype=np.float64)
    total, inequality = society.state["wealth"].sum(), gini(society.state["wealth"])
    society.step()
    events = society.round_events()
    assert society.round_row["donors"] > 0 and (events["kind"] == "donation").all()
    assert (events["actor"] != events["target"]).all()
    assert society.state["wealth"].sum() == pytest.approx(total)
    assert gini(society.state["wealth"]) < inequality


def test_llm_citizens_are_asked_and_failed_answers_take_the_named_fallback(
    donate_registered: None, tmp_path: Path
) -> None:
    society = Society(load_scenario(scenario_file(tmp_path, {"policy": "llm", "fraction": 1.0}, fallback="nothing")))
    society.llm.connection = SchemaAnswers()
    society.step()
    calls = society.llm.round_calls()
    assert calls["phase"].unique().to_list() == ["donate"] and calls.height == 30
    failed = calls.filter(pl.col("fallback"))["citizen"].to_list()
    assert failed, "the schema answerer fails about one answer in eleven"
    gave = set(society.round_events()["actor"].to_list())
    assert not gave & set(failed)
