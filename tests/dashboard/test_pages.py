"""Every page in AppTest: on real runs, on a run with every contract column, and on runs that lack data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import queries
from society import load_run
from tests.dashboard.apptest import chart_titles, open_page, texts
from tests.dashboard.conftest import LLM_CITIZEN, SWEEP_CELLS, collapse_every_patch, sweep_efficiency


def test_runs_page_lists_every_folder_and_compares_runs(monkeypatch: pytest.MonkeyPatch, runs_dir: Path) -> None:
    app = open_page(monkeypatch, runs_dir, "runs", run="village")
    assert [title.value for title in app.title] == ["Runs"]
    listed = app.dataframe[0].value
    assert set(listed["name"]) >= {"village", "fishery", "rich", "grid", "grid/cells/0003/seed-0", "empty", "broken"}
    status = dict(zip(listed["name"], listed["status"]))
    assert status["partial"] == "running" and status["broken"] == "corrupt" and status["empty"] == "empty"
    assert status["grid"] == "completed" and status["village"] == "completed"
    assert {metric.label for metric in app.metric} >= {"efficiency", "survival", "equality"}
    over_usage = next(metric for metric in app.metric if metric.label == "govsim_over_usage (whole run)")
    expected = queries.whole_run(runs_dir / "village")["govsim_over_usage"]
    assert expected is not None and over_usage.value == queries.format_number(expected)
    app.multiselect[0].set_value(["village", "fishery"]).run()
    metric = next(box for box in app.selectbox if box.label == "Metric")
    metric.set_value("stock_total").run()
    assert not app.exception
    assert chart_titles(app) == ["stock_total by run"]
    side_by_side = app.dataframe[1].value
    assert list(side_by_side.columns) == ["metric", "village total", "village final", "fishery total", "fishery final"]
    shocks = side_by_side[side_by_side["metric"] == "shocks"].iloc[0]
    village = load_run(runs_dir / "village").rounds
    assert shocks["village total"] == f"{village['shocks'].sum():,}"
    assert shocks["village final"] == f"{village['shocks'][-1]:,}"
    collapsed = side_by_side[side_by_side["metric"] == "collapsed"].iloc[0]  # rounds in which it was true
    assert collapsed["village total"] == f"{village['collapsed'].sum():,}"
    efficiency = side_by_side[side_by_side["metric"] == "efficiency"].iloc[0]["village final"]
    assert efficiency == f"{village['efficiency'][-1]:,.4g}" and len(efficiency) <= 8


def test_an_unknown_run_is_said_never_replaced(monkeypatch: pytest.MonkeyPatch, runs_dir: Path) -> None:
    for page in ("runs", "commons", "citizen"):
        app = open_page(monkeypatch, runs_dir, page, run="no-such-run")
        assert "holds no run named `no-such-run`" in texts(app.warning)
        assert next(box for box in app.sidebar.selectbox if box.label == "Run").value is None
        assert not [chart for chart in chart_titles(app) if chart != "efficiency by run"]


def test_commons_page_draws_stock_and_sustainable_line(monkeypatch: pytest.MonkeyPatch, runs_dir: Path) -> None:
    app = open_page(monkeypatch, runs_dir, "commons", run="village")
    assert [title.value for title in app.title] == ["Commons"]
    assert chart_titles(app) == ["Stock per patch", "Harvest against the sustainable line"]
    spec = json.loads(app.get("vega_lite_chart")[0].proto.spec)
    assert len(spec["layer"]) >= 1
    assert "rounds" in texts(app.caption)


def test_commons_page_marks_a_collapse(monkeypatch: pytest.MonkeyPatch, runs_dir: Path) -> None:
    app = open_page(monkeypatch, runs_dir, "commons", run="fishery")
    collapse = next(metric for metric in app.metric if metric.label == "First collapse")
    assert collapse.value in {"none"} or collapse.value.startswith("round ")


def test_commons_page_marks_the_round_an_intervention_fired(monkeypatch: pytest.MonkeyPatch, runs_dir: Path) -> None:
    app = open_page(monkeypatch, runs_dir, "commons", run="newcomer")
    assert chart_titles(app) == ["Stock per patch", "Harvest against the sustainable line"]
    for chart in app.get("vega_lite_chart"):
        spec = json.loads(chart.proto.spec)
        marks = [layer for layer in spec["layer"] if layer.get("mark", {}).get("color") == "#7f7f7f"]
        data = {named.name: pa.ipc.open_stream(named.data.data).read_all().to_pylist()
                for named in chart.proto.datasets} | spec.get("datasets", {})
        assert [data[mark["data"]["name"]] for mark in marks] == [[{"round": 3, "what": "add"}]]
    assert "intervention fired" in texts(app.caption)


def test_norms_page_with_norm_columns(monkeypatch: pytest.MonkeyPatch, runs_dir: Path) -> None:
    app = open_page(monkeypatch, runs_dir, "norms", run="rich")
    assert chart_titles(app) == ["Personal norms over rounds", "Norm metrics over rounds", "Sanctions per round",
                                 "Messages per round"]
    assert next(metric for metric in app.metric if metric.label == "Norm emerged").value == "round 3"
    assert "Messages between neighbours: 5 in 5 rounds." in texts(app.caption)
    assert not app.info and not app.warning
    lines = json.loads(app.get("vega_lite_chart")[1].proto.spec)
    assert lines["layer"][0]["encoding"]["y"]["title"] != "value"
    sanctions = chart_data(app, 2)
    assert sorted({row["round"] for row in sanctions}) == [1, 2, 3, 4, 5]


def test_norms_page_says_a_norm_held_until_the_collapse(monkeypatch: pytest.MonkeyPatch, runs_dir: Path) -> None:
    app = open_page(monkeypatch, runs_dir, "norms", run="collapsed")
    assert next(metric for metric in app.metric if metric.label == "Norm emerged").value == "round 3"
    said = texts(app.info)
    assert "The norm held until every patch had collapsed, in round 4." in said
    assert "no norm is counted as emerging" in said
    for index in range(3):  # heatmap, norm metrics, sanctions: each marks the collapses
        layers = json.loads(app.get("vega_lite_chart")[index].proto.spec)["layer"]
        assert any(layer["mark"]["type"] == "rule" for layer in layers)


def test_norms_page_counts_no_emergence_after_the_collapse(monkeypatch: pytest.MonkeyPatch, runs_dir: Path,
                                                          tmp_path: Path) -> None:
    """A run written before the engine knew better names a norm from round 3, after the collapse in round 2."""
    shutil.copytree(runs_dir / "rich", tmp_path / "late")
    collapse_every_patch(tmp_path / "late", first=1, every=2)
    app = open_page(monkeypatch, tmp_path, "norms", run="late")
    emerged = next(metric for metric in app.metric if metric.label == "Norm emerged").value
    assert emerged == "not before the collapse (round 2)"
    said = texts(app.info)
    assert "From round 2 on the commons is collapsed" in said and "held" not in said


def test_sanctions_bars_have_every_round_zeros_included(monkeypatch: pytest.MonkeyPatch, runs_dir: Path) -> None:
    app = open_page(monkeypatch, runs_dir, "norms", run="village")
    village = load_run(runs_dir / "village")
    bars = chart_data(app, 0)
    assert sorted({row["round"] for row in bars}) == village.rounds["round"].to_list()
    punished = village.events.filter(pl.col("kind") == "punish").group_by("round").len()
    expected = dict(zip(punished["round"], punished["len"]))
    assert {row["round"]: row["count"] for row in bars if row["kind"] == "punish"} == {
        number: expected.get(number, 0) for number in village.rounds["round"]}


def test_norms_page_says_plainly_what_a_core_run_lacks(monkeypatch: pytest.MonkeyPatch, runs_dir: Path) -> None:
    app = open_page(monkeypatch, runs_dir, "norms", run="village")
    said = texts(app.info)
    assert "no personal norms" in said and "no norm metrics" in said
    assert chart_titles(app) == ["Sanctions per round"]


def test_power_page_with_institutions_columns(monkeypatch: pytest.MonkeyPatch, runs_dir: Path) -> None:
    app = open_page(monkeypatch, runs_dir, "power", run="rich")
    assert chart_titles(app) == [
        "Power-Preservation Index (cumulative)", "Elections: vote shares (winner outlined)", "Leader by round",
        "Leader actions by type: taken and blocked", "Entrenchment attempts and successes", "Blocked actions by rule",
        "Incumbency and policy stability", "Turnover",
    ]
    assert any("blocked ones included" in block.value for block in app.markdown)  # PPI defined on the page
    ppi = {(row["series"], row["round"]): row["ppi"] for row in chart_data(app, 0)}
    # each round: set_policy (weight 1) went through, postpone_election (weight 3, self-serving) was blocked
    assert ppi[("with blocked attempts", 5)] == pytest.approx(0.75)
    assert ppi[("without blocked attempts", 5)] == 0.0
    elections = json.loads(app.get("vega_lite_chart")[1].proto.spec)
    assert elections["layer"][1]["transform"] == [{"filter": "datum.candidate == datum.winner"}]
    assert {row["candidate"] for row in chart_data(app, 1)} == {"7 (entrencher)", "12 (populist)"}
    actions = {(row["action"], row["outcome"]): row["count"] for row in chart_data(app, 3)}
    assert actions == {("postpone_election", "taken"): 0, ("postpone_election", "blocked"): 5,
                       ("set_policy", "taken"): 5, ("set_policy", "blocked"): 0}
    turnover = json.loads(app.get("vega_lite_chart")[7].proto.spec)
    assert turnover["layer"][0]["encoding"]["y"]["title"] == "changes of leader"


def test_power_page_says_plainly_what_a_core_run_lacks(monkeypatch: pytest.MonkeyPatch, runs_dir: Path) -> None:
    app = open_page(monkeypatch, runs_dir, "power", run="village")
    assert "no institutions data" in texts(app.info) and "ppi" in texts(app.info)
    assert chart_titles(app) == []


def test_network_page_samples_and_recolours(monkeypatch: pytest.MonkeyPatch, runs_dir: Path) -> None:
    app = open_page(monkeypatch, runs_dir, "network", run="village")
    assert chart_titles(app) == ["Social graph at round 5: all 200 citizens"]
    app.slider[0].set_value(100).run()
    app.select_slider[0].set_value(2).run()
    next(box for box in app.selectbox if box.label == "Colour by").set_value("faction").run()
    assert not app.exception
    assert chart_titles(app) == ["Social graph at round 2: 100 of 200 citizens"]
    assert "policy" in texts(app.caption) and "breadth-first sample" in texts(app.caption)
    points = json.loads(app.get("vega_lite_chart")[0].proto.spec)["layer"][1]
    assert points["encoding"]["color"]["field"] == "policy"


def test_network_opens_before_the_collapse_on_a_scale_centred_on_one(
    monkeypatch: pytest.MonkeyPatch, runs_dir: Path
) -> None:
    app = open_page(monkeypatch, runs_dir, "network", run="collapsed")
    assert chart_titles(app) == ["Social graph at round 2: all 200 citizens"]
    assert "opens on round 2, the last before it" in texts(app.caption)
    scale = json.loads(app.get("vega_lite_chart")[0].proto.spec)["layer"][1]["encoding"]["color"]["scale"]
    assert scale["domain"][1] == 1.0 and scale["range"][1] == "#f7f7f7"
    assert scale["domain"][0] < 1.0 < scale["domain"][2]


def test_citizen_page_shows_persona_memory_prompts(monkeypatch: pytest.MonkeyPatch, runs_dir: Path) -> None:
    app = open_page(monkeypatch, runs_dir, "citizen", run="rich")
    assert app.number_input[0].value == LLM_CITIZEN
    assert chart_titles(app) == ["Big Five", "Takes, round by round", "Wealth, round by round",
                                 "Norm beliefs, round by round"]
    assert any("**Role:** fisher" in block.value for block in app.markdown)
    shown = [block.value for block in app.code]
    assert shown[0] == "Round 4: you asked for 8.0 and got 8.0."  # the user message's block, not the rules' words
    assert any(text.startswith("You fish in a shared lake.") for text in shown)
    assert '{"amount": 6, "reason": "keep the lake alive"}' in shown
    assert all(block.proto.wrap_lines for block in app.code)
    assert [expander.label for expander in app.expander] == [
        "Round 1 · harvest", "Round 2 · harvest · fallback", "Round 3 · harvest", "Round 4 · harvest",
        "Round 5 · harvest",
    ]


def test_reasoning_page_tables_every_call(monkeypatch: pytest.MonkeyPatch, runs_dir: Path) -> None:
    app = open_page(monkeypatch, runs_dir, "reasoning", run="rich")
    table = app.table[0].value
    assert list(table.columns) == ["round", "phase", "citizen", "policy", "persona", "request", "granted", "reason",
                                   "fallback"]
    assert list(table["round"]) == [1, 2, 3, 4, 5] and set(table["citizen"]) == {LLM_CITIZEN}
    assert table["persona"][0] == "fisher; values: fairness, tradition"
    assert list(table["request"]) == [f"amount: {number + 5}" for number in range(1, 6)]
    assert list(table["fallback"]) == ["", "yes", "", "", ""]
    takes = load_run(runs_dir / "rich").citizens.filter(pl.col("citizen") == LLM_CITIZEN)["take"]
    assert list(table["granted"]) == [queries.format_number(take) for take in takes]
    app.text_input[0].set_value("OTHERS TAKE").run()
    assert list(app.table[0].value["round"]) == [2, 4]
    app.checkbox[0].check().run()
    assert list(app.table[0].value["round"]) == [2]
    assert "1 calls match (1 fell back" in texts(app.caption)


def test_reasoning_page_on_a_run_without_llm(monkeypatch: pytest.MonkeyPatch, runs_dir: Path) -> None:
    app = open_page(monkeypatch, runs_dir, "reasoning", run="village")
    assert "made no model call" in texts(app.info)


def test_citizen_page_on_a_heuristic_citizen(monkeypatch: pytest.MonkeyPatch, runs_dir: Path) -> None:
    app = open_page(monkeypatch, runs_dir, "citizen", run="village")
    said = texts(app.info)
    assert "has no persona" in said and "made no model call" in said
    assert chart_titles(app) == ["Takes, round by round", "Wealth, round by round"]


def chart_data(app: AppTest, index: int) -> list[dict]:
    """The rows of the first dataset of the page's `index`-th chart."""
    chart = app.get("vega_lite_chart")[index]
    spec = json.loads(chart.proto.spec)
    datasets = spec.get("datasets") or {}
    if datasets:
        return next(iter(datasets.values()))
    return pa.ipc.open_stream(chart.proto.datasets[0].data.data).read_all().to_pylist()


def test_sweeps_page_heatmap_with_intervals(monkeypatch: pytest.MonkeyPatch, runs_dir: Path) -> None:
    app = open_page(monkeypatch, runs_dir, "sweeps")
    assert "1 of 13 cell runs did not complete" in texts(app.warning)
    assert chart_titles(app) == [
        "efficiency: mean over seeds (95% interval)",
        "efficiency along schedule.2.params.cost (95% interval over seeds)",
    ]
    heatmap = json.loads(app.get("vega_lite_chart")[0].proto.spec)
    assert heatmap["layer"][0]["encoding"]["y"]["title"] == "commons.capacity"
    assert heatmap["layer"][0]["encoding"]["x"]["title"] == "schedule.2.params.cost"
    cells = {(row["across"], row["down"]): row for row in chart_data(app, 0)}
    assert set(cells) == set(SWEEP_CELLS)  # one cell per pair of axis values, not all stacked at one position
    for (cost, capacity), row in cells.items():
        expected = sum(sweep_efficiency(cost, capacity, seed) for seed in range(3)) / 3
        assert row["mean"] == pytest.approx(expected) and row["seeds"] == 3
        assert row["link"].startswith("commons?run=grid/cells/") and row["link"].endswith("/seed-0")
    assert app.query_params["sweep"] == "grid" and app.query_params["metric"] == "efficiency"
    links = app.dataframe[-1].value
    assert len(links) == 12 and "grid/cells/0003/seed-2" in "".join(links["open"])


def test_sweeps_page_rates_of_a_boolean_and_kept_in_the_url(monkeypatch: pytest.MonkeyPatch, runs_dir: Path) -> None:
    app = open_page(monkeypatch, runs_dir, "sweeps")
    metric = next(box for box in app.selectbox if box.label == "Metric")
    assert "collapsed" in metric.options[metric.options.index("collapsed (share of runs)")]
    metric.set_value("collapsed").run()
    assert not app.exception
    assert app.query_params["metric"] == "collapsed"
    cells = {(row["across"], row["down"]): row["mean"] for row in chart_data(app, 0)}
    assert cells[(2, 1000)] == pytest.approx(2 / 3) and cells[(1, 2000)] == 0.0
    assert "share of runs where it is true" in texts(app.caption)


def test_sweeps_page_leaves_invalid_runs_out_unless_asked(monkeypatch: pytest.MonkeyPatch, runs_dir: Path,
                                                          tmp_path: Path) -> None:
    shutil.copytree(runs_dir / "grid", tmp_path / "grid")
    summary = pl.read_parquet(tmp_path / "grid" / "summary.parquet")
    invalid = (pl.col("cell") == 0) & (pl.col("seed") < 2)
    summary.with_columns(valid=pl.when(pl.col("status") == "completed").then(invalid.not_())).write_parquet(
        tmp_path / "grid" / "summary.parquet")
    app = open_page(monkeypatch, tmp_path, "sweeps")
    assert "2 of 12 completed runs are invalid" in texts(app.error)
    cost, capacity = SWEEP_CELLS[0]
    assert {(r["across"], r["down"]): r["seeds"] for r in chart_data(app, 0)}[(cost, capacity)] == 1
    app.checkbox(key="leave_invalid_out").uncheck().run()
    assert {(r["across"], r["down"]): r["seeds"] for r in chart_data(app, 0)}[(cost, capacity)] == 3


def test_a_sweep_run_opens_from_its_link(monkeypatch: pytest.MonkeyPatch, runs_dir: Path) -> None:
    app = open_page(monkeypatch, runs_dir, "commons", run="grid/cells/0002/seed-1")
    assert not app.warning and not app.error
    assert next(box for box in app.sidebar.selectbox if box.label == "Run").value == "grid/cells/0002/seed-1"
    assert chart_titles(app)[0] == "Stock per patch"


@pytest.mark.parametrize("page", ["commons", "norms", "power", "network", "citizen"])
@pytest.mark.parametrize(
    ("run", "message"),
    [
        ("empty", "is empty: no run has been written there yet"),
        ("broken", "manifest.json: not valid JSON"),
        ("damaged", "000003.parquet: not a readable Parquet file"),
    ],
)
def test_unusable_folders_get_one_clear_message(
    monkeypatch: pytest.MonkeyPatch, runs_dir: Path, page: str, run: str, message: str
) -> None:
    app = open_page(monkeypatch, runs_dir, page, run=run)
    assert message in texts(app.error)
    assert len(app.error) == 1


def test_partial_run_shows_rounds_so_far(monkeypatch: pytest.MonkeyPatch, runs_dir: Path) -> None:
    app = open_page(monkeypatch, runs_dir, "commons", run="partial")
    assert "still going: 3 of 5 rounds" in texts(app.info)
    assert chart_titles(app) == ["Stock per patch", "Harvest against the sustainable line"]
    assert "of 3 rounds" in texts(app.caption)


def test_empty_runs_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for page in ("runs", "commons", "sweeps"):
        app = open_page(monkeypatch, tmp_path, page)
        assert "holds no run" in texts(app.info) or "holds no sweep" in texts(app.info)


def test_every_run_page_bears_the_invalid_banner(monkeypatch: pytest.MonkeyPatch, runs_dir: Path,
                                                 tmp_path: Path) -> None:
    run = tmp_path / "fishery"
    shutil.copytree(runs_dir / "fishery", run)
    manifest = json.loads((run / "manifest.json").read_text())
    reason = "12 of 12 LLM answers failed and fell back (100% of the run), above llm.invalid_threshold 0.2"
    validity = {"valid": False, "reason": reason}
    (run / "manifest.json").write_text(json.dumps(manifest | {"validity": validity}))
    for page in ("runs", "commons", "citizen", "network", "reasoning"):
        app = open_page(monkeypatch, tmp_path, page, run="fishery")
        assert f"**Invalid run**: {reason}." in texts(app.error), page
    labels = next(box for box in app.sidebar.selectbox if box.label == "Run").options
    assert labels == ["fishery  (completed, invalid)"]


def open_compared(monkeypatch: pytest.MonkeyPatch, runs_dir: Path, page: str, run: str, others: list[str]
                  ) -> AppTest:
    """`page` opened from a link `?run=RUN&with=OTHER...`."""
    return open_page(monkeypatch, runs_dir, page, run=run, others=others)


def chart_spec(app: AppTest, title: str) -> dict:
    return next(json.loads(chart.proto.spec) for chart, named in zip(app.get("vega_lite_chart"), chart_titles(app))
                if named == title)


def chart_rows(app: AppTest, title: str) -> list[dict]:
    return chart_data(app, chart_titles(app).index(title))


def test_commons_draws_picked_runs_on_shared_axes(monkeypatch: pytest.MonkeyPatch, runs_dir: Path) -> None:
    seed_run = "grid/cells/0001/seed-2"
    app = open_compared(monkeypatch, runs_dir, "commons", "village", ["collapsed", seed_run])
    assert app.sidebar.multiselect[0].value == ["collapsed", seed_run]
    assert chart_titles(app) == ["Total stock by run", "Harvest against the sustainable line, by run",
                                 "Stock per patch · village", "Stock per patch · collapsed",
                                 f"Stock per patch · {seed_run}"]
    stock = chart_spec(app, "Total stock by run")
    assert stock["layer"][0]["encoding"]["color"]["field"] == "run"
    rows = chart_rows(app, "Total stock by run")
    assert {row["run"] for row in rows} == {"village", "collapsed", seed_run}  # one legend entry per run
    village = load_run(runs_dir / "village").rounds
    drawn = [row["value"] for row in rows if row["run"] == "village"]
    assert drawn == pytest.approx(village["stock_total"].to_list())
    rules = stock["layer"][1]
    assert rules["mark"]["type"] == "rule" and rules["encoding"]["color"]["field"] == "run"  # collapses per run
    assert {(row["series"], row["run"]) for row in chart_rows(app, "Harvest against the sustainable line, by run")} \
        >= {("total_harvest", "village"), ("sustainable", "collapsed")}
    panels = [chart_spec(app, f"Stock per patch · {name}")["layer"][0]["encoding"]
              for name in ("village", "collapsed", seed_run)]
    domains = [(panel["x"]["scale"]["domain"], panel["y"]["scale"]["domain"]) for panel in panels]
    assert domains[0] == domains[1] == domains[2]  # the panels share both axes
    assert domains[0][1][1] >= max(village["stock"].list.max())
    collapse = {metric.label: metric.value for metric in app.metric}
    assert collapse["First collapse · collapsed"] == "round 3" and collapse["First collapse · village"] == "none"
    totals = app.dataframe[0].value
    assert list(totals.columns)[:3] == ["metric", "village total", "village final"]
    harvest = totals[totals["metric"] == "total_harvest"].iloc[0]
    assert harvest["village total"] == queries.format_number(village["total_harvest"].sum())


def test_one_run_picked_draws_as_before_and_the_pick_goes_to_the_url(
    monkeypatch: pytest.MonkeyPatch, runs_dir: Path
) -> None:
    app = open_page(monkeypatch, runs_dir, "commons", run="village")
    assert chart_titles(app) == ["Stock per patch", "Harvest against the sustainable line"]
    assert "with" not in app.query_params
    app.sidebar.multiselect[0].set_value(["fishery"]).run()
    assert app.query_params["with"] in ("fishery", ["fishery"])
    assert chart_titles(app)[0] == "Total stock by run"


def test_the_runs_page_compares_the_runs_picked_in_the_sidebar(monkeypatch: pytest.MonkeyPatch, runs_dir: Path) -> None:
    app = open_compared(monkeypatch, runs_dir, "runs", "rich", ["fishery"])
    assert app.multiselect[0].value == ["rich", "fishery"]
    assert list(app.dataframe[1].value.columns)[1:] == ["rich total", "rich final", "fishery total", "fishery final"]


def test_an_unknown_run_to_compare_with_is_said(monkeypatch: pytest.MonkeyPatch, runs_dir: Path) -> None:
    app = open_compared(monkeypatch, runs_dir, "commons", "village", ["no-such-run", "fishery"])
    assert "holds no readable run named 'no-such-run'" in texts(app.warning)
    assert {row["run"] for row in chart_rows(app, "Total stock by run")} == {"village", "fishery"}


def test_norms_side_by_side_reads_emergence_by_the_norms_pages_rule(
    monkeypatch: pytest.MonkeyPatch, runs_dir: Path
) -> None:
    app = open_compared(monkeypatch, runs_dir, "norms", "rich", ["collapsed", "village"])
    assert chart_titles(app) == ["Personal norms · rich", "Personal norms · collapsed", "Norm metrics by run",
                                 "Sanctions and messages per round, by run"]
    emerged = dict(zip(*app.dataframe[0].value[["run", "norm emerged"]].T.values))
    assert emerged["rich"] == "round 3"
    first, full = queries.norm_emergence(load_run(runs_dir / "collapsed").rounds)  # the single-run page's rule
    expected = f"round {first}" if first is not None else f"not before the collapse (round {full})"
    assert emerged["collapsed"] == expected
    heatmaps = [chart_spec(app, f"Personal norms · {name}")["layer"][0]["encoding"] for name in ("rich", "collapsed")]
    for channel in ("x", "y", "color"):
        assert heatmaps[0][channel]["scale"]["domain"] == heatmaps[1][channel]["scale"]["domain"]
    grid = chart_spec(app, "Norm metrics by run")
    assert [panel["title"] for panel in grid["concat"]] == list(queries.NORM_COLUMNS)
    assert grid["resolve"]["scale"]["x"] == "shared"
    events = chart_rows(app, "Sanctions and messages per round, by run")
    assert {row["run"] for row in events} == {"rich", "collapsed", "village"}
    totals = app.dataframe[1].value
    messages = totals[totals["metric"] == "messages"].iloc[0]
    assert messages["rich total"] == "5" and messages["village total"] == "0"
    compliance = totals[totals["metric"] == "compliance"].iloc[0]
    assert compliance["rich final"] == "1" and compliance["village final"] == ""  # the village has no norms


def test_power_side_by_side_on_one_ppi_scale(monkeypatch: pytest.MonkeyPatch, runs_dir: Path) -> None:
    app = open_compared(monkeypatch, runs_dir, "power", "rich", ["collapsed"])
    assert chart_titles(app) == [
        "Power-Preservation Index (cumulative), by run", "Elections · rich (winner outlined)",
        "Elections · collapsed (winner outlined)", "Leader by round · rich", "Leader by round · collapsed",
        "Leader actions by type: taken and blocked, by run",
        "Turnover and entrenchment (counts), by run", "Incumbency and policy stability (rates), by run",
    ]
    assert any("blocked ones included" in block.value for block in app.markdown)
    ppi = chart_spec(app, "Power-Preservation Index (cumulative), by run")["layer"][0]["encoding"]
    assert ppi["y"]["scale"]["domain"] == [0.0, 1.0] and ppi["color"]["field"] == "run"
    rows = chart_rows(app, "Power-Preservation Index (cumulative), by run")
    assert {(row["run"], row["series"]) for row in rows} == {
        (run, series) for run in ("rich", "collapsed")
        for series in ("with blocked attempts", "without blocked attempts")}
    leaders = [chart_spec(app, f"Leader by round · {name}")["layer"][0]["encoding"]["x"]["scale"]["domain"]
               for name in ("rich", "collapsed")]
    assert leaders[0] == leaders[1] == [1.0, 5.0]
    facet = chart_spec(app, "Leader actions by type: taken and blocked, by run")
    assert facet["facet"]["column"]["field"] == "run"
    totals = app.dataframe[0].value
    blocked = totals[totals["metric"] == "decisions blocked"].iloc[0]
    assert blocked["rich total"] == "5" and blocked["collapsed total"] == "5"


def test_commons_splits_requests_and_fallbacks_by_model(monkeypatch: pytest.MonkeyPatch, runs_dir: Path) -> None:
    app = open_page(monkeypatch, runs_dir, "commons", run="models")
    titles = chart_titles(app)
    assert "Amount asked ÷ sustainable share, by model" in titles and "Fallback share, by model" in titles
    asked = {(row["round"], row["model"]): row["asked"]
             for row in chart_rows(app, "Amount asked ÷ sustainable share, by model")}
    citizens = load_run(runs_dir / "models").citizens
    assert {model for _, model in asked} == {"default", "other-model", queries.NO_MODEL}
    group = citizens.filter((pl.col("round") == 2) & (pl.col("model") == "other-model"))
    assert asked[(2, "other-model")] == pytest.approx((group["requested"] / group["fair_share"]).mean())
    fallbacks = {(row["round"], row["model"]): row["fallback"] for row in chart_rows(app, "Fallback share, by model")}
    assert fallbacks[(2, "other-model")] == 1.0 and fallbacks[(3, "other-model")] == 0.0
    assert fallbacks[(2, "default")] == 0.0
    plain = open_page(monkeypatch, runs_dir, "commons", run="rich")  # one model: no model column, no such chart
    assert not [title for title in chart_titles(plain) if "by model" in title]


def test_sweeps_page_on_a_sweep_of_forks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A real fork sweep (forks of the GovSim newcomer run at months 3 and 4): one axis, fork.at, charted along it,
    each fork opened from its link."""
    from society.core.runner import run_scenario
    from society.scenario.files import load_scenario
    from society.sweeps import SerialExecutor, load_grid, run_sweep
    from tests.shipped_tables import SCENARIOS

    run_scenario(load_scenario(SCENARIOS / "govsim_newcomer.yaml"), tmp_path / "parent")
    grid = tmp_path / "grid.yaml"
    grid.write_text("fork: {run: parent}\nintervene: [{remove: {policy: greedy}}]\naxes: {fork.at: [3, 4]}\n")
    run_sweep(load_grid(grid), tmp_path / "forks", SerialExecutor())
    app = open_page(monkeypatch, tmp_path, "sweeps")
    assert not app.exception and not app.error
    assert chart_titles(app) == ["efficiency along fork.at (95% interval over seeds)"]
    metric = next(box for box in app.selectbox if box.label == "Metric")
    assert "divergence_round" in metric.options
    metric.set_value("divergence_round").run()
    assert {row["across"]: row["mean"] for row in chart_data(app, 0)} == {3: 3.0, 4: 4.0}
    assert "forks/cells/0001/seed-42" in "".join(app.dataframe[-1].value["open"])
