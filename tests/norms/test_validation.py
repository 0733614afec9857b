"""Each scientific check points the published way over several seeds (the numbers live in bench/validation.py)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))  # the bench scripts import each other
checks = importlib.import_module("validation_checks")
validation = importlib.import_module("validation")
DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "validation.md"

SEEDS = range(3)


def by_name(outcomes: list[checks.Outcome]) -> dict[str, checks.Outcome]:
    return {outcome.treatment: outcome for outcome in outcomes}


def test_validation_md_holds_what_the_engine_measures_now() -> None:
    """Written again with the seeds it names, the document is unchanged: else run bench/validation.py."""
    text = DOCUMENT.read_text()
    seeds, commit = validation.written_with(text)
    assert validation.document(seeds, commit) == text, "stale: python bench/validation.py"


def test_ostrom_best_responders_find_the_derived_nash_and_talk_plus_sanctions_beat_it() -> None:
    game = checks.cpr_game()
    assert (game.nash, game.optimum) == (8.0, 36.0) and game.nash_share == pytest.approx(0.395, abs=5e-4)
    investment, share = checks.ostrom_nash(SEEDS)
    assert investment.values == pytest.approx([game.nash] * len(SEEDS), abs=0.05)
    assert share.values == pytest.approx([game.nash_share] * len(SEEDS), abs=0.01)
    outcomes = by_name(checks.ostrom_cpr(SEEDS))
    both = outcomes["communication (universalization) + sanctioning"]
    assert min(both.values) > share.mean + 0.1
    assert both.mean > outcomes["sanctioning only"].mean


def test_fehr_gaechter_contributions_decay_without_punishment_and_hold_with_it() -> None:
    outcomes = by_name(checks.public_goods(SEEDS))
    assert max(outcomes["without punishment"].values) < 0
    assert min(outcomes["with punishment"].values) >= 0
    path = checks.contribution_path(checks.PG_TREATMENTS[1], SEEDS)
    assert path[-1] > 0.5 and np.all(np.isfinite(path))


def test_govsim_greedy_collapses_early_and_sustainable_lasts_all_twelve_months() -> None:
    outcomes = by_name(checks.govsim(SEEDS))
    assert max(outcomes["greedy (2x the sustainable share)"].values) <= 3
    assert outcomes["sustainable"].values == (12.0,) * len(SEEDS)
    assert outcomes["greedy-leaning learners, universalization meeting + sanctions"].mean > (
        outcomes["greedy-leaning learners, no meeting, no sanctions"].mean
    )
