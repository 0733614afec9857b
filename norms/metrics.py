"""Norm metrics of one round: dispersion, compliance, sanction-norm agreement, cooperation, emergence, stability."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def community_norm(personal_norm: np.ndarray) -> float:
    """The norm of the community: the median of its citizens' personal norms."""
    return float(np.median(personal_norm)) if personal_norm.size else float("nan")


def norm_dispersion(personal_norm: np.ndarray) -> float:
    """Standard deviation of personal norms (take ratios): low when citizens agree."""
    return float(np.std(personal_norm)) if personal_norm.size else 0.0


def compliance(ratio: np.ndarray, norm: float, tolerance: float) -> float:
    """Share of citizens whose take ratio is within the community norm (times 1 + tolerance)."""
    return float(np.mean(ratio <= norm * (1.0 + tolerance) + 1e-9)) if ratio.size else 1.0


def sanction_norm_agreement(sanctioned: np.ndarray, ratio: np.ndarray, norm: float, tolerance: float) -> float | None:
    """Share of the citizens sanctioned this round who had taken more than the community norm; None if nobody was."""
    if not sanctioned.any():
        return None
    return float(np.mean(ratio[sanctioned] > norm * (1.0 + tolerance) + 1e-9))


def cooperation_index(ratio: np.ndarray, tolerance: float) -> float:
    """Share of citizens taking no more than their sustainable share (times 1 + tolerance)."""
    return float(np.mean(ratio <= 1.0 + tolerance + 1e-9)) if ratio.size else 1.0


def norm_stability(personal_norm: np.ndarray, previous: np.ndarray) -> float:
    """1 minus the mean absolute change of personal norms since last round, relative to last round's mean norm.

    1 when no norm moved; 0 when norms moved, on average, by as much as their mean (or more).
    """
    scale = float(np.mean(np.abs(previous))) if previous.size else 0.0
    if scale == 0.0:
        return 1.0
    return float(max(0.0, 1.0 - np.mean(np.abs(personal_norm - previous)) / scale))


@dataclass
class EmergenceTracker:
    """The first round of the current unbroken run of rounds with dispersion under `threshold` (None outside one).

    At the end of a run this is the time to norm emergence: the first round after which dispersion stays low.
    A round whose dispersion is None (a collapsed commons: nobody can take anything, so agreeing is not
    cooperating) breaks the run and counts for no emergence.
    """

    threshold: float
    since: int | None = None

    def update(self, round_number: int, dispersion: float | None) -> int | None:
        if dispersion is None or dispersion >= self.threshold:
            self.since = None
        elif self.since is None:
            self.since = round_number
        return self.since
