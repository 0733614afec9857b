"""Whether a run's results are the model's: the share of its LLM decisions that fallbacks made, over the run.

A run is invalid when more than `llm.invalid_threshold` of all its LLM answers failed (and a fallback decided
instead), or of one phase's answers, judged over at least `THRESHOLD_MIN_ASKED` of them. Survey items' calls
change nothing in the world, so they are left out of the verdict and counted apart (`survey_asked`,
`survey_fallbacks`). The verdict and its counts go into the manifest (`validity`), which `society info` and the
dashboard show.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from society.llm.asking import SURVEY_CALL, THRESHOLD_MIN_ASKED


def fallback_validity(calls: pl.DataFrame, threshold: float) -> dict[str, Any]:
    """The verdict over a run's `llm_calls` rows but a survey's: valid or not (with the reason), the fallback
    counts, and the survey's apart."""
    surveyed = calls.filter(pl.col("phase").str.starts_with(SURVEY_CALL))
    calls = calls.filter(~pl.col("phase").str.starts_with(SURVEY_CALL))
    asked = calls.height
    fallbacks = int(calls["fallback"].sum()) if asked else 0
    share = fallbacks / asked if asked else 0.0
    per_phase = (calls.group_by("phase").agg(asked=pl.len(), fallbacks=pl.col("fallback").sum()).sort("phase")
                 if asked else pl.DataFrame(schema={"phase": pl.Utf8, "asked": pl.UInt32, "fallbacks": pl.UInt32}))
    by_phase = {row["phase"]: {"asked": int(row["asked"]), "fallbacks": int(row["fallbacks"])}
                for row in per_phase.iter_rows(named=True)}
    reasons = []
    if share > threshold:
        reasons.append(f"{fallbacks} of {asked} LLM answers failed and fell back ({share:.0%} of the run)")
    for phase, counts in by_phase.items():
        phase_share = counts["fallbacks"] / counts["asked"]
        if counts["asked"] >= THRESHOLD_MIN_ASKED and phase_share > threshold:
            reasons.append(f"phase {phase!r}: {counts['fallbacks']} of {counts['asked']} fell back ({phase_share:.0%})")
    reason = None if not reasons else "; ".join(reasons) + f", above llm.invalid_threshold {threshold:g}"
    return {"valid": not reasons, "reason": reason, "fallback_share": share, "asked": asked, "fallbacks": fallbacks,
            "by_phase": by_phase, "threshold": threshold, "survey_asked": surveyed.height,
            "survey_fallbacks": int(surveyed["fallback"].sum())}
