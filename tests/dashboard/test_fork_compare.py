"""A fork beside its parent on the Commons page: the round where their rounds first differ is said and marked."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from society.core.fork import fork_run
from tests.dashboard.apptest import chart_titles, open_page, texts
from tests.dashboard.conftest import real_run


def test_a_fork_beside_its_parent_marks_where_they_diverge(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    parent = real_run("govsim_fishery.yaml", tmp_path / "parent", "rounds=6")
    fork_run(parent, 3, tmp_path / "fork", interventions=["{shock: {severity: 0.5}}"])
    fork_run(parent, 4, tmp_path / "same")
    app = open_page(monkeypatch, tmp_path, "commons", run="fork", others=["parent", "same"])
    said = texts(app.info)
    assert "`fork` is a fork of `parent`, changed at round 3: its rounds first differ at round 3" in said
    assert "`same` is a fork of `parent`, changed at round 4: no divergence" in said
    chart = next(chart for chart, title in zip(app.get("vega_lite_chart"), chart_titles(app))
                 if title == "Total stock by run")
    spec = json.loads(chart.proto.spec)
    rules = [index for index, layer in enumerate(spec["layer"]) if layer.get("mark", {}).get("type") == "rule"
             and layer["mark"].get("strokeWidth") == 2]
    assert len(rules) == 1
    data = {dataset.name: pa.ipc.open_stream(dataset.data.data).read_all().to_pylist()
            for dataset in chart.proto.datasets}
    marked = data[spec["layer"][rules[0]]["data"]["name"]]
    assert [(row["run"], row["parent"], row["round"]) for row in marked] == [("fork", "parent", 3)]
