"""Plain numpy twins of the norms kernels: each `X_reference` equals kernel `X` of `norms.kernels`, which the
tests check (given the same draws, or identically seeded generators)."""

from __future__ import annotations

import numpy as np

from norms.kernels import BoolArray, FloatArray, IntArray

# ---- norms.kernels --------------------------------------------------------------------------------------------


def imitation_sources_reference(
    indptr: IntArray, indices: IntArray, payoff: FloatArray, rows: IntArray,
    pick: FloatArray, accept: FloatArray, scale: float,
) -> IntArray:
    """Reference for `imitation_sources`."""
    degree = (indptr[1:] - indptr[:-1])[rows]
    out = np.full(rows.size, -1, dtype=np.int64)
    linked = degree > 0
    if scale <= 0.0 or not linked.any():
        return out
    chosen = indices[indptr[rows[linked]] + (pick[linked] * degree[linked]).astype(np.int64)]
    gain = payoff[chosen] - payoff[rows[linked]]
    copies = (gain > 0.0) & (accept[linked] < gain / scale)
    out[np.flatnonzero(linked)[copies]] = chosen[copies]
    return out


def neighbour_median_reference(indptr: IntArray, indices: IntArray, values: FloatArray, rows: IntArray) -> FloatArray:
    """Reference for `neighbour_median`."""
    out = np.empty(rows.size)
    for r, i in enumerate(rows):
        neighbours = indices[indptr[i] : indptr[i + 1]]
        out[r] = np.median(values[neighbours]) if neighbours.size else values[i]
    return out


def heard_mean_reference(
    indptr: IntArray, indices: IntArray, values: FloatArray, spoke: BoolArray
) -> tuple[FloatArray, IntArray]:
    """Reference for `heard_mean`."""
    n = indptr.size - 1
    mean, count = np.full(n, np.nan), np.zeros(n, dtype=np.int64)
    for i in range(n):
        heard = [j for j in indices[indptr[i] : indptr[i + 1]] if spoke[j]]
        count[i] = len(heard)
        if heard:
            mean[i] = sum(float(values[j]) for j in heard) / len(heard)
    return mean, count


def norm_punishments_reference(
    indptr: IntArray, indices: IntArray, is_punisher: BoolArray, norm: FloatArray, ratio: FloatArray,
    tolerance: float, probability: float, max_targets: int, rng: np.random.Generator,
) -> tuple[IntArray, IntArray]:
    """Reference for `norm_punishments`."""
    pairs: list[tuple[int, int]] = []
    for i in np.flatnonzero(is_punisher):
        acts = 0
        for j in indices[indptr[i] : indptr[i + 1]]:
            if max_targets > 0 and acts >= max_targets:
                break
            if ratio[j] <= norm[i] * (1.0 + tolerance) + 1e-9:
                continue
            if probability < 1.0 and rng.random() >= probability:
                continue
            pairs.append((i, j))
            acts += 1
    if not pairs:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    actors, targets = np.array(pairs, dtype=np.int64).T
    return actors.copy(), targets.copy()
