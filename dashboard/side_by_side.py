"""The Commons, Norms and Power pages with several runs picked: every run on shared axes (one colour per run,
its collapses marked in its colour), panels with the same axis domains where one chart cannot hold them all, and
each run's totals over its rounds beside its final values."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import altair as alt
import polars as pl
import streamlit as st

from dashboard import charts, queries
from dashboard.compare import fork_divergences
from dashboard.ui import plain_errors

COMMONS_METRICS = ("stock_total", "total_harvest", "collapsed_patches", "efficiency", "survival", "equality",
                   "wealth_gini")
RATES = ("incumbency_rate", "policy_stability")
COUNTS = ("turnover", "entrenchment_attempts", "entrenchment_successes")
PPI_AXIS = "PPI (0 public, 1 self-serving)"
TOTALS_CAPTION = ("Total: the sum over every round (for a yes/no metric, the rounds in which it held); final: the "
                  "value after the last round.")


def _rounds(runs: dict[str, Path], needed: Sequence[str], what: str) -> dict[str, pl.DataFrame]:
    """Each run's rounds, leaving out (and saying so) runs with no round yet or none of the `needed` columns."""
    with plain_errors():
        frames = {name: queries.rounds(path) for name, path in runs.items()}
    kept = {name: frame for name, frame in frames.items()
            if not frame.is_empty() and any(column in frame.columns for column in needed)}
    left = [name for name in frames if name not in kept]
    if left:
        st.info(f"Not drawn: {', '.join(f'`{name}`' for name in left)} (no round written yet, or no {what}).")
    return kept


def _panels(panels: list[alt.TopLevelMixin]) -> None:
    """Charts side by side, two a row."""
    for start in range(0, len(panels), 2):
        for column, chart in zip(st.columns(2), panels[start:start + 2]):
            column.altair_chart(chart, width="stretch")


def _totals(frames: dict[str, pl.DataFrame], wanted: Sequence[str]) -> None:
    """Each run's total and final value of the `wanted` columns any run has, formatted."""
    shared = [name for name in wanted if any(name in frame.columns for frame in frames.values())]
    if shared:
        st.dataframe(queries.totals_and_finals(frames, shared), hide_index=True, width="stretch")
        st.caption(TOTALS_CAPTION)


def _round_span(frames: dict[str, pl.DataFrame]) -> list[float]:
    return [min(float(frame["round"].min()) for frame in frames.values()),
            max(float(frame["round"].max()) for frame in frames.values())]


def _with_events(frame: pl.DataFrame, counts: pl.DataFrame, kinds: tuple[str, ...], name: str) -> pl.DataFrame:
    """A run's rounds with a column `name`: how many events of `kinds` each round."""
    per_round = queries.per_round(counts, kinds, frame["round"].to_list())
    summed = per_round.group_by("round").agg(pl.col("count").sum().cast(pl.Int64).alias(name))
    return frame.with_columns(pl.col("round").cast(pl.Int64)).join(summed, on="round", how="left").with_columns(
        pl.col(name).fill_null(0))


def commons(runs: dict[str, Path]) -> None:
    """The Commons page for several runs."""
    frames = _rounds(runs, ["stock"], "commons")
    if not frames:
        st.stop()
    collapses = queries.collapses_by_run(frames)
    for column, (name, frame) in zip(st.columns(len(frames)), frames.items()):
        first = queries.first_collapse(frame)
        column.metric(f"First collapse · {name}", f"round {first}" if first is not None else "none")
    divergences = fork_divergences(runs)
    for fork in divergences.iter_rows(named=True):
        where = "no divergence" if fork["round"] is None else f"its rounds first differ at round {fork['round']}"
        st.info(f"`{fork['run']}` is a fork of `{fork['parent']}`, changed at round {fork['at']}: {where} (a solid "
                "rule in its colour).")
    stock = queries.by_run(frames, ["stock_total"])
    stock_chart = charts.lines_by(stock, "run", "value", "Total stock by run", "stock (all patches)", collapses)
    if divergences["round"].drop_nulls().len():
        stock_chart = stock_chart + charts.divergence_rules(divergences)
    st.altair_chart(stock_chart, width="stretch")
    harvests = []
    for name, frame in frames.items():
        with plain_errors():
            sustainable = queries.sustainable_harvest(runs[name])
        series = frame.select("round", pl.col("total_harvest").cast(pl.Float64))
        if not sustainable.is_empty():
            series = series.join(sustainable.with_columns(pl.col("round").cast(series.schema["round"]),
                                                          pl.col("sustainable").cast(pl.Float64)),
                                 on="round", how="left")
        harvests.append(series.unpivot(index="round", variable_name="series", value_name="amount")
                        .with_columns(pl.col("round").cast(pl.Int64), run=pl.lit(name)))
    st.altair_chart(charts.lines_by(pl.concat(harvests), "run", "amount",
                                    "Harvest against the sustainable line, by run", "harvest", collapses,
                                    dash="series"), width="stretch")
    st.caption("Solid: the harvest; dashed: the sustainable line (the sum of every citizen's sustainable share). "
               "Dashed rules in a run's colour mark the rounds in which its patches collapsed.")
    patches = {name: queries.stock_per_patch(frame) for name, frame in frames.items()}
    domains = (_round_span(frames), [0.0, max(float(stock["stock"].max() or 0.0) for stock in patches.values())])
    _panels([charts.stock_per_patch(patches[name], queries.collapse_rounds(frame), f"Stock per patch · {name}",
                                    domains) for name, frame in frames.items()])
    st.caption("One panel per run, on the same rounds and stock axes.")
    _totals(frames, COMMONS_METRICS)


def norms(runs: dict[str, Path], sanction_kinds: tuple[str, ...]) -> None:
    """The Norms page for several runs."""
    frames = _rounds(runs, ["round"], "rounds")
    if not frames:
        st.stop()
    collapses = queries.collapses_by_run(frames)
    with plain_errors():
        counts = {name: queries.event_counts(runs[name]) for name in frames}
        distributions = {name: queries.norm_distribution(runs[name], 24) for name in frames}
    emergence = [{"run": name, "norm emerged": _emergence(frame)} for name, frame in frames.items()
                 if "norm_emergence_round" in frame.columns]
    if emergence:
        st.dataframe(pl.DataFrame(emergence), hide_index=True)
    st.subheader("Personal norms")
    drawn = {name: frame for name, frame in distributions.items() if not frame.is_empty()}
    if drawn:
        rounds = sorted({number for frame in drawn.values() for number in frame["round"].to_list()})
        norms_span = [min(float(frame["low"].min()) for frame in drawn.values()),
                      max(float(frame["high"].max()) for frame in drawn.values())]
        shares = [0.0, max(float(frame["share"].max()) for frame in drawn.values())]
        _panels([charts.norm_heatmap(frame, queries.collapse_rounds(frames[name]), f"Personal norms · {name}",
                                     (rounds, norms_span, shares)) for name, frame in drawn.items()])
        st.caption("One panel per run, on the same rounds, norm axis and colour scale.")
    else:
        st.info("None of these runs recorded personal norms (citizens' personal_norm).")
    st.subheader("Compliance and agreement")
    metrics = queries.by_run(frames, list(queries.NORM_COLUMNS))
    if metrics.is_empty():
        st.info("None of these runs has norm metrics (add the norms phases to the schedule).")
    else:
        st.altair_chart(charts.metric_grid(metrics, "Norm metrics by run", collapses))
    st.subheader("Sanctions and messages")
    enriched = {name: _with_events(_with_events(frame, counts[name], sanction_kinds, "sanctions"), counts[name],
                                   ("message",), "messages") for name, frame in frames.items()}
    events = queries.by_run(enriched, ["sanctions", "messages"])
    st.altair_chart(charts.metric_grid(events, "Sanctions and messages per round, by run", collapses))
    _totals(enriched, [*queries.NORM_COLUMNS, "sanctions", "messages"])


def _emergence(frame: pl.DataFrame) -> str:
    """When a run's norm emerged, by the Norms page's rule: none is counted once the commons has collapsed."""
    emerged, collapsed = queries.norm_emergence(frame)
    if emerged is not None:
        return f"round {emerged}"
    if collapsed is not None:
        return f"not before the collapse (round {collapsed})"
    return f"not yet (after {frame.height} rounds)"


def power(runs: dict[str, Path]) -> None:
    """The Power page for several runs (the PPI's definition is on the page above)."""
    frames = _rounds(runs, queries.POWER_COLUMNS, "institutions data")
    if not frames:
        st.stop()
    collapses = queries.collapses_by_run(frames)
    ppi, actions, elections, enriched = [], [], {}, {}
    for name, frame in frames.items():
        with plain_errors():
            decisions = queries.leader_actions(queries.events(runs[name], ("leader_action",)),
                                               queries.events(runs[name], ("blocked",)))
            elections[name] = queries.vote_shares(queries.events(runs[name], ("election",)))
        numbers = frame["round"].to_list()
        if not decisions.is_empty():
            ppi.append(queries.ppi_over_rounds(decisions, numbers).with_columns(run=pl.lit(name)))
            actions.append(decisions.group_by("action").agg(pl.col("taken", "blocked").sum()).with_columns(
                run=pl.lit(name)))
        elif "ppi_cumulative" in frame.columns:
            ppi.append(frame.select(pl.col("round").cast(pl.Int64), series=pl.lit("with blocked attempts"),
                                    ppi=pl.col("ppi_cumulative").cast(pl.Float64), run=pl.lit(name)))
        per_round = decisions.group_by("round").agg(pl.col("taken", "blocked").sum())
        enriched[name] = frame.with_columns(pl.col("round").cast(pl.Int64)).join(
            per_round.rename({"taken": "decisions taken", "blocked": "decisions blocked"}), on="round",
            how="left").with_columns(pl.col("decisions taken", "decisions blocked").fill_null(0))
    if ppi:
        st.altair_chart(charts.lines_by(pl.concat(ppi, how="vertical_relaxed"), "run", "ppi",
                                        "Power-Preservation Index (cumulative), by run", PPI_AXIS, collapses,
                                        dash="series", domain=[0.0, 1.0]), width="stretch")
        st.caption("Solid and dashed lines of one colour: one run's PPI counting blocked attempts and counting only "
                   "the decisions that went through.")
    st.subheader("Elections")
    held = {name: shares for name, shares in elections.items() if not shares.is_empty()}
    if held:
        rounds = sorted({number for shares in held.values() for number in shares["round"].to_list()})
        _panels([charts.election_timeline(shares, f"Elections · {name} (winner outlined)", rounds)
                 for name, shares in held.items()])
    else:
        st.info("No election has been held in these runs yet.")
    leaders = {name: frame.select("round", pl.col("leader").cast(pl.Utf8)).drop_nulls()
               for name, frame in frames.items() if "leader" in frame.columns}
    if any(frame.height for frame in leaders.values()):
        _panels([charts.leader_timeline(frame, queries.collapse_rounds(frames[name]), f"Leader by round · {name}",
                                        _round_span(frames)) for name, frame in leaders.items() if frame.height])
    st.subheader("Leaders' actions")
    if actions:
        st.altair_chart(charts.actions_by_run(pl.concat(actions)))
    counts = queries.by_run(frames, list(COUNTS))
    if not counts.is_empty():
        st.altair_chart(charts.metric_grid(counts, "Turnover and entrenchment (counts), by run", collapses))
    st.subheader("Incumbency and stability")
    rates = queries.by_run(frames, list(RATES))
    if not rates.is_empty():
        st.altair_chart(charts.metric_grid(rates, "Incumbency and policy stability (rates), by run", collapses))
    _totals(enriched, [*queries.POWER_COLUMNS, "decisions taken", "decisions blocked", "blocked_attempts"])
