"""Numba kernel of the heuristic policies' requests, with the plain numpy reference it equals bit for bit."""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

from society.graph import neighbor_mean_at, neighbor_mean_reference

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

SCALED_SHARE = 0
"""`factor` times the fair share (sustainable: factor 1; greedy: its factor)."""
NEIGHBOUR_RATIO = 1
"""The mean of `values` over the citizen's neighbours (1 when it has none) times its fair share."""
OWN_RATIO = 2
"""The citizen's own entry of `values` times its fair share."""
FIXED_AMOUNT = 3
"""`factor`, whatever the share."""


def standard_normals(rng: np.random.Generator, size: int) -> FloatArray:
    """`rng.standard_normal(size)`: the same numbers, leaving `rng` in the same state, about twice as fast.

    Numba's generator methods run numpy's own algorithms (here the ziggurat) on the generator's bit stream;
    compiled into one loop they skip numpy's per-call machinery. The array is numpy's (see `select_punishments`).
    """
    out = np.empty(size, dtype=np.float64)
    _fill_standard_normals(rng, out)
    return out


@numba.njit(cache=True)
def _fill_standard_normals(rng: np.random.Generator, out: FloatArray) -> None:
    for i in range(out.size):
        out[i] = rng.standard_normal()


def standard_normals_reference(rng: np.random.Generator, size: int) -> FloatArray:
    """Reference for `standard_normals`."""
    return rng.standard_normal(size)


@numba.njit(cache=True, parallel=True)
def group_requests(
    members: IntArray,
    rule: int,
    factor: float,
    values: FloatArray,
    indptr: IntArray,
    indices: IntArray,
    fair_share: FloatArray,
    noise: float,
    draws: FloatArray,
    max_take: FloatArray,
    out: FloatArray,
) -> None:
    """Write into `out[members]` what the citizens of one policy group ask for; members in parallel.

    Each member's amount follows `rule` (one of the constants above); with noise (`draws` holds one standard
    normal per member, in member order; empty for none) it is multiplied by ``1 + noise * draw``; then it is
    clipped to ``[0, max_take]``, a tie going to the bound as with ``np.clip``.
    """
    noisy = draws.size > 0
    for k in numba.prange(members.size):
        i = members[k]
        if rule == SCALED_SHARE:
            request = factor * fair_share[i]
        elif rule == NEIGHBOUR_RATIO:
            request = neighbor_mean_at(indptr, indices, values, 1.0, i) * fair_share[i]
        elif rule == OWN_RATIO:
            request = values[i] * fair_share[i]
        else:
            request = factor
        if noisy:
            request *= 1.0 + noise * draws[k]
        if request <= 0.0:  # noqa: PLR1730 -- not max(): a tie must give np.clip's +0.0, and a NaN stay NaN
            request = 0.0
        if request > max_take[i]:  # noqa: PLR1730 -- not min(), for the same NaN
            request = max_take[i]
        out[i] = request


def group_requests_reference(
    members: IntArray,
    rule: int,
    factor: float,
    values: FloatArray,
    indptr: IntArray,
    indices: IntArray,
    fair_share: FloatArray,
    noise: float,
    draws: FloatArray,
    max_take: FloatArray,
    out: FloatArray,
) -> None:
    """Reference for `group_requests`."""
    share = fair_share[members]
    if rule == SCALED_SHARE:
        requests = factor * share
    elif rule == NEIGHBOUR_RATIO:
        requests = neighbor_mean_reference(indptr, indices, values, np.ones(indptr.size - 1))[members] * share
    elif rule == OWN_RATIO:
        requests = values[members] * share
    else:
        requests = np.full(members.size, factor)
    if draws.size:
        requests = requests * (1.0 + noise * draws)
    out[members] = np.clip(requests, 0.0, max_take[members])
