"""Belief updates and norm metrics on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from norms import metrics
from norms.beliefs import update_empirical, update_personal

# the path 0 - 1 - 2, and an isolated citizen 3
INDPTR = np.array([0, 1, 3, 4, 4], np.int64)
INDICES = np.array([1, 0, 2, 1], np.int64)


def test_empirical_expectation_moves_toward_the_neighbours_mean_take() -> None:
    ratio = np.array([1.0, 2.0, 4.0, 3.0])
    empirical = np.array([1.0, 1.0, 1.0, 1.0])
    # neighbour means: 2, (1 + 4) / 2 = 2.5, 2; the isolated citizen watches itself: 3
    np.testing.assert_allclose(
        update_empirical(INDPTR, INDICES, empirical, ratio, 0.5), [1.5, 1.75, 1.5, 2.0]
    )
    np.testing.assert_allclose(update_empirical(INDPTR, INDICES, empirical, ratio, 0.0), empirical)


def test_personal_norm_moves_toward_the_blend_of_expectations() -> None:
    personal = np.array([1.0, 2.0])
    empirical = np.array([1.5, 1.0])
    normative = np.array([2.0, 1.0])
    # targets: 0.5 * 2 + 0.5 * 1.5 = 1.75 and 1.0; 0.8 * P + 0.2 * target
    np.testing.assert_allclose(update_personal(personal, empirical, normative, 0.2, 0.5), [1.15, 1.8])
    np.testing.assert_allclose(update_personal(personal, empirical, normative, 1.0, 1.0), normative)


def test_round_metrics_on_a_small_population() -> None:
    norms = np.array([1.0, 1.0, 1.2, 3.0])
    ratio = np.array([0.9, 1.0, 1.5, 2.5])
    norm = metrics.community_norm(norms)
    assert norm == pytest.approx(1.1)
    assert metrics.norm_dispersion(norms) == pytest.approx(np.std(norms))
    assert metrics.compliance(ratio, norm, 0.0) == pytest.approx(0.5)
    assert metrics.compliance(ratio, norm, 0.5) == pytest.approx(0.75)
    assert metrics.cooperation_index(ratio, 0.0) == pytest.approx(0.5)
    sanctioned = np.array([False, True, True, True])
    assert metrics.sanction_norm_agreement(sanctioned, ratio, norm, 0.0) == pytest.approx(2 / 3)
    assert metrics.sanction_norm_agreement(np.zeros(4, bool), ratio, norm, 0.0) is None
    assert metrics.norm_stability(norms, norms) == 1.0
    assert metrics.norm_stability(np.array([1.5, 2.5]), np.array([1.0, 3.0])) == pytest.approx(1 - 0.5 / 2)


def test_emergence_is_the_start_of_the_last_unbroken_low_dispersion_run() -> None:
    tracker = metrics.EmergenceTracker(threshold=0.1)
    seen = [tracker.update(r, d) for r, d in enumerate([0.5, 0.05, 0.3, 0.09, 0.08, 0.01], start=1)]
    assert seen == [None, 2, None, 4, 4, 4]


def test_a_round_on_a_collapsed_commons_breaks_emergence() -> None:
    tracker = metrics.EmergenceTracker(threshold=0.1)
    seen = [tracker.update(r, d) for r, d in enumerate([0.05, 0.01, None, 0.0], start=1)]
    assert seen == [1, 1, None, 4]
