"""The engine benchmark's plain-Mesa yardstick plays the engine's rules: their first rounds agree within noise."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))  # the bench scripts import each other
bench = importlib.import_module("bench_engine")


def test_first_round_totals_agree_on_the_same_graph() -> None:
    n = 10_000
    _, engine_rounds, graph = bench.time_engine(n, 1, seed=3)
    mesa = bench.run_mesa_baseline(n, 1, 3, bench.neighbour_lists(graph))
    differences = bench.same_rules(engine_rounds[0], mesa["rounds_played"][0])
    assert set(differences) == {"total_harvest", "stock_total", "punishments"}
    assert engine_rounds[0]["punishments"] > n  # punishments happen: the greedy fifth is over the threshold


def test_the_check_rejects_other_rules() -> None:
    engine = {"total_harvest": 100.0, "stock_total": 500.0, "punishments": 1000}
    with pytest.raises(SystemExit, match="disagree"):
        bench.same_rules(engine, engine | {"punishments": 800})
