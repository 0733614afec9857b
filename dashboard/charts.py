"""Altair charts built from the frames in `dashboard.queries`; every chart carries a title."""

from __future__ import annotations

import altair as alt
import polars as pl

ROUND = alt.X("round:Q", title="round", axis=alt.Axis(tickMinStep=1))


def _with_collapses(chart: alt.Chart | alt.LayerChart, collapses: pl.DataFrame | None,
                    ordinal: bool = False) -> alt.LayerChart:
    """Overlay a dashed red rule at each round in which patches collapsed (on an ordinal round axis if asked)."""
    if collapses is None or collapses.is_empty():
        return alt.layer(chart)
    rules = alt.Chart(collapses).mark_rule(color="#d62728", strokeDash=[4, 3]).encode(
        x=alt.X("round:O" if ordinal else "round:Q"),
        tooltip=["round:Q", alt.Tooltip("collapsed_patches:Q", title="patches collapsed")],
    )
    return alt.layer(chart, rules)


def with_interventions(chart: alt.LayerChart, interventions: pl.DataFrame) -> alt.LayerChart:
    """`chart` with a solid grey rule at each round an intervention fired (its actions as the tooltip)."""
    if interventions.is_empty():
        return chart
    rules = alt.Chart(interventions).mark_rule(color="#7f7f7f", strokeWidth=2).encode(
        x="round:Q", tooltip=["round:Q", alt.Tooltip("what:N", title="intervention")],
    )
    return alt.layer(chart, rules).properties(title=chart.title)


def metric_lines(frame: pl.DataFrame, columns: list[str], title: str, y_title: str,
                 collapses: pl.DataFrame | None = None) -> alt.LayerChart:
    """Several rounds columns as lines over rounds, one colour each, with collapse markers."""
    long = frame.select("round", *columns).unpivot(index="round", variable_name="metric", value_name="value")
    lines = alt.Chart(long).mark_line(point=frame.height <= 30).encode(
        x=ROUND, y=alt.Y("value:Q", title=y_title), color=alt.Color("metric:N", title=None),
        tooltip=["round:Q", "metric:N", alt.Tooltip("value:Q", format=".4g")],
    )
    return _with_collapses(lines, collapses).properties(title=title)


def compare_runs(frame: pl.DataFrame, metric: str, collapses: pl.DataFrame | None = None) -> alt.LayerChart:
    """One metric over rounds, one line per run; each run's collapses as dashed rules in its colour."""
    return lines_by(frame, "run", metric, f"{metric} by run", metric, collapses)


def lines_by(frame: pl.DataFrame, colour: str, value: str, title: str, y_title: str,
             collapses: pl.DataFrame | None = None, dash: str | None = None,
             domain: list[float] | None = None) -> alt.LayerChart:
    """`value` over rounds, one colour per value of `colour` (a run, a model), optionally one dash per value of
    `dash`; collapses as dashed rules, in their run's colour when they name one."""
    colours = alt.Color(f"{colour}:N", title=colour, scale=alt.Scale(scheme="tableau10"))  # distinct hues
    lines = alt.Chart(frame).mark_line(point=frame["round"].n_unique() <= 30 if frame.height else False).encode(
        x=ROUND, y=alt.Y(f"{value}:Q", title=y_title, scale=alt.Scale(domain=domain) if domain else alt.Undefined),
        color=colours, tooltip=[f"{colour}:N", "round:Q", *([f"{dash}:N"] if dash else []),
                                alt.Tooltip(f"{value}:Q", format=".4g")],
    )
    if dash:
        legend = alt.Legend(symbolType="stroke", symbolStrokeColor="#555555")
        lines = lines.encode(strokeDash=alt.StrokeDash(f"{dash}:N", title=None, legend=legend))
    layers: list[alt.Chart] = [lines]
    if collapses is not None and not collapses.is_empty():
        tip = [alt.Tooltip("round:Q"), alt.Tooltip("collapsed_patches:Q", title="patches collapsed")]
        rules = alt.Chart(collapses).mark_rule(strokeDash=[4, 3])
        layers.append(rules.encode(x="round:Q", color=colours, tooltip=[f"{colour}:N", *tip])
                      if colour in collapses.columns else rules.encode(x="round:Q", color=alt.value("#d62728"),
                                                                         tooltip=tip))
    return alt.layer(*layers).properties(title=title)


def divergence_rules(divergences: pl.DataFrame) -> alt.Chart:
    """A solid rule at each fork's divergence round (rows: run, parent, round), in the fork's colour."""
    colours = alt.Color("run:N", title="run", scale=alt.Scale(scheme="tableau10"))
    return alt.Chart(divergences.drop_nulls("round")).mark_rule(strokeWidth=2).encode(
        x="round:Q", color=colours, tooltip=["run:N", "parent:N", alt.Tooltip("round:Q", title="diverges at round")])


def metric_grid(long: pl.DataFrame, title: str, collapses: pl.DataFrame | None = None) -> alt.ConcatChart:
    """One small chart per metric of a long frame (round, metric, value, run), every run in its colour on the
    same rounds axis, two charts a row; each run's collapses marked in every chart."""
    charts = []
    for metric in long["metric"].unique(maintain_order=True).to_list():
        chart = lines_by(long.filter(pl.col("metric") == metric), "run", "value", metric, metric, collapses)
        charts.append(chart.properties(width=380, height=200))
    return alt.concat(*charts, columns=2).resolve_scale(x="shared", y="independent", color="shared").properties(
        title=title)


def stock_per_patch(stock: pl.DataFrame, collapses: pl.DataFrame, title: str = "Stock per patch",
                    domains: tuple[list[float], list[float]] | None = None) -> alt.LayerChart:
    """Stock of every patch over rounds, with collapse markers; `domains` (rounds, stock) fixes both axes so
    several runs' panels read alike."""
    patches = stock["patch"].n_unique()
    color = alt.Color("patch:N", title="patch", legend=alt.Legend(columns=2) if patches <= 20 else None)
    rounds, amounts = domains or (None, None)
    lines = alt.Chart(stock).mark_line().encode(
        x=alt.X("round:Q", title="round", axis=alt.Axis(tickMinStep=1),
                scale=alt.Scale(domain=rounds) if rounds else alt.Undefined),
        y=alt.Y("stock:Q", title="stock", scale=alt.Scale(domain=amounts) if amounts else alt.Undefined),
        color=color, tooltip=["round:Q", "patch:N", alt.Tooltip("stock:Q", format=".4g")],
    )
    return _with_collapses(lines, collapses).properties(title=title)


def harvest_against_sustainable(frame: pl.DataFrame, collapses: pl.DataFrame) -> alt.LayerChart:
    """Total harvest and the sustainable harvest over rounds, with collapse markers."""
    long = frame.unpivot(index="round", variable_name="series", value_name="amount")
    lines = alt.Chart(long).mark_line(point=frame.height <= 30).encode(
        x=ROUND, y=alt.Y("amount:Q", title="harvest"),
        color=alt.Color("series:N", title=None, scale=alt.Scale(
            domain=["total_harvest", "sustainable"], range=["#1f77b4", "#2ca02c"])),
        strokeDash=alt.StrokeDash("series:N", legend=None, scale=alt.Scale(
            domain=["total_harvest", "sustainable"], range=[[1, 0], [6, 3]])),
        tooltip=["round:Q", "series:N", alt.Tooltip("amount:Q", format=".4g")],
    )
    return _with_collapses(lines, collapses).properties(title="Harvest against the sustainable line")


def norm_heatmap(distribution: pl.DataFrame, collapses: pl.DataFrame | None = None,
                 title: str = "Personal norms over rounds",
                 domains: tuple[list[int], list[float], list[float]] | None = None) -> alt.LayerChart:
    """Share of citizens per personal-norm bin, per round, with collapse markers; `domains` (rounds, norm range,
    share range) fixes the axes and colours so several runs' panels read alike."""
    rounds, norms, shares = domains or (None, None, None)
    cells = alt.Chart(distribution).mark_rect().encode(
        x=alt.X("round:O", title="round", scale=alt.Scale(domain=rounds) if rounds else alt.Undefined),
        y=alt.Y("low:Q", title="personal norm", bin="binned",
                scale=alt.Scale(domain=norms) if norms else alt.Undefined),
        y2="high:Q",
        color=alt.Color("share:Q", title="share of citizens", scale=alt.Scale(
            scheme="viridis", domain=shares) if shares else alt.Scale(scheme="viridis")),
        tooltip=["round:O", alt.Tooltip("norm:Q", format=".3g"), alt.Tooltip("share:Q", format=".1%")],
    )
    return _with_collapses(cells, collapses, ordinal=True).properties(title=title)


def event_bars(counts: pl.DataFrame, title: str, y_title: str, collapses: pl.DataFrame | None = None
               ) -> alt.LayerChart:
    """Event counts per round (every round, zeros included), stacked by kind, with collapse markers."""
    bars = alt.Chart(counts).mark_bar().encode(
        x=alt.X("round:O", title="round"), y=alt.Y("count:Q", title=y_title),
        color=alt.Color("kind:N", title=None), tooltip=["round:O", "kind:N", "count:Q"],
    )
    return _with_collapses(bars, collapses, ordinal=True).properties(title=title)


def election_timeline(shares: pl.DataFrame, title: str = "Elections: vote shares (winner outlined)",
                      rounds: list[int] | None = None) -> alt.LayerChart:
    """Vote shares of every candidate at each election, the winner outlined; `rounds` fixes the election rounds
    on the axis so several runs' panels line up."""
    stacked = shares.with_columns(top=pl.col("share").cum_sum().over("round")).with_columns(
        bottom=pl.col("top") - pl.col("share")
    )
    base = alt.Chart(stacked).encode(
        x=alt.X("round:O", title="election round", scale=alt.Scale(domain=rounds) if rounds else alt.Undefined),
        y=alt.Y("bottom:Q", title="vote share", axis=alt.Axis(format="%")), y2="top:Q",
        tooltip=["round:O", "candidate:N", alt.Tooltip("share:Q", format=".1%"), "votes:Q", "winner:N"],
    )
    bars = base.mark_bar().encode(color=alt.Color("candidate:N", title="candidate"))
    winners = base.transform_filter("datum.candidate == datum.winner").mark_bar(
        fillOpacity=0, stroke="black", strokeWidth=2
    )
    return alt.layer(bars, winners).properties(title=title)


def leader_timeline(frame: pl.DataFrame, collapses: pl.DataFrame | None = None, title: str = "Leader by round",
                    rounds: list[float] | None = None) -> alt.LayerChart:
    """Who led in each round, with collapse markers; `rounds` fixes the rounds axis so runs' panels line up."""
    x = alt.X("round:Q", title="round", axis=alt.Axis(tickMinStep=1), scale=alt.Scale(domain=rounds)) if rounds \
        else ROUND
    ticks = alt.Chart(frame).mark_tick(thickness=6).encode(
        x=x, y=alt.Y("leader:N", title="leader"), color=alt.Color("leader:N", legend=None),
        tooltip=["round:Q", "leader:N"],
    )
    return _with_collapses(ticks, collapses).properties(title=title)


def blocked_actions(counts: pl.DataFrame) -> alt.Chart:
    """Blocked leader actions by the charter rule that blocked them."""
    return alt.Chart(counts, title="Blocked actions by rule").mark_bar().encode(
        x=alt.X("count:Q", title="times blocked"), y=alt.Y("action:N", title="action"),
        color=alt.Color("rule:N", title="rule"), tooltip=["action:N", "rule:N", "count:Q"],
    )


def actions_by_type(counts: pl.DataFrame) -> alt.Chart:
    """Leaders' decisions by type over the run: taken and blocked side by side."""
    long = counts.unpivot(index="action", on=["taken", "blocked"], variable_name="outcome", value_name="count")
    return alt.Chart(long, title="Leader actions by type: taken and blocked").mark_bar().encode(
        x=alt.X("count:Q", title="decisions"), y=alt.Y("action:N", title="action"), yOffset="outcome:N",
        color=alt.Color("outcome:N", title=None, scale=alt.Scale(domain=["taken", "blocked"],
                                                                  range=["#1f77b4", "#d62728"])),
        tooltip=["action:N", "outcome:N", "count:Q"],
    )


def actions_by_run(counts: pl.DataFrame) -> alt.FacetChart:
    """Leaders' decisions by type over each run (action, taken, blocked, run): one panel per run, one scale."""
    long = counts.unpivot(index=["run", "action"], on=["taken", "blocked"], variable_name="outcome",
                          value_name="count")
    bars = alt.Chart(long).mark_bar().encode(
        x=alt.X("count:Q", title="decisions"), y=alt.Y("action:N", title="action"), yOffset="outcome:N",
        color=alt.Color("outcome:N", title=None, scale=alt.Scale(domain=["taken", "blocked"],
                                                                  range=["#1f77b4", "#d62728"])),
        tooltip=["run:N", "action:N", "outcome:N", "count:Q"],
    ).properties(width=320)
    return bars.facet(column=alt.Column("run:N", title="run")).properties(
        title="Leader actions by type: taken and blocked, by run")


def ppi_lines(frame: pl.DataFrame, collapses: pl.DataFrame | None = None) -> alt.LayerChart:
    """The cumulative PPI with and without blocked attempts, on a 0–1 axis, with collapse markers."""
    lines = alt.Chart(frame).mark_line(point=frame["round"].n_unique() <= 30).encode(
        x=ROUND, y=alt.Y("ppi:Q", title="PPI (0 public, 1 self-serving)", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("series:N", title=None), tooltip=["round:Q", "series:N", alt.Tooltip("ppi:Q", format=".3f")],
    )
    return _with_collapses(lines, collapses).properties(title="Power-Preservation Index (cumulative)")


def network(nodes: pl.DataFrame, edges: pl.DataFrame, colour: str, colouring: str, title: str) -> alt.LayerChart:
    """The (sampled) social graph, citizens coloured by `colour`.

    `colouring` is `ratio` (take over sustainable share on a diverging scale centred on 1: green below, white at
    1, red above), `amount`, or
    `category`.
    """
    hidden = alt.Axis(labels=False, ticks=False, grid=False, domain=False, title=None)
    links = alt.Chart(edges).mark_rule(color="#bbbbbb", opacity=0.35, strokeWidth=0.6).encode(
        x=alt.X("x:Q", axis=hidden), y=alt.Y("y:Q", axis=hidden), x2="x2:Q", y2="y2:Q"
    )
    values = nodes[colour].drop_nulls() if colour in nodes.columns else pl.Series([], dtype=pl.Float64)
    low = min(float(values.min()), 0.99) if colouring == "ratio" and values.len() else 0.0
    high = max(float(values.max()), 1.01) if colouring == "ratio" and values.len() else 2.0
    scales = {
        "ratio": alt.Color(f"{colour}:Q", title="take ÷ sustainable share", scale=alt.Scale(
            domain=[low, 1.0, high], range=["#1a9850", "#f7f7f7", "#d73027"], interpolate="lab")),
        "amount": alt.Color(f"{colour}:Q", title=colour, scale=alt.Scale(scheme="viridis")),
        "category": alt.Color(f"{colour}:N", title=colour, scale=alt.Scale(scheme="category10")),
    }
    points = alt.Chart(nodes).mark_circle(size=45, opacity=0.9, stroke="white", strokeWidth=0.5).encode(
        x=alt.X("x:Q", axis=hidden), y=alt.Y("y:Q", axis=hidden), color=scales[colouring],
        tooltip=["citizen:Q", *[column for column in nodes.columns if column not in ("x", "y", "citizen")]],
    )
    return alt.layer(links, points).properties(title=title, height=560)


def big_five(persona: dict[str, float]) -> alt.Chart:
    """A persona's Big Five scores as bars."""
    frame = pl.DataFrame({"trait": list(persona), "score": list(persona.values())})
    return alt.Chart(frame, title="Big Five").mark_bar().encode(
        x=alt.X("score:Q", scale=alt.Scale(domain=[0, 1])), y=alt.Y("trait:N", sort=None, title=None),
        tooltip=["trait:N", alt.Tooltip("score:Q", format=".2f")],
    )


ACROSS, DOWN = "across", "down"  # sweep axes are renamed so dotted paths are not read as nested fields


def _axes_renamed(grid: pl.DataFrame, x: str, y: str | None) -> pl.DataFrame:
    """The grid with its axis columns named `across` (and `down`): Vega-Lite reads a dot as a nested field."""
    return grid.rename({x: ACROSS} | ({y: DOWN} if y else {}))


def sweep_heatmap(grid: pl.DataFrame, x: str, y: str, metric: str) -> alt.LayerChart:
    """The seed-averaged metric over two axes, each cell labelled with its mean and interval; a cell with a
    `link` column opens that link when clicked."""
    labelled = _axes_renamed(grid, x, y).with_columns(
        label=pl.format("{} ± {}", pl.col("mean").round_sig_figs(3), ((pl.col("high") - pl.col("low")) / 2)
                        .round_sig_figs(2))
    )
    base = alt.Chart(labelled).encode(x=alt.X(f"{ACROSS}:O", title=x), y=alt.Y(f"{DOWN}:O", title=y))
    tooltip = [alt.Tooltip(f"{ACROSS}:O", title=x), alt.Tooltip(f"{DOWN}:O", title=y),
               alt.Tooltip("mean:Q", format=".4g"), alt.Tooltip("low:Q", format=".4g"),
               alt.Tooltip("high:Q", format=".4g"), "seeds:Q"]
    cells = base.mark_rect(cursor="pointer" if "link" in grid.columns else "default").encode(
        color=alt.Color("mean:Q", title=f"mean {metric}", scale=alt.Scale(scheme="viridis")), tooltip=tooltip,
    )
    if "link" in grid.columns:
        cells = cells.encode(href="link:N")
    middle = (grid["mean"].min() + grid["mean"].max()) / 2  # viridis is dark below the middle: white text there
    text = base.mark_text(fontSize=11).encode(
        text="label:N", color=alt.condition(f"datum.mean < {middle}", alt.value("white"), alt.value("black"))
    )
    return alt.layer(cells, text).properties(title=f"{metric}: mean over seeds (95% interval)")


def sweep_intervals(grid: pl.DataFrame, x: str, series: str | None, metric: str) -> alt.LayerChart:
    """The seed-averaged metric along one axis with 95% interval bars, one line per value of `series`."""
    renamed = _axes_renamed(grid.drop("link", strict=False), x, series)
    colour = alt.Color(f"{DOWN}:N", title=series) if series else alt.value("#1f77b4")
    base = alt.Chart(renamed).encode(x=alt.X(f"{ACROSS}:O", title=x), color=colour)
    line = base.mark_line(point=True).encode(
        y=alt.Y("mean:Q", title=f"mean {metric}"),
        tooltip=[alt.Tooltip(f"{ACROSS}:O", title=x), alt.Tooltip("mean:Q", format=".4g"), "seeds:Q"],
    )
    bars = base.mark_errorbar(ticks=True).encode(y=alt.Y("low:Q", title=f"mean {metric}"), y2="high:Q")
    return alt.layer(bars, line).properties(title=f"{metric} along {x} (95% interval over seeds)")
