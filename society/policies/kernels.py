"""Numba kernels of the heuristic policies' requests and noise, with the plain numpy references they equal bit for bit.

The references live with the tests that compare them, in ``tests/society/references.py``.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

from society.world.graph import neighbor_mean_at

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

SCALED_SHARE = 0
"""`factor` times the fair share (sustainable: factor 1; greedy: its factor)."""
NEIGHBOUR_RATIO = 1
"""The mean of `ratio` over the citizen's neighbours (1 when it has none) times its fair share."""
OWN_RATIO = 2
"""The citizen's own `strategy` times its fair share."""
FIXED_AMOUNT = 3
"""`factor`, whatever the share."""
NO_REQUEST = 4
"""Nothing: the citizen's amount comes from elsewhere (LLM citizens: the phase asks the model)."""


def noise_draws(rng: np.random.Generator, noisy: BoolArray, max_take: FloatArray) -> FloatArray:
    """One standard normal per citizen that is `noisy` and may take something (not ``max_take <= 0``), in citizen
    order; 0 for everyone else.

    The numbers are numpy's, ``rng.standard_normal(count)`` scattered to those citizens, and `rng` is left in the
    same state, about twice as fast: Numba's generator methods run numpy's own algorithms (here the ziggurat) on
    the generator's bit stream, compiled into one loop without numpy's per-call machinery.
    """
    out = np.zeros(noisy.size)  # numpy's allocation (see `commons_kernels.select_punishments`)
    _fill_noise_draws(rng, noisy, max_take, out)
    return out


@numba.njit(cache=True, nogil=True)
def _fill_noise_draws(rng: np.random.Generator, noisy: BoolArray, max_take: FloatArray, out: FloatArray) -> None:
    for i in range(noisy.size):
        if noisy[i] and not max_take[i] <= 0.0:
            out[i] = rng.standard_normal()


@numba.njit(cache=True, inline="always")
def _request_of(
    i: int,
    rule: int,
    factor: float,
    noise: float,
    ratio: FloatArray,
    strategy: FloatArray,
    indptr: IntArray,
    indices: IntArray,
    fair_share: FloatArray,
    draws: FloatArray,
    max_take: FloatArray,
) -> float:
    """What citizen `i`, of a group with this rule, factor and noise, asks for: see `citizen_requests`."""
    if max_take[i] <= 0.0:
        return 0.0
    if rule == SCALED_SHARE:
        request = factor * fair_share[i]
    elif rule == NEIGHBOUR_RATIO:
        request = neighbor_mean_at(indptr, indices, ratio, 1.0, i) * fair_share[i]
    elif rule == OWN_RATIO:
        request = strategy[i] * fair_share[i]
    elif rule == FIXED_AMOUNT:
        request = factor
    else:
        return 0.0
    if noise > 0.0:
        request *= 1.0 + noise * draws[i]
    if request <= 0.0:  # noqa: PLR1730 -- not max(): a tie must give np.clip's +0.0, and a NaN stay NaN
        request = 0.0
    if request > max_take[i]:  # noqa: PLR1730 -- not min(), for the same NaN
        request = max_take[i]
    return request


@numba.njit(cache=True, nogil=True)
def citizen_requests(
    members: IntArray,
    starts: IntArray,
    rule: IntArray,
    factor: FloatArray,
    noise: FloatArray,
    ratio: FloatArray,
    strategy: FloatArray,
    indptr: IntArray,
    indices: IntArray,
    fair_share: FloatArray,
    draws: FloatArray,
    max_take: FloatArray,
    out: FloatArray,
) -> None:
    """Write into `out` what every citizen asks for, by the rule of its policy group; one thread.

    Group ``g``'s citizens are ``members[starts[g]:starts[g + 1]]`` (every citizen in exactly one group). They
    follow ``rule[g]`` (one of the constants above) with ``factor[g]``: `ratio` is what each citizen took last
    round relative to its share (read for neighbours), `strategy` its own take ratio. Where ``noise[g] > 0`` the
    amount is multiplied by ``1 + noise[g] * draws[i]`` (`draws` is per citizen, see `noise_draws`, and may be
    empty when no group has noise). It is then clipped to ``[0, max_take[i]]``, a tie going to the bound as with
    ``np.clip``. Citizens who may take nothing (``max_take[i] <= 0``) and `NO_REQUEST` citizens get 0, without
    reading anything else. Group by group, so each inner loop follows a single rule.
    """
    for g in range(rule.size):
        for k in range(starts[g], starts[g + 1]):
            i = members[k]
            out[i] = _request_of(i, rule[g], factor[g], noise[g], ratio, strategy, indptr, indices, fair_share,
                                 draws, max_take)


@numba.njit(cache=True, parallel=True, nogil=True)
def citizen_requests_parallel(
    members: IntArray,
    starts: IntArray,
    rule: IntArray,
    factor: FloatArray,
    noise: FloatArray,
    ratio: FloatArray,
    strategy: FloatArray,
    indptr: IntArray,
    indices: IntArray,
    fair_share: FloatArray,
    draws: FloatArray,
    max_take: FloatArray,
    out: FloatArray,
) -> None:
    """`citizen_requests` with each group's citizens in parallel, for large populations (the same numbers)."""
    for g in range(rule.size):
        first = starts[g]
        for k in numba.prange(starts[g + 1] - first):
            i = members[first + k]
            out[i] = _request_of(i, rule[g], factor[g], noise[g], ratio, strategy, indptr, indices, fair_share,
                                 draws, max_take)
