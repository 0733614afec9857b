"""Persona validity: do LLM citizens' self-reports and behaviour follow the Big Five personas they were given?

Computed per run from its tables (`persona_validity(run)`; `persona_validity_of` on frames). For each Big Five
trait, over the run's LLM citizens (the personas table):

* `surveyed`: the Pearson correlation between the assigned score (personas table, in [0, 1]) and the surveyed
  score. A citizen's surveyed score is the mean, over every survey round and every Likert item that scores the
  trait (its `trait`), of its valid LLM answers (fallbacks and heuristic rows left out) scaled to [0, 1]:
  (answer - 1) / (points - 1), or 1 minus that for a `reversed` item. Citizens with no valid answer to the
  trait's items are left out of this correlation.
* `take_share`: the Pearson correlation between the assigned score and the citizen's mean take share: over the
  recorded rounds in which anything was taken, the mean of its take / the round's total take of all citizens
  (citizens table; left out without a `take` column). A share of the harvest, not a ratio to the sustainable
  share, which a collapse sets to 0 in the round it happens.
* `punishments`: with the citizen's count of punishments given (events of kind `punish` or `sanction` it acted
  in, over the run; 0 for a citizen who gave none).
* `votes_for_winner` (only when the run has ballots): with the share of the citizen's cast ballots (`ballot`
  events, first choice; abstentions, target -1, left out) that went to that round's elected winner (`election`
  events).

Each correlation is NaN when fewer than 3 citizens have both values, or when either side has zero variance (a
model answering every item the same way gives NaN, not 0). `citizens` counts the citizens in the surveyed
correlation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from society.rundir.layout import read_personas, read_scenario, read_table
from society.scenario.schema import BIG_FIVE

PUNISHMENT_KINDS = ("punish", "sanction")
MIN_CITIZENS = 3
ABSTAINED = -1  # a ballot event's target when the citizen voted for no one


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's r of two equal-length arrays; NaN with fewer than 3 pairs or zero variance on either side."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.size < MIN_CITIZENS or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    dx, dy = x - x.mean(), y - y.mean()
    return float((dx * dy).sum() / np.sqrt((dx * dx).sum() * (dy * dy).sum()))


def survey_items(scenario: dict[str, Any]) -> list[dict[str, Any]]:
    """Every item of the scenario's survey phases (plain data, as the run's scenario.yaml holds them)."""
    return [item for step in scenario.get("schedule") or [] if isinstance(step, dict) and step.get("phase") == "survey"
            for item in (step.get("params") or {}).get("items", [])]


def surveyed_traits(survey: pl.DataFrame, items: list[dict[str, Any]]) -> pl.DataFrame:
    """One row per (citizen, trait): the citizen's surveyed score in [0, 1] (see the module doc)."""
    scoring = pl.DataFrame(
        [{"item": i["id"], "trait": i["trait"], "points": int(i.get("points", 7)), "reversed": bool(i.get("reversed"))}
         for i in items if i.get("kind") == "likert" and i.get("trait")],
        schema={"item": pl.Utf8, "trait": pl.Utf8, "points": pl.Int64, "reversed": pl.Boolean},
    )
    valid = survey.filter((pl.col("source") == "llm") & ~pl.col("fallback") & pl.col("answer").is_not_null())
    scaled = (pl.col("answer") - 1) / (pl.col("points") - 1)
    return (valid.join(scoring, on="item")
            .with_columns(score=pl.when(pl.col("reversed")).then(1 - scaled).otherwise(scaled))
            .group_by("citizen", "trait").agg(pl.col("score").mean()))


def behaviour(citizens: pl.DataFrame, events: pl.DataFrame, members: pl.Series) -> pl.DataFrame:
    """One row per LLM citizen in `members`: mean take share, punishments given, and (with ballots) the share of
    its ballots for the winner (see the module doc)."""
    frame = pl.DataFrame({"citizen": members.cast(pl.Int64)})
    if "take" in citizens.columns:
        total = pl.col("take").sum().over("round")
        shares = (citizens.filter(total > 0).with_columns(share=pl.col("take") / total)
                  .group_by("citizen").agg(take_share=pl.col("share").mean()))
        frame = frame.join(shares, on="citizen", how="left")
    acts = (events.filter(pl.col("kind").is_in(PUNISHMENT_KINDS)).group_by("actor").agg(punishments=pl.len())
            if events.height else pl.DataFrame(schema={"actor": pl.Int64, "punishments": pl.UInt32}))
    frame = (frame.join(acts.rename({"actor": "citizen"}), on="citizen", how="left")
             .with_columns(pl.col("punishments").fill_null(0).cast(pl.Float64)))
    if events.height and (events["kind"] == "ballot").any():
        winners = events.filter(pl.col("kind") == "election").select("round", winner="actor")
        cast = (pl.col("kind") == "ballot") & (pl.col("target") != ABSTAINED)
        votes = (events.filter(cast).join(winners, on="round")
                 .group_by("actor").agg(votes_for_winner=(pl.col("target") == pl.col("winner")).mean()))
        frame = frame.join(votes.rename({"actor": "citizen"}), on="citizen", how="left")
    return frame


def persona_validity_of(
    personas: pl.DataFrame, survey: pl.DataFrame, items: list[dict[str, Any]], citizens: pl.DataFrame,
    events: pl.DataFrame,
) -> pl.DataFrame:
    """One row per Big Five trait: `citizens` surveyed, then Pearson's r of the assigned score with the surveyed
    score and with each behaviour (see the module doc)."""
    assigned = personas.select(pl.col("citizen").cast(pl.Int64), *BIG_FIVE)
    surveyed = surveyed_traits(survey, items)
    acted = behaviour(citizens, events, assigned["citizen"])
    measures = [name for name in acted.columns if name != "citizen"]
    rows = []
    for trait in BIG_FIVE:
        said = assigned.join(surveyed.filter(pl.col("trait") == trait), on="citizen")
        row: dict[str, Any] = {"trait": trait, "citizens": said.height,
                               "surveyed": pearson(said[trait].to_numpy(), said["score"].to_numpy())}
        both = assigned.join(acted, on="citizen")
        for name in measures:
            known = both.filter(pl.col(name).is_not_null())
            row[name] = pearson(known[trait].to_numpy(), known[name].to_numpy())
        rows.append(row)
    return pl.DataFrame(rows)


def persona_validity(run: Path) -> pl.DataFrame | None:
    """The run's persona validity (see the module doc), or None when it has no survey answers or no personas."""
    survey, personas = read_table(run, "survey"), read_personas(run)
    if survey.is_empty() or personas.is_empty():
        return None
    return persona_validity_of(personas, survey, survey_items(read_scenario(run)), read_table(run, "citizens"),
                               read_table(run, "events"))
