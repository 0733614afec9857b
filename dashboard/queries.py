"""The frames the pages draw, read from run and sweep folders with Polars and cached on file times."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import polars as pl
from scipy import stats

from dashboard.files import keyed_on_files
from institutions.power import SELF_SERVING, SEVERITY
from society.rundir.layout import (
    GRAPH,
    PERSONAS,
    SCENARIO,
    SUMMARY,
    Table,
    collect,
    read_graph,
    read_parquet,
    read_personas,
    read_round,
    read_scenario_text,
    read_table,
    scan_table,
    table_columns,
    table_dir,
    table_rounds,
)
from society.rundir.persona_validity import persona_validity as run_persona_validity
from society.rundir.run_metrics import run_metrics

NORM_COLUMNS = ("norm_dispersion", "compliance", "sanction_norm_agreement", "cooperation_index", "norm_stability")
POWER_COLUMNS = ("ppi", "ppi_cumulative", "incumbency_rate", "turnover", "entrenchment_attempts",
                 "entrenchment_successes", "policy_stability")
MEMORY_OPEN, MEMORY_CLOSE = "<memory>", "</memory>"
JURY = "jury"  # a block by the jury acquits some targets of a sanction; the sanction itself went through


def _rows_of_citizen(run: Path, table: Table, citizen: int) -> pl.DataFrame:
    """One citizen's rows of a per-round table, in round order (empty when the table has no file yet)."""
    frame = scan_table(run, table)
    if frame is None:
        return pl.DataFrame()
    return collect(frame.filter(pl.col("citizen") == citizen).sort("round"), run, table)


@keyed_on_files(table_dir("rounds"))
def rounds(run: Path) -> pl.DataFrame:
    """One row per round written so far, in round order."""
    frame = read_table(run, "rounds")
    return frame.sort("round") if "round" in frame.columns else frame


@keyed_on_files(SCENARIO)
def scenario_text(run: Path) -> str | None:
    """The resolved scenario YAML the run used, or None when the folder has none."""
    return read_scenario_text(run) if (run / SCENARIO).is_file() else None


@keyed_on_files(table_dir("citizens"), table_dir("rounds"), SCENARIO)
def whole_run(run: Path) -> dict[str, float | None]:
    """The run-level metrics (GovSim's over-usage), computed from the run's tables."""
    return run_metrics(run)


@keyed_on_files(table_dir("citizens"))
def citizen_columns(run: Path) -> list[str]:
    """The columns of the latest citizens file (cheap: reads one footer)."""
    return table_columns(run, "citizens")


def citizen_rounds(run: Path) -> list[int]:
    """The rounds whose citizens were recorded (named by their files)."""
    return table_rounds(run, "citizens")


@keyed_on_files(table_dir("citizens"), maxsize=8)
def citizens_at(run: Path, number: int) -> pl.DataFrame:
    """Every citizen's row for one recorded round."""
    return read_round(run, "citizens", number)


@keyed_on_files(table_dir("citizens"), maxsize=64)
def citizen_history(run: Path, citizen: int) -> pl.DataFrame:
    """One citizen's rows over every recorded round."""
    return _rows_of_citizen(run, "citizens", citizen)


@keyed_on_files(table_dir("citizens"))
def sustainable_harvest(run: Path) -> pl.DataFrame:
    """Per recorded round, the sum of every citizen's sustainable share (the sustainable harvest)."""
    frame = scan_table(run, "citizens")
    if frame is None or "fair_share" not in citizen_columns(run):
        return pl.DataFrame()
    query = frame.group_by("round").agg(sustainable=pl.col("fair_share").sum()).sort("round")
    return collect(query, run, "citizens")


@keyed_on_files(table_dir("citizens"))
def norm_distribution(run: Path, bins: int) -> pl.DataFrame:
    """Share of citizens per personal-norm bin per round: round, norm (bin centre), low, high, share."""
    frame = scan_table(run, "citizens")
    if frame is None or "personal_norm" not in citizen_columns(run):
        return pl.DataFrame()
    norms = frame.select("round", "personal_norm").drop_nulls()
    bounds = collect(norms.select(low=pl.col("personal_norm").min(), high=pl.col("personal_norm").max()),
                     run, "citizens")
    low, high = bounds.row(0)
    if low is None:
        return pl.DataFrame()
    width = (high - low) / bins if high > low else 1.0
    index = ((pl.col("personal_norm") - low) / width).floor().clip(0, bins - 1).cast(pl.Int32)
    counts = norms.group_by("round", index.alias("bin")).agg(count=pl.len())
    query = counts.with_columns(
        share=pl.col("count") / pl.col("count").sum().over("round"),
        low=low + pl.col("bin") * width,
        high=low + (pl.col("bin") + 1) * width,
    ).with_columns(norm=(pl.col("low") + pl.col("high")) / 2)
    return collect(query.sort("round", "bin"), run, "citizens")


def intervention_rounds(run: Path) -> pl.DataFrame:
    """The scenario's interventions as they fired: round, what (the actions it applied, e.g. `add, broadcast`)."""
    fired = events(run, ("intervention",))
    if fired.is_empty():
        return pl.DataFrame(schema={"round": pl.Int32, "what": pl.Utf8})
    what = [", ".join(key for key in ("set", "add", "shock", "broadcast") if key in json.loads(detail))
            for detail in fired["detail"]]
    return fired.select("round").with_columns(what=pl.Series(what, dtype=pl.Utf8))


@keyed_on_files(table_dir("events"))
def events(run: Path, kinds: tuple[str, ...]) -> pl.DataFrame:
    """Events of the given kinds, in round order."""
    frame = scan_table(run, "events")
    if frame is None:
        return pl.DataFrame()
    return collect(frame.filter(pl.col("kind").is_in(list(kinds))).sort("round"), run, "events")


@keyed_on_files(table_dir("events"))
def event_counts(run: Path) -> pl.DataFrame:
    """How many events of each kind each round: round, kind, count."""
    frame = scan_table(run, "events")
    if frame is None:
        return pl.DataFrame()
    return collect(frame.group_by("round", "kind").agg(count=pl.len()).sort("round", "kind"), run, "events")


def stock_per_patch(rounds_frame: pl.DataFrame) -> pl.DataFrame:
    """The `stock` list column as long rows: round, patch, stock."""
    if "stock" not in rounds_frame.columns:
        return pl.DataFrame()
    return (
        rounds_frame.select("round", "stock")
        .with_columns(patch=pl.int_ranges(pl.col("stock").list.len()))
        .explode("stock", "patch")
        .select("round", pl.col("patch").cast(pl.Int64), pl.col("stock").cast(pl.Float64))
    )


def collapse_rounds(rounds_frame: pl.DataFrame) -> pl.DataFrame:
    """Rounds in which more patches collapsed than before: round, collapsed_patches."""
    if "collapsed_patches" not in rounds_frame.columns:
        return pl.DataFrame()
    return rounds_frame.select("round", "collapsed_patches").filter(
        pl.col("collapsed_patches") > pl.col("collapsed_patches").shift(1, fill_value=0)
    )


def first_collapse(rounds_frame: pl.DataFrame) -> int | None:
    """The first round in which a patch collapsed, or None."""
    collapses = collapse_rounds(rounds_frame)
    return int(collapses["round"][0]) if collapses.height else None


def full_collapse(rounds_frame: pl.DataFrame) -> int | None:
    """The first round by which every patch had collapsed, or None."""
    if "collapsed_patches" not in rounds_frame.columns or "stock" not in rounds_frame.columns:
        return None
    done = rounds_frame.filter(pl.col("collapsed_patches") >= pl.col("stock").list.len())
    return int(done["round"][0]) if done.height else None


def per_round(counts: pl.DataFrame, kinds: tuple[str, ...], numbers: list[int]) -> pl.DataFrame:
    """Event counts of `kinds` for every round in `numbers`, zeros included: round, kind, count."""
    found = counts.filter(pl.col("kind").is_in(list(kinds))) if not counts.is_empty() else counts
    present = sorted(set(found["kind"].to_list())) if not found.is_empty() else []
    if not present:
        return pl.DataFrame(schema={"round": pl.Int64, "kind": pl.Utf8, "count": pl.UInt32})
    grid = pl.DataFrame({"round": numbers}, schema={"round": pl.Int64}).join(
        pl.DataFrame({"kind": present}), how="cross")
    observed = found.select(pl.col("round").cast(pl.Int64), "kind", pl.col("count").cast(pl.UInt32))
    return grid.join(observed, on=["round", "kind"], how="left").with_columns(
        pl.col("count").fill_null(0)).sort("round", "kind")


def totals_and_finals(frames: dict[str, pl.DataFrame], metrics: list[str]) -> pl.DataFrame:
    """For each metric, every run's total over its rounds and its final-round value, formatted: metric, then
    `<run> total` and `<run> final` per run (blank for a run without that metric)."""
    rows = []
    for metric in metrics:
        row: dict[str, str] = {"metric": metric}
        for name, frame in frames.items():
            has = metric in frame.columns
            row[f"{name} total"] = format_number(frame[metric].sum()) if has else ""
            row[f"{name} final"] = format_number(frame[metric][-1]) if has else ""
        rows.append(row)
    return pl.DataFrame(rows)


def format_number(value: Any) -> str:
    """A number as a reader reads it: integers with thousands separators, others to 4 significant digits."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 1e15):
        return f"{int(value):,}"
    return f"{value:,.4g}" if isinstance(value, float) else str(value)


def norm_emergence(rounds_frame: pl.DataFrame) -> tuple[int | None, int | None]:
    """(the round a norm emerged, the round every patch had collapsed by), either None.

    The emergence is the engine's at the last round before the full collapse (or at the last round without one):
    after a collapse nobody can take anything, so agreement then is not a norm emerging (runs written before the
    engine knew this may still name one there; it is left out).
    """
    collapsed = full_collapse(rounds_frame)
    if "norm_emergence_round" not in rounds_frame.columns:
        return None, collapsed
    before = rounds_frame if collapsed is None else rounds_frame.filter(pl.col("round") < collapsed)
    emerged = before["norm_emergence_round"][-1] if before.height else None
    return (None if emerged is None else int(emerged)), collapsed


def vote_shares(elections: pl.DataFrame) -> pl.DataFrame:
    """Election events as round, winner, candidate, share, votes (from each event's JSON detail).

    The detail's `shares` (or `vote_shares`) maps candidates to shares; without it, shares come from `tally`.
    """
    rows: list[dict[str, Any]] = []
    for number, winner, detail in elections.select("round", "actor", "detail").iter_rows():
        try:
            data = json.loads(detail) if detail else {}
        except json.JSONDecodeError:
            data = {}
        tally = data.get("tally") if isinstance(data.get("tally"), dict) else {}
        kinds = data.get("kinds") if isinstance(data.get("kinds"), dict) else {}
        shares = data.get("shares") or data.get("vote_shares")
        if not isinstance(shares, dict):
            total = sum(float(votes) for votes in tally.values()) or 1.0
            shares = {candidate: float(votes) / total for candidate, votes in tally.items()}
        for candidate, share in shares.items():
            votes = tally.get(candidate, tally.get(str(candidate)))
            rows.append({"round": number, "winner": _labelled(winner, kinds), "candidate": _labelled(candidate, kinds),
                         "share": float(share), "votes": None if votes is None else float(votes)})
    schema = {"round": pl.Int64, "winner": pl.Utf8, "candidate": pl.Utf8, "share": pl.Float64, "votes": pl.Float64}
    return pl.DataFrame(rows, schema=schema)


def _labelled(candidate: Any, kinds: dict[str, Any]) -> str:
    """A candidate as `id (kind)` when the election recorded its politician kind."""
    kind = kinds.get(str(candidate))
    return f"{candidate} ({kind})" if kind else str(candidate)


def leader_actions(actions: pl.DataFrame, blocked: pl.DataFrame) -> pl.DataFrame:
    """Leaders' decisions per round and type: round, action, attempted, blocked (by a charter rule), taken."""
    schema = {"round": pl.Int64, "action": pl.Utf8, "attempted": pl.Int64, "blocked": pl.Int64, "taken": pl.Int64}
    if actions.is_empty():
        return pl.DataFrame(schema=schema)
    tried = actions.select(pl.col("round").cast(pl.Int64),
                           pl.col("detail").str.json_path_match("$.action").fill_null("unknown").alias("action")
                           ).group_by("round", "action").agg(attempted=pl.len().cast(pl.Int64))
    refused = blocked_rules(blocked).filter(pl.col("rule") != JURY).group_by("round", "action").agg(
        blocked=pl.len().cast(pl.Int64)) if not blocked.is_empty() else pl.DataFrame(
        schema={"round": pl.Int64, "action": pl.Utf8, "blocked": pl.Int64})
    return tried.join(refused, on=["round", "action"], how="left").with_columns(
        blocked=pl.min_horizontal(pl.col("blocked").fill_null(0), pl.col("attempted"))
    ).with_columns(taken=pl.col("attempted") - pl.col("blocked")).sort("round", "action").select(list(schema))


def ppi_over_rounds(decisions: pl.DataFrame, numbers: list[int]) -> pl.DataFrame:
    """The cumulative Power-Preservation Index after each round, counting every attempt (as the run records it)
    and counting only the decisions that went through: round, series, ppi."""
    weight = pl.col("action").replace_strict(SEVERITY, default=1.0, return_dtype=pl.Float64)
    serving = pl.col("action").is_in(list(SELF_SERVING)).cast(pl.Float64)
    rows = pl.DataFrame({"round": numbers}, schema={"round": pl.Int64})
    out = []
    for series, count in (("with blocked attempts", "attempted"), ("without blocked attempts", "taken")):
        per_round = decisions.group_by("round").agg(
            served=(weight * serving * pl.col(count)).sum(), weighed=(weight * pl.col(count)).sum())
        cumulative = rows.join(per_round, on="round", how="left").sort("round").with_columns(
            pl.col("served", "weighed").fill_null(0.0).cum_sum()
        ).select("round", series=pl.lit(series), ppi=pl.when(pl.col("weighed") > 0)
                 .then(pl.col("served") / pl.col("weighed")))
        out.append(cumulative)
    return pl.concat(out)


def blocked_rules(blocked: pl.DataFrame) -> pl.DataFrame:
    """Blocked events as round, action, rule (from their JSON detail)."""
    return blocked.select(
        pl.col("round").cast(pl.Int64),
        pl.col("detail").str.json_path_match("$.action").fill_null("unknown").alias("action"),
        pl.col("detail").str.json_path_match("$.rule").fill_null("unknown").alias("rule"),
    )


def blocked_by_rule(blocked: pl.DataFrame) -> pl.DataFrame:
    """Blocked leader actions counted by (action, rule) from their JSON detail."""
    return blocked_rules(blocked).group_by("action", "rule").agg(count=pl.len()).sort("count", descending=True)


@dataclass(frozen=True)
class GraphSample:
    """Laid-out nodes (citizen, x, y) and edges (x, y, x2, y2) of the graph or a connected sample of it."""

    nodes: pl.DataFrame
    edges: pl.DataFrame
    total_nodes: int
    total_edges: int


@keyed_on_files(GRAPH, maxsize=8)
def graph_sample(run: Path, citizens: int, max_nodes: int, seed: int) -> GraphSample:
    """The social graph, or a breadth-first sample of `max_nodes` citizens from a seeded start, laid out."""
    edges = read_graph(run)
    graph = nx.Graph()
    graph.add_nodes_from(range(citizens))
    graph.add_edges_from(zip(edges["source"].to_numpy(), edges["target"].to_numpy()))
    keep = list(graph) if citizens <= max_nodes else _breadth_first(graph, max_nodes, seed)
    sample = graph.subgraph(keep)
    layout = nx.spring_layout(sample, seed=seed, iterations=40)
    nodes = pl.DataFrame(
        {"citizen": np.array(list(layout), dtype=np.int64),
         "x": np.array([point[0] for point in layout.values()]),
         "y": np.array([point[1] for point in layout.values()])}
    )
    pairs = np.array(list(sample.edges()), dtype=np.int64).reshape(-1, 2)
    ends = [layout[node] for node in pairs.ravel()]
    coordinates = np.array(ends).reshape(-1, 4) if ends else np.empty((0, 4))
    edge_frame = pl.DataFrame(
        {"x": coordinates[:, 0], "y": coordinates[:, 1], "x2": coordinates[:, 2], "y2": coordinates[:, 3]}
    )
    return GraphSample(nodes, edge_frame, citizens, edges.height)


def _breadth_first(graph: nx.Graph, size: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    kept: dict[int, None] = {}
    while len(kept) < size:
        start = int(rng.integers(graph.number_of_nodes()))
        for node in nx.bfs_tree(graph, start):
            kept.setdefault(node, None)
            if len(kept) >= size:
                break
    return list(kept)


@keyed_on_files(PERSONAS)
def personas(run: Path) -> pl.DataFrame:
    """The personas of LLM citizens: citizen, role, values, agenda and the Big Five scores (empty without any)."""
    return read_personas(run)


@keyed_on_files(table_dir("survey"), table_dir("citizens"), table_dir("events"), PERSONAS, SCENARIO)
def persona_validity(run: Path) -> pl.DataFrame | None:
    """Pearson's r of each assigned Big Five trait with its surveyed score and with behaviour (None without a
    survey); see society.rundir.persona_validity."""
    return run_persona_validity(run)


@keyed_on_files(table_dir("llm_calls"), maxsize=64)
def llm_calls_of(run: Path, citizen: int) -> pl.DataFrame:
    """Every model call made for one citizen, in round order."""
    return _rows_of_citizen(run, "llm_calls", citizen)


@keyed_on_files(table_dir("llm_calls"))
def llm_citizens(run: Path) -> list[int]:
    """The citizens that have at least one model call."""
    frame = scan_table(run, "llm_calls")
    if frame is None:
        return []
    return collect(frame.select(pl.col("citizen").unique().sort()), run, "llm_calls")["citizen"].to_list()


def prompt_messages(prompt: str) -> list[tuple[str, str]]:
    """A recorded prompt (messages as JSON text) as (role, content) pairs; plain text is one user message."""
    try:
        messages = json.loads(prompt)
    except (json.JSONDecodeError, TypeError):
        return [("user", str(prompt))]
    if not isinstance(messages, list):
        return [("user", str(prompt))]
    return [(str(item.get("role", "?")), str(item.get("content", ""))) for item in messages if isinstance(item, dict)]


def memory_block(prompt: str) -> str | None:
    """The citizen's memory as the prompt showed it: the block between the memory delimiters in the user message
    (the rules in the system message name the delimiters too, so they are not searched)."""
    for role, content in prompt_messages(prompt):
        if role != "user":
            continue
        start = content.find(MEMORY_OPEN)
        end = content.find(MEMORY_CLOSE, start)
        if start >= 0 and end > start:
            return content[start + len(MEMORY_OPEN):end].strip()
    return None


REASONING_COLUMNS = ("round", "phase", "citizen", "policy", "persona", "request", "granted", "reason", "fallback")


@keyed_on_files(table_dir("llm_calls"), table_dir("citizens"), PERSONAS)
def reasoning(run: Path, model: str | None) -> pl.DataFrame:
    """Every model call as a reader compares them: round, phase, citizen, policy (with the model), persona (role
    and values), request (the answer's fields but its reason), granted (the citizen's take that round, for
    harvest calls), reason, fallback."""
    calls = scan_table(run, "llm_calls")
    if calls is None:
        return pl.DataFrame()
    frame = collect(calls.select("round", "phase", "citizen", "answer", "fallback").sort("round", "citizen"),
                    run, "llm_calls")
    parsed = [_answer_fields(answer) for answer in frame["answer"].to_list()]
    frame = frame.with_columns(
        request=pl.Series([request for request, _ in parsed], dtype=pl.Utf8),
        reason=pl.Series([reason for _, reason in parsed], dtype=pl.Utf8),
    )
    citizens = scan_table(run, "citizens")
    taken = [name for name in ("policy", "take") if name in citizen_columns(run)]
    if citizens is not None and taken:
        asked = frame["citizen"].unique().to_list()
        facts = collect(citizens.filter(pl.col("citizen").is_in(asked)).select("round", "citizen", *taken),
                        run, "citizens")
        frame = frame.join(facts, on=["round", "citizen"], how="left")
    policy = pl.col("policy").cast(pl.Utf8) if "policy" in frame.columns else pl.lit("llm")
    granted = pl.when(pl.col("phase") == "harvest").then(pl.col("take")) if "take" in frame.columns else None
    frame = frame.with_columns(
        policy=pl.concat_str(policy, pl.lit(f" ({model})")) if model else policy,
        granted=granted if granted is not None else pl.lit(None, pl.Float64),
    ).join(_persona_summaries(run), on="citizen", how="left")
    return frame.select(REASONING_COLUMNS)


def _answer_fields(answer: str) -> tuple[str, str | None]:
    """A raw answer as (its fields but the reason, as `name: value` text; the reason); unparsed text as is."""
    try:
        data = json.loads(answer)
    except (json.JSONDecodeError, TypeError):
        return str(answer), None
    if not isinstance(data, dict):
        return str(answer), None
    reason = data.pop("reason", None)
    return ", ".join(f"{key}: {json.dumps(value)}" for key, value in data.items()), None if reason is None \
        else str(reason)


def _persona_summaries(run: Path) -> pl.DataFrame:
    """One line per LLM citizen: role, values and hidden agenda."""
    people = personas(run)
    rows = []
    for row in people.iter_rows(named=True) if "citizen" in people.columns else []:
        values = row.get("values")
        values = ", ".join(values) if isinstance(values, list) else values
        agenda = f"; agenda: {row['agenda']}" if row.get("agenda") else ""
        rows.append({"citizen": row["citizen"], "persona": f"{row.get('role')}; values: {values}{agenda}"})
    return pl.DataFrame(rows, schema={"citizen": pl.Int64, "persona": pl.Utf8})


@keyed_on_files(SUMMARY)
def sweep_summary(sweep: Path) -> pl.DataFrame:
    """The sweep's summary: one row per cell and seed."""
    path = sweep / SUMMARY
    return read_parquet(path) if path.is_file() else pl.DataFrame()


def sweep_axes(spec: dict[str, Any], summary: pl.DataFrame) -> list[str]:
    """The grid's axes (dotted paths) that are columns of the summary, in the order the grid names them."""
    axes = spec.get("axes", {})
    if isinstance(axes, dict):
        names = list(axes)
    elif isinstance(axes, list):
        names = [str(axis.get("path", axis.get("name"))) if isinstance(axis, dict) else str(axis) for axis in axes]
    else:
        names = []
    named = [name for name in names if name in summary.columns]
    return named or [column for column in summary.columns if "." in column]


def sweep_metrics(summary: pl.DataFrame, axes: list[str]) -> list[str]:
    """The summary's metrics a sweep can chart: numeric columns, and booleans (averaged as rates)."""
    skip = {"cell", "seed", "round", *axes}
    return [name for name, dtype in summary.schema.items()
            if name not in skip and (dtype.is_numeric() or dtype == pl.Boolean)]


def cell_runs(summary: pl.DataFrame, axes: list[str]) -> pl.DataFrame:
    """Per combination of `axes`, the cell and its runs' folders (relative to the sweep) in seed order: the axes,
    cell, runs."""
    if "run_dir" not in summary.columns:
        return pl.DataFrame()
    return summary.sort("seed").group_by(axes, maintain_order=True).agg(
        cell=pl.col("cell").first(), runs=pl.col("run_dir")
    ).sort(axes)


def interval_grid(summary: pl.DataFrame, metric: str, axes: list[str], level: float = 0.95) -> pl.DataFrame:
    """Mean of `metric` over seeds per combination of `axes`, with a Student-t interval: mean, low, high, seeds."""
    values = summary.with_columns(pl.col(metric).cast(pl.Float64)).filter(pl.col(metric).is_finite())
    grouped = values.group_by(axes).agg(
        mean=pl.col(metric).mean(), sd=pl.col(metric).std(), seeds=pl.len()
    ).sort(axes)
    factor = [float(stats.t.ppf((1 + level) / 2, n - 1)) if n > 1 else 0.0 for n in grouped["seeds"].to_list()]
    half = pl.Series("half", factor) * grouped["sd"].fill_null(0.0) / grouped["seeds"].cast(pl.Float64).sqrt()
    return grouped.with_columns(low=pl.col("mean") - half, high=pl.col("mean") + half).drop("sd")


NO_MODEL = "no model (heuristic)"


@keyed_on_files(table_dir("citizens"))
def requests_by_model(run: Path) -> pl.DataFrame:
    """Per round and model, the mean amount asked as a share of the sustainable share (1: asked exactly the
    sustainable share): round, model, asked (empty unless the citizens table has a `model` column); citizens
    without a model (heuristic ones) are one group."""
    frame = scan_table(run, "citizens")
    needed = ("model", "requested", "fair_share")
    if frame is None or not all(name in citizen_columns(run) for name in needed):
        return pl.DataFrame()
    ratio = pl.when(pl.col("fair_share") > 0).then(pl.col("requested") / pl.col("fair_share"))
    query = frame.group_by("round", model=pl.col("model").cast(pl.Utf8).fill_null(NO_MODEL)).agg(
        asked=ratio.mean()).sort("round", "model")
    return collect(query, run, "citizens")


@keyed_on_files(table_dir("llm_calls"))
def fallbacks_by_model(run: Path) -> pl.DataFrame:
    """Per round and model, the share of model calls that fell back: round, model, fallback (empty unless
    llm_calls has `model` and `fallback` columns)."""
    frame = scan_table(run, "llm_calls")
    if frame is None or not {"model", "fallback"} <= set(table_columns(run, "llm_calls")):
        return pl.DataFrame()
    query = frame.group_by("round", pl.col("model").cast(pl.Utf8)).agg(
        fallback=pl.col("fallback").cast(pl.Float64).mean()).sort("round", "model")
    return collect(query, run, "llm_calls")


def by_run(frames: dict[str, pl.DataFrame], columns: list[str]) -> pl.DataFrame:
    """Several runs' rounds columns as one long frame: round, metric, value, run (columns a run lacks are left
    out for that run)."""
    parts = []
    for name, frame in frames.items():
        kept = [column for column in columns if column in frame.columns]
        if kept:
            parts.append(frame.select("round", *[pl.col(column).cast(pl.Float64) for column in kept])
                         .unpivot(index="round", variable_name="metric", value_name="value")
                         .with_columns(run=pl.lit(name)))
    schema = {"round": pl.Int64, "metric": pl.Utf8, "value": pl.Float64, "run": pl.Utf8}
    return pl.concat([part.cast(schema) for part in parts]) if parts else pl.DataFrame(schema=schema)


def collapses_by_run(frames: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Every run's collapse rounds: round, collapsed_patches, run."""
    marks = [collapse_rounds(frame).with_columns(run=pl.lit(name)) for name, frame in frames.items()
             if "collapsed_patches" in frame.columns]
    schema = {"round": pl.Int64, "collapsed_patches": pl.Int64, "run": pl.Utf8}
    return pl.concat([mark.cast(schema) for mark in marks]) if marks else pl.DataFrame(schema=schema)
